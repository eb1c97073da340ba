"""Reads of settlement state for other apps (status pages, API, admin) without reaching into our models."""

from onchain import client
from onchain.models import Batch, Payout


def payout_settlement(*, reference):
    payout = Payout.objects.select_related("token__chain", "batch__mined_tx").filter(reference=reference).first()
    if payout is None:
        return None
    batch = payout.batch
    tx_hash = None
    if batch is not None:
        tx_hash = batch.mined_tx.tx_hash if batch.mined_tx else batch.attempts.order_by("-id").values_list(
            "tx_hash", flat=True).first()
    chain = payout.token.chain
    return {
        "chain_id": chain.chain_id,
        "token_address": payout.token.address,
        "to_address": payout.to_address,
        "amount_base_units": str(payout.amount_base_units),
        "status": payout.status,
        "tx_hash": tx_hash,
        "block_number": batch.block_number if batch else None,
        "confirmations": _confirmations(batch),
        "required_confirmations": chain.confirmations,
        "explorer_url": chain.tx_url(tx_hash) if tx_hash else "",
    }


def _confirmations(batch):
    if batch is None or batch.block_number is None:
        return 0
    if batch.status == Batch.Status.FINAL:
        return max(batch.wallet.chain.confirmations, 1)
    try:
        return max(client.web3().eth.block_number - batch.block_number + 1, 0)
    except Exception:  # noqa: BLE001 - a status read must not fail because the node is slow
        return 0


def payout_is_dead(*, reference):
    """True when the payout failed for good: nothing of it can still be mined (refunding is then safe)."""
    return Payout.objects.filter(reference=reference, status=Payout.Status.FAILED).exists()
