"""Reads of settlement state for other apps (status pages, API, admin), without reaching into our models and
without asking the node: confirmations count from the head that the tracker records on every pass."""

from dataclasses import asdict, dataclass

from onchain.models import Batch, ChainTransaction, Payout


@dataclass(frozen=True)
class Settlement:
    chain_id: int
    token_address: str
    to_address: str
    amount_base_units: str  # a string: JSON numbers lose precision past 2**53
    status: str
    tx_hash: str | None
    block_number: int | None
    confirmations: int
    required_confirmations: int
    explorer_url: str

    def as_dict(self):
        return asdict(self)


def payout_settlements(*, references):
    """{reference: Settlement} for the payouts of these references, in a constant number of queries."""
    payouts = list(Payout.objects.select_related("token__chain", "batch__mined_tx").filter(reference__in=references))
    unmined = [p.batch_id for p in payouts if p.batch_id and p.batch.mined_tx_id is None]
    latest = {}
    for batch_id, tx_hash in (ChainTransaction.objects.filter(batch_id__in=unmined).order_by("batch_id", "id")
                              .values_list("batch_id", "tx_hash")):
        latest[batch_id] = tx_hash  # ordered by id: the last one written wins
    return {p.reference: _settlement(p, latest) for p in payouts}


def payout_settlement(*, reference):
    return payout_settlements(references=[reference]).get(reference)


def _settlement(payout, latest_attempt):
    batch, chain = payout.batch, payout.token.chain
    tx_hash = None
    if batch is not None:
        tx_hash = batch.mined_tx.tx_hash if batch.mined_tx_id else latest_attempt.get(batch.pk)
    return Settlement(
        chain_id=chain.chain_id, token_address=payout.token.address, to_address=payout.to_address,
        amount_base_units=str(payout.amount_base_units), status=payout.status, tx_hash=tx_hash,
        block_number=batch.block_number if batch else None, confirmations=_confirmations(batch, chain),
        required_confirmations=chain.confirmations, explorer_url=chain.tx_url(tx_hash) if tx_hash else "")


def _confirmations(batch, chain):
    if batch is None or batch.block_number is None:
        return 0
    if batch.status == Batch.Status.FINAL:
        return max(chain.confirmations, 1)
    if chain.head_block is None:
        return 0
    return max(chain.head_block - batch.block_number + 1, 0)


def payout_rows(*, reference):
    """(payout id, batch id, id of its mined or latest attempt) of a reference's payout, for admin's links between
    a transfer and its payout, batch and transaction; None when there is no payout. One query."""
    row = (Payout.objects.filter(reference=reference).select_related("batch")
           .values_list("pk", "batch_id", "batch__mined_tx_id").first())
    if row is None:
        return None
    payout_id, batch_id, tx_id = row
    if batch_id is not None and tx_id is None:
        tx_id = ChainTransaction.objects.filter(batch_id=batch_id).order_by("-id").values_list("pk", flat=True).first()
    return payout_id, batch_id, tx_id


def payout_is_dead(*, reference):
    """True when the payout failed for good: nothing of it can still be mined (refunding is then safe)."""
    return Payout.objects.filter(reference=reference, status=Payout.Status.FAILED).exists()
