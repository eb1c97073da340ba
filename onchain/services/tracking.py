"""Following batches to finality: receipts, reorgs, rebroadcasts, fee-bumped replacements, nonce checks.

A batch is final when its block is at or below the chain's `finalized` block (where the chain has the tag)
or `confirmations` deep, and that block is still canonical. Only then are its payouts confirmed and the
caller told, in the same database transaction. A batch whose block leaves the canonical chain goes back to
`broadcast` and its mined attempt's exact bytes are sent again. A batch that reverted is settled once its block is
final: the payouts the token refuses fail, the others go back to the queue when the rest is shown to pay
(onchain.services.isolation; docs/settlement.md says why that cannot pay twice). A final batch that a reorg deeper
than the chain's finality took off chain is sent again byte for byte, with an alert (docs/settlement.md "Reorgs and
finality").
"""

import logging
from collections import defaultdict
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from hexbytes import HexBytes
from web3.exceptions import BlockNotFound, TransactionNotFound

from onchain import client
from onchain.errors import FeeCeilingReached, OnchainError
from onchain.failpoints import failpoint
from onchain.listener import payout_listener
from onchain.models import Batch, Chain, ChainTransaction, HotWallet, Payout
from onchain.services.alerts import alert_raise, wallet_halt
from onchain.services.attempts import attempt_sign
from onchain.services.fees import fee_bump, fee_quote, fees_of
from onchain.services.isolation import revert_isolate
from onchain.services.sending import tx_broadcast

log = logging.getLogger(__name__)
OPEN = (Batch.Status.SIGNED, Batch.Status.BROADCAST, Batch.Status.MINED)


def final_height(w3, chain, head):
    if chain.use_finalized_tag:
        return w3.eth.get_block("finalized")["number"]
    return head - chain.confirmations + 1


def chain_track(*, chain_id):
    """One pass over the chain's open batches. Returns the number of batches made final in this pass."""
    chain = Chain.objects.get(pk=chain_id)
    w3 = client.web3(chain)
    head = w3.eth.block_number
    # Status reads count confirmations from this, instead of asking the node once per transfer.
    Chain.objects.filter(pk=chain.pk).update(head_block=head, head_seen_at=timezone.now())
    final = final_height(w3, chain, head)
    finalised = 0
    batches = (Batch.objects.filter(wallet__chain=chain, status__in=OPEN).select_related("wallet", "mined_tx")
               .order_by("wallet_id", "nonce"))
    hashes = {}  # block number -> canonical hash, asked once per pass (a block carries many of our batches)
    ready = defaultdict(list)  # (block number, hash) -> succeeded batches now final there, made final together
    for batch in batches:
        if batch.status == Batch.Status.MINED:
            finalised += _check_mined(w3, batch, final, hashes=hashes, ready=ready)
        else:
            _check_pending(w3, chain, batch, hashes=hashes)
    if ready:
        finalised += _finalise(ready)
    _check_wallet_nonces(w3, chain)
    return finalised


def _receipt(w3, tx_hash, hashes=None):
    """The receipt, only if its block is on the canonical chain (a node may serve a stale one mid-reorg)."""
    receipt = _receipt_fields(w3, tx_hash)
    if receipt is None:
        return None
    if _canonical_hash(w3, receipt["blockNumber"], hashes) != receipt["blockHash"].to_0x_hex():
        return None
    return receipt


def _receipt_fields(w3, tx_hash):
    """blockNumber, blockHash, status and gasUsed of a receipt, or None when the node has none. Read raw (through
    the provider, which keeps the failover): web3's result formatters checksum every address and wrap every field
    of the receipt's logs, 90 ms for a 200-payout batch (200 Transfer logs) against ~2 ms for the request itself.
    An error answer goes through web3's own call, which raises as it always did."""
    answer = w3.provider.make_request("eth_getTransactionReceipt", [tx_hash])
    if "error" in answer:
        try:
            full = w3.eth.get_transaction_receipt(tx_hash)
        except TransactionNotFound:
            return None
        return {k: full[k] for k in ("blockNumber", "blockHash", "status", "gasUsed")}
    raw = answer.get("result")
    if not raw or raw.get("blockNumber") is None:
        return None
    return {"blockNumber": int(raw["blockNumber"], 16), "blockHash": HexBytes(raw["blockHash"]),
            "status": int(raw["status"], 16), "gasUsed": int(raw["gasUsed"], 16)}


