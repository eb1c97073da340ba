"""Broadcasting stored bytes. A retry sends the same bytes; a node that already has them, or has mined one of
our attempts at this nonce, counts as sent. A nonce taken by a transaction that is not ours halts the wallet."""

import logging

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from web3.exceptions import TransactionNotFound, Web3RPCError

from onchain import client
from onchain.failpoints import failpoint
from onchain.models import Batch, ChainTransaction
from onchain.services.alerts import alert_raise, wallet_halt

log = logging.getLogger(__name__)

_ALREADY_SENT = ("already known", "already imported", "known transaction", "replacement transaction underpriced")


def batch_send(*, batch_id):
    """The task body for one batch: broadcast its latest attempt. Counts its own starts (a worker killed
    mid-task is visible in admin as send_attempts growing)."""
    Batch.objects.filter(pk=batch_id).update(send_attempts=F("send_attempts") + 1)
    batch = Batch.objects.get(pk=batch_id)
    if batch.status not in (Batch.Status.SIGNED, Batch.Status.BROADCAST):
        return batch
    tx_broadcast(tx=batch.attempts.order_by("-id").first(), via="send")
    return batch


def _ours_at_nonce(w3, tx):
    """Is any of our attempts at this nonce known to the node (pending or mined)?"""
    for attempt in ChainTransaction.objects.filter(batch_id=tx.batch_id):
        try:
            w3.eth.get_transaction(attempt.tx_hash)
            return True
        except TransactionNotFound:
            continue
    return False


def _taken_back(w3, tx):
    """Look again before calling a nonce foreign: a reorg between the node's "nonce too low" and our look can take our
    mined attempt off the chain (the nonce is then free again) or be halfway through putting it back (a node mid-reorg
    answers from two states). Seen in make bench-reorg: a wallet halted for its own transaction."""
    if w3.eth.get_transaction_count(tx.wallet.address, "latest") <= tx.nonce:
        log.warning("tx_nonce_free_again tx_hash=%s nonce=%s: a reorg took the mined attempt away", tx.tx_hash, tx.nonce)
        return True
    return _ours_at_nonce(w3, tx)


def tx_broadcast(*, tx, via="track"):
    """`via` names the caller's failpoints: "send" for the send task, "track" (the default) for the tracker's
    rebroadcasts and replacements (onchain.failpoints)."""
    w3 = client.web3(tx.wallet.chain)
    failpoint(f"{via}.before_broadcast")
    try:
        w3.eth.send_raw_transaction(bytes(tx.raw_tx))
    except (Web3RPCError, ValueError) as exc:
        message = str(exc).lower()
        if "nonce too low" in message:
            if not _ours_at_nonce(w3, tx) and not _taken_back(w3, tx):
                reason = f"nonce {tx.nonce} was used by a transaction that is not ours"
                wallet_halt(wallet_id=tx.wallet_id, reason=reason)
                alert_raise(kind="nonce", wallet=tx.wallet, message=reason)
                ChainTransaction.objects.filter(pk=tx.pk).update(last_error=reason)
                return False
        elif not any(m in message for m in _ALREADY_SENT):
            ChainTransaction.objects.filter(pk=tx.pk).update(last_error=str(exc)[:300])
            log.warning("tx_broadcast_refused tx_hash=%s nonce=%s error=%s", tx.tx_hash, tx.nonce, exc)
            if "insufficient funds" in message:
                alert_raise(kind="low_gas", wallet=tx.wallet, subject="insufficient funds",  # one per wallet, not per hash
                            message=f"node refused {tx.tx_hash}: {exc}"[:500])
            return False
    failpoint(f"{via}.after_broadcast")
    now = timezone.now()
    with transaction.atomic():
        batch = Batch.objects.select_for_update().get(pk=tx.batch_id)
        if batch.status in (Batch.Status.SIGNED, Batch.Status.BROADCAST):
            batch.mark_broadcast(now)
            batch.save(update_fields=["status", "broadcast_at"])
        ChainTransaction.objects.filter(pk=tx.pk).update(broadcast_count=F("broadcast_count") + 1,
                                                         last_broadcast_at=now, last_error="")
    log.info("tx_broadcast batch=%s tx_hash=%s nonce=%s", tx.batch_id, tx.tx_hash, tx.nonce)
    return True
