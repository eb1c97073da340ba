"""Reads that several interfaces share (API, status pages, admin)."""

from onchain.models import Payout


def transfer_settlement(*, transfer):
    if not transfer.payout_reference:
        return None
    payout = Payout.objects.select_related("token__chain", "transaction").filter(
        reference=transfer.payout_reference).first()
    if payout is None:
        return None
    tx = payout.transaction
    return {
        "chain_id": payout.token.chain.chain_id,
        "token_address": payout.token.address,
        "to_address": payout.to_address,
        "amount_base_units": str(payout.amount_base_units),
        "status": payout.status,
        "tx_hash": tx.tx_hash if tx else None,
        "block_number": tx.block_number if tx else None,
        "confirmations": _confirmations(tx),
        "required_confirmations": payout.token.chain.confirmations,
        "explorer_url": payout.token.chain.tx_url(tx.tx_hash) if tx else "",
    }


def _confirmations(tx):
    if tx is None or tx.block_number is None:
        return 0
    if tx.status == tx.Status.FINAL:
        return max(tx.wallet.chain.confirmations, 1)
    from onchain.client import web3

    try:
        return max(web3().eth.block_number - tx.block_number + 1, 0)
    except Exception:  # noqa: BLE001 - a status read must not fail because the node is slow
        return 0