def _canonical_hash(w3, number, hashes=None):
    """`hashes` (block number -> hash) is one pass's memory: within a pass a block is asked for once."""
    if hashes is not None and number in hashes:
        return hashes[number]
    try:
        canonical = w3.eth.get_block(number)["hash"].to_0x_hex()
    except BlockNotFound:
        canonical = None  # the chain is shorter than that now
    if hashes is not None:
        hashes[number] = canonical
    return canonical


def _check_pending(w3, chain, batch, hashes=None):
    attempts = list(batch.attempts.order_by("id"))
    for attempt in reversed(attempts):
        receipt = _receipt(w3, attempt.tx_hash, hashes)
        if receipt is not None:
            _record_mined(batch, attempt, receipt)
            return
    latest = attempts[-1]
    now = timezone.now()
    stuck_for = now - batch.created_at
    if stuck_for > timedelta(minutes=settings.BATCH_STUCK_ALERT_MINUTES):
        # One alert per batch (a fixed subject), its message updated each pass with the age and attempts.
        alert_raise(kind="stuck_batch", wallet=batch.wallet, subject=f"batch {batch.pk}", message=(
            f"batch {batch.pk} (nonce {batch.nonce}, {batch.count} payouts) not mined {int(stuck_for.total_seconds() // 60)} "
            f"min after signing; {len(attempts)} attempt(s), latest {latest.tx_hash}"))
    if chain.stuck_after_seconds and latest.created_at < now - timedelta(seconds=chain.stuck_after_seconds):
        if _replace(w3, chain, batch, latest):
            return
    resend_before = now - timedelta(seconds=settings.PAYOUT_REBROADCAST_AFTER_SECONDS)
    # A node that has forgotten the transaction gets it now, not at the next rebroadcast: a reorg that dropped its
    # block before a pass saw it mined leaves it in no pool (anvil; a node behind a balancer that never had it), and
    # every later nonce of the wallet waits behind it.
    # Asked only of an attempt broadcast a block or more ago: one just sent is in the node's pool, and a pass runs
    # every head with dozens of batches in flight, each an extra round trip.
    just_sent = latest.last_broadcast_at is not None and latest.last_broadcast_at > now - timedelta(
        milliseconds=chain.block_time_ms or 1000)
    if (batch.status == Batch.Status.SIGNED or latest.last_broadcast_at is None
            or latest.last_broadcast_at < resend_before or (not just_sent and not _known(w3, latest))):
        tx_broadcast(tx=latest)


def _known(w3, attempt):
    """Does the node have the transaction (in its pool or a block)?"""
    try:
        w3.eth.get_transaction(attempt.tx_hash)
    except TransactionNotFound:
        return False
    return True


def _record_mined(batch, attempt, receipt):
    with transaction.atomic():
        batch = Batch.objects.select_for_update().get(pk=batch.pk)
        if batch.status not in (Batch.Status.SIGNED, Batch.Status.BROADCAST):
            return
        batch.mark_mined(tx=attempt, block_number=receipt["blockNumber"], block_hash=receipt["blockHash"].to_0x_hex(),
                         succeeded=receipt["status"] == 1, at=timezone.now())
        batch.save()
        for other in batch.attempts.select_for_update().all():
            if other.pk == attempt.pk:
                other.mark_mined(receipt["gasUsed"])
                other.save()
            elif other.status != ChainTransaction.Status.SUPERSEDED:
                other.mark_superseded()
                other.save()
    log.info("batch_mined batch=%s tx_hash=%s block=%s", batch.pk, attempt.tx_hash, receipt["blockNumber"])


