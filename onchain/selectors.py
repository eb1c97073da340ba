"""Reads of settlement state for other apps (status pages, API, admin), without reaching into our models and
without asking the node: confirmations count from the head that the tracker records on every pass."""

from dataclasses import asdict, dataclass

from django.conf import settings
from django.db.models import Count, Q

from onchain.models import Batch, ChainTransaction, HotWallet, Payout, Token


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


@dataclass(frozen=True)
class PayoutEta:
    seconds: float  # until the payout is final on chain, from where it is now
    queued_ahead: int  # payouts waiting to be batched before it
    queue_seconds: float  # the part of `seconds` that those payouts add


def _a_wallet_is_idle(chain):
    """Whether an active wallet of `chain` has fewer than BATCH_MAX_IN_FLIGHT batches not yet mined: then a short queue
    goes out at once (onchain/services/batches.py, adaptive batching) and a payout waits for no company."""
    flying = Count("batches", filter=Q(batches__status__in=(Batch.Status.SIGNED, Batch.Status.BROADCAST)))
    return (HotWallet.objects.filter(chain=chain, is_active=True, halted=False).annotate(flying=flying)
            .filter(flying__lt=settings.BATCH_MAX_IN_FLIGHT).exists())


def payout_eta(*, reference=None, symbol="KGST"):
    """How long until a payout is final, from the pipeline as it is now: the payouts queued before it (each full batch
    ahead costs a block), the batcher's wait for company, one block to be mined, then the chain's finality rule
    (`confirmations` blocks of `block_time_ms`) and the tracker's next pass. Without `reference` (or before its payout
    is queued): a payout queued now. None when the payout failed or no token is registered. Three indexed reads.
    The wait for company (BATCH_MAX_AGE_MS) counts only while every wallet has BATCH_MAX_IN_FLIGHT batches in flight."""
    payout = (Payout.objects.select_related("token__chain", "batch").filter(reference=reference).first()
              if reference else None)
    token = payout.token if payout else Token.objects.select_related("chain").filter(symbol=symbol).first()
    if token is None or (payout and payout.status == Payout.Status.FAILED):
        return None
    chain = token.chain
    block = chain.block_time_ms / 1000
    track = settings.SETTLEMENT_TRACK_MS / 1000
    depth = max(chain.confirmations, 1)
    if payout and payout.status == Payout.Status.CONFIRMED:
        return PayoutEta(seconds=0, queued_ahead=0, queue_seconds=0)
    if payout and payout.status == Payout.Status.BATCHED:
        have = _confirmations(payout.batch, chain)
        left = depth - have if have else depth + 1  # not mined yet: one block to be mined in, then the depth
        return PayoutEta(seconds=max(left, 0) * block + track, queued_ahead=0, queue_seconds=0)
    queued = Payout.objects.filter(token=token, status=Payout.Status.QUEUED)  # the (status, created_at) index
    if payout:
        queued = queued.filter(created_at__lt=payout.created_at)
    ahead = queued.count()
    per_batch = settings.BATCH_MAX_SIZE if settings.SETTLEMENT_BATCHING and token.batch_contract else 1
    queue_seconds = (ahead // per_batch) * block
    wait = (settings.BATCH_MAX_AGE_MS / 1000 if per_batch > 1 and not _a_wallet_is_idle(chain) else 0) + track
    return PayoutEta(seconds=queue_seconds + wait + (depth + 1) * block + track, queued_ahead=ahead,
                     queue_seconds=queue_seconds)