def _check_mined(w3, batch, final, hashes=None, ready=None):
    """With `ready` (the pass's collection), a succeeded batch now final is added there for `_finalise`, which makes
    every such batch of one block final in one transaction; alone (or reverted) it is settled here."""
    canonical = _canonical_hash(w3, batch.block_number, hashes)
    if canonical != batch.block_hash:
        _unmine(w3, batch)
        return 0
    if batch.block_number > final:
        return 0
    if ready is not None and batch.succeeded:
        ready[(batch.block_number, canonical)].append(batch)
        return 0
    # A reverted batch: find the payout(s) that made it revert by simulation, before any lock (it reads the node).
    isolation = None if batch.succeeded else revert_isolate(w3, batch)
    with transaction.atomic():
        batch = Batch.objects.select_for_update(of=("self",)).select_related("mined_tx").get(pk=batch.pk)
        if batch.status != Batch.Status.MINED or batch.block_hash != canonical:
            return 0
        references = list(batch.payouts.filter(status=Payout.Status.BATCHED).values_list("reference", flat=True))
        now = timezone.now()
        if batch.succeeded:
            batch.mark_final(now)
            batch.save()
            batch.payouts.all().mark_confirmed()
            payout_listener().payouts_final(references=references, tx_hash=batch.mined_tx.tx_hash)
            failpoint("track.before_final")
        else:
            if isolation is None:  # it read as succeeded before the lock: look again on the next pass
                return 0
            batch.mark_reverted(now)
            batch.save()
            _settle_reverted(batch, isolation)
    log.info("batch_final batch=%s count=%s succeeded=%s", batch.pk, batch.count, batch.succeeded)
    return 1


def _finalise(ready):
    """The succeeded batches of the final, canonical blocks in `ready` ((block number, hash) -> batches), made final in
    one transaction: what `_check_mined` does for one batch (guarded transition under the batch's row lock, payouts
    confirmed, the listener told in the same transaction), done as a set: one lock statement, one compare-and-set of
    the batches and one of their payouts, one listener call, one commit for every block this pass found final (a
    block holds up to ten of our batches, and a pass that fell behind finds several blocks; finalising batch by batch
    and block by block was most of the gap to a pre-signed sender)."""
    canonical = {batch.pk: block_hash for (_number, block_hash), group in ready.items() for batch in group}
    with transaction.atomic():
        locked = list(Batch.objects.select_for_update(of=("self",)).filter(pk__in=list(canonical)).order_by("pk")
                      .values_list("pk", "status", "block_hash", "succeeded", "mined_tx__tx_hash", "count"))
        done = [(pk, tx_hash, count) for pk, status, block_hash, succeeded, tx_hash, count in locked
                if status == Batch.Status.MINED and block_hash == canonical[pk] and succeeded]
        if not done:
            return 0
        ids = [pk for pk, _tx, _count in done]
        references = defaultdict(list)
        for batch_id, reference in (Payout.objects.filter(batch_id__in=ids, status=Payout.Status.BATCHED)
                                    .order_by("pk").values_list("batch_id", "reference")):
            references[batch_id].append(reference)
        now = timezone.now()
        # Compare-and-set, filtered on the state just checked under the locks: any other count is a broken invariant.
        moved = Batch.objects.filter(pk__in=ids, status=Batch.Status.MINED, succeeded=True).mark_final(now)
        if moved != len(ids):
            raise OnchainError(f"{len(ids) - moved} of {len(ids)} batches left `mined` under their row locks")
        confirmed = Payout.objects.filter(batch_id__in=ids).mark_confirmed()
        if confirmed != sum(len(refs) for refs in references.values()):
            raise OnchainError(f"batches {ids}: {confirmed} payouts confirmed, {sum(map(len, references.values()))} "
                               "were batched")
        finals = [(references[pk], tx_hash) for pk, tx_hash, _count in done]
        # A listener that takes the batches at once (payouts_final_many, optional) is told once; any other once per
        # batch. Either way inside this transaction, before it commits.
        listener = payout_listener()
        many = getattr(listener, "payouts_final_many", None)
        if many is not None:
            many(finals=finals)
        else:
            for refs, tx_hash in finals:
                listener.payouts_final(references=refs, tx_hash=tx_hash)
        for _batch in done:
            failpoint("track.before_final")
    for pk, _tx_hash, count in done:
        log.info("batch_final batch=%s count=%s succeeded=True", pk, count)
    return len(done)


def _settle_reverted(batch, isolation):
    """Inside the tracker's transaction, with the batch just marked reverted: its culprits fail (the caller is told
    why), the payouts the isolation cleared go back to the queue for a new batch, any other payout fails. Safe
    because the reverted transaction is final: it spent the batch's nonce, so no attempt of this batch can ever be
    mined, and it paid nothing (docs/settlement.md)."""
    payouts = {p.pk: p for p in batch.payouts.filter(status=Payout.Status.BATCHED)}
    attempt = batch.mined_tx
    gas = f"gas used {attempt.gas_used} of {attempt.gas_limit}"
    failing = defaultdict(list)  # reason → payouts
    culprits = [payouts.pop(pk) for pk in isolation.culprits if pk in payouts]
    for payout in culprits:
        failing[f"batch reverted on chain: {isolation.culprits[payout.pk]}"].append(payout)
    requeue = [payouts.pop(pk) for pk in isolation.requeue if pk in payouts]
    if payouts:  # neither culprits nor cleared: they fail with the isolation's explanation
        failing[f"batch reverted on chain ({gas}): {isolation.unexplained or 'not isolated'}"].extend(payouts.values())
    for reason, failed in failing.items():
        moved = Payout.objects.filter(pk__in=[p.pk for p in failed]).mark_failed(reason)
        if moved != len(failed):  # impossible under the batch's row lock
            raise OnchainError(f"{len(failed) - moved} payouts of batch {batch.pk} left `batched` meanwhile")
        payout_listener().payouts_failed(references=[p.reference for p in failed], reason=reason)
    if requeue and Payout.objects.filter(pk__in=[p.pk for p in requeue]).mark_requeued() != len(requeue):
        raise OnchainError(f"payouts of batch {batch.pk} could not go back to the queue")
    others = len(payouts)
    alert_raise(kind="reconciliation", wallet=batch.wallet, message=(
        f"batch {batch.pk} reverted on chain ({gas}): {len(culprits)} payout(s) the token refuses failed, "
        f"{len(requeue)} re-queued, {others} failed" + (f": {isolation.unexplained}" if others else ""))[:500])
    log.warning("batch_reverted batch=%s tx_hash=%s gas_used=%s culprits=%s requeued=%s failed_otherwise=%s",
                batch.pk, attempt.tx_hash, attempt.gas_used, ",".join(p.reference for p in culprits), len(requeue),
                others)


def _unmine(w3, batch):
    """Its block is no longer canonical. If the transaction was mined again elsewhere, record that block;
    if not, back to `broadcast` and the very same bytes go out again."""
    mined = batch.mined_tx
    receipt = _receipt(w3, mined.tx_hash)
    with transaction.atomic():
        locked = Batch.objects.select_for_update().get(pk=batch.pk)
        if locked.status != Batch.Status.MINED:
            return
        locked.mark_reorged()
        locked.save()
        for attempt in locked.attempts.select_for_update().exclude(status=ChainTransaction.Status.PENDING):
            attempt.mark_unmined()
            attempt.save()
    log.warning("batch_reorged batch=%s tx_hash=%s old_block=%s", batch.pk, mined.tx_hash, batch.block_number)
    if receipt is not None:
        _record_mined(locked, mined, receipt)
    else:
        tx_broadcast(tx=mined)


def _replace(w3, chain, batch, latest):
    """Same nonce, same call, both fee fields raised ≥ FEE_BUMP_PERMILLE: stored first, then broadcast."""
    try:
        fees = fee_bump(fees_of(latest), fee_quote(w3, chain), chain)
    except FeeCeilingReached as exc:
        alert_raise(kind="fee_ceiling", wallet=batch.wallet, subject=f"batch {batch.pk}",  # the fees change each pass
                    message=f"batch {batch.pk}: {exc.detail}")
        return False
    wallet = batch.wallet
    with transaction.atomic():
        locked = Batch.objects.select_for_update().get(pk=batch.pk)
        newest = locked.attempts.order_by("-id").first()
        if locked.status not in (Batch.Status.SIGNED, Batch.Status.BROADCAST) or newest.pk != latest.pk:
            return False
        replacement = attempt_sign(batch=locked, wallet=wallet, to=latest.to_address, data=latest.data,
                                   gas=latest.gas_limit, fees=fees, replaces=latest)
    log.warning("tx_replaced batch=%s nonce=%s old=%s new=%s fees=%s", batch.pk, latest.nonce, latest.tx_hash,
                replacement.tx_hash, fees)
    tx_broadcast(tx=replacement)
    return True


def _check_wallet_nonces(w3, chain):
    """A chain nonce beyond ours means someone else signed with this key: stop and tell an operator. One at or
    below a batch we made final means that batch's transaction left the chain (_resend_lost_final). Halted wallets
    too: a halt stops signing, not the sending and tracking of what was signed."""
    for wallet in HotWallet.objects.filter(chain=chain, is_active=True, next_nonce__isnull=False):
        mined = w3.eth.get_transaction_count(wallet.address, "latest")
        # Read our nonce after the chain's: a batch signed and mined in between must not look foreign.
        wallet.refresh_from_db(fields=["next_nonce"])
        if mined > wallet.next_nonce and not wallet.halted:
            reason = f"chain nonce {mined} is ahead of ours ({wallet.next_nonce}): a transaction we did not sign"
            wallet_halt(wallet_id=wallet.pk, reason=reason)
            alert_raise(kind="nonce", wallet=wallet, message=reason)
        _resend_lost_final(w3, wallet, mined)


def _resend_lost_final(w3, wallet, mined):
    """A final batch whose nonce the chain has not used: its transaction is in no canonical block, so a reorg deeper
    than the chain's finality took it away (or the node is far behind). Its transfers are completed and booked; the
    payment is not on chain, and every later nonce of the wallet waits behind it. Tell an operator and send the
    identical bytes again: the same nonce and batch id, which the contract pays once. A reverted batch is not sent
    again (its payouts may be in a new batch already)."""
    lost = (Batch.objects.filter(wallet=wallet, status=Batch.Status.FINAL, nonce__gte=mined)
            .select_related("mined_tx").order_by("nonce"))
    for batch in lost:
        tx = batch.mined_tx
        if _receipt(w3, tx.tx_hash) is not None or _known(w3, tx):
            continue  # mined since the nonce was read, or already back in the node's pool
        alert_raise(kind="nonce", wallet=wallet, subject=f"final batch {batch.pk}", message=(
            f"batch {batch.pk} (nonce {batch.nonce}, {batch.count} payouts) was made final in block "
            f"{batch.block_number}, and its transaction {tx.tx_hash} is no longer on the node's chain: a reorg "
            "deeper than finality, or a node far behind. Its identical bytes were sent again; reconciliation "
            "will report the block it lands in"))
        log.error("final_batch_left_chain batch=%s nonce=%s tx_hash=%s block=%s", batch.pk, batch.nonce, tx.tx_hash,
                  batch.block_number)
        tx_broadcast(tx=tx)


def nonce_resync(*, wallet_id):
    """Operator action: take the chain's pending nonce as ours, allowed only with nothing of ours in flight."""
    wallet = HotWallet.objects.select_related("chain").get(pk=wallet_id)
    w3 = client.web3(wallet.chain)
    chain_nonce = w3.eth.get_transaction_count(wallet.address, "pending")
    with transaction.atomic():
        wallet = HotWallet.objects.select_for_update().get(pk=wallet_id)
        if Batch.objects.filter(wallet=wallet, status__in=OPEN).exists():
            raise ValueError("Batches of this wallet are still in flight; wait until they are final.")
        wallet.next_nonce = chain_nonce
        HotWallet.objects.filter(pk=wallet.pk).update(next_nonce=chain_nonce)  # bookkeeping: not in the history
    return chain_nonce
