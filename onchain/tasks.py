"""Thin Celery entry points: one task per batch for sending; periodic passes for building, tracking,
reconciliation and treasury checks, each run by one worker at a time (onchain.locks)."""

import contextlib
import logging

import redis
from celery import shared_task
from django.conf import settings
from requests.exceptions import ConnectionError as RPCConnectionError
from requests.exceptions import Timeout as RPCTimeout

from onchain import triggers
from onchain.errors import ChainUnavailable
from onchain.locks import only_one, redis_client
from onchain.models import Chain, Payout, Token
from onchain.services import alert_delivery, batches, reconcile, sending, tracking, treasury

log = logging.getLogger(__name__)

TRANSIENT = (RPCConnectionError, RPCTimeout, ChainUnavailable)


@shared_task(autoretry_for=TRANSIENT, retry_backoff=1, retry_backoff_max=30, max_retries=10)
def batch_send(batch_id):
    sending.batch_send(batch_id=batch_id)


@shared_task
def settlement_build():
    """Build what is due (the sweeper: queued payouts never wait on a lost task)."""
    for token_id in Token.objects.values_list("id", flat=True):
        build_and_send(token_id)


@shared_task
def settlement_build_token(token_id):
    """A trigger's build (onchain.triggers): payouts were queued. Waits briefly for a pass already running, so a
    payout it did not see is not left to beat's next tick."""
    triggers.build_taken(token_id)
    if Token.objects.filter(pk=token_id).exists():  # a trigger outlives nothing, but a token row may be gone
        build_and_send(token_id, wait=BUILD_LOCK_WAIT)


BUILD_LOCK_WAIT = 3  # seconds; a build pass takes well under that


def build_and_send(token_id, wait=0):
    """One building pass for the token (one builder at a time), each batch broadcast from here as soon as it is
    committed (no row lock is held then), not through the queue, where it would wait behind the transfers' tasks.
    A send that fails here goes to its own task (retried); a lost one is the tracker's rebroadcast."""
    with only_one(f"build:{token_id}", wait=wait) as mine:
        return batches.batches_build(token_id=token_id, on_built=_send_now) if mine else []


def _send_now(batch):
    try:
        sending.batch_send(batch_id=batch.pk)
    except Exception:  # noqa: BLE001 - any failure: the task retries (TRANSIENT) or the tracker rebroadcasts
        log.warning("batch_send_inline_failed batch=%s: handed to batch_send", batch.pk, exc_info=True)
        batch_send.delay(str(batch.pk))


@shared_task
def settlement_track():
    """Follow what is in flight. Separate from building, so a crash while building never stalls tracking.
    onchain.heads runs the same pass on each new head; this beat pass is its fallback."""
    for chain in Chain.objects.all():
        if _heads_tracking(chain):
            continue  # the heads runner tracked a moment ago and will on the next head: this pass would repeat it
        track_once(chain.pk)


def _heads_key(chain_id):
    return f"tulpar:heads-alive:{settings.CELERY_TASK_DEFAULT_QUEUE}:{chain_id}"


def heads_alive(chain_id):
    """The heads runner (onchain.heads) finished a pass; beat's tracking stands aside while this is fresh."""
    chain = Chain.objects.get(pk=chain_id)
    with contextlib.suppress(redis.RedisError):
        redis_client().set(_heads_key(chain_id), "1", px=_heads_fresh_ms(chain))


def _heads_fresh_ms(chain):
    # Three block times (at least 2 s): a runner that stopped, or one stuck in a pass, hands back to beat by then.
    return max(2000, 3 * (chain.block_time_ms or 1000))


def _heads_tracking(chain):
    try:
        return bool(redis_client().exists(_heads_key(chain.pk)))
    except redis.RedisError:
        return False


def track_once(chain_id, wait=0, build_here=False):
    """One tracking pass for the chain (one tracker at a time); then, when payouts are queued, a build (here, or a
    trigger for a worker): a batch just mined frees its wallet, and a payout waiting for company may be due now."""
    with only_one(f"track:{chain_id}", wait=wait) as mine:
        if mine:
            tracking.chain_track(chain_id=chain_id)
    for token_id in Payout.objects.filter(token__chain_id=chain_id, status=Payout.Status.QUEUED).values_list(
            "token_id", flat=True).distinct():
        if build_here:
            build_and_send(token_id)
        else:
            triggers.build_kick(token_id)
    return mine


def settlement_tick():
    """Both passes, in this process (tests and benchmarks)."""
    settlement_build()
    settlement_track()


@shared_task
def settlement_reconcile():
    for token_id in Token.objects.values_list("id", flat=True):
        with only_one(f"reconcile:{token_id}") as mine:
            if mine:
                reconcile.reconcile(token_id=token_id)


@shared_task
def treasury_check():
    for token_id in Token.objects.values_list("id", flat=True):
        treasury.treasury_check(token_id=token_id)


# One attempt per run, retried with backoff while the channel refuses; the row counts attempts and gives up after
# ALERT_DELIVERY_ATTEMPTS (so a redelivered task never sends more). Arguments are ids only: no address, no URL.
@shared_task(name=alert_delivery.DELIVER_TASK, autoretry_for=(alert_delivery.AlertDeliveryFailed,), retry_backoff=10,
             retry_backoff_max=300, max_retries=20)
def alert_deliver(delivery_id):
    alert_delivery.alert_delivery_attempt(delivery_id=delivery_id)


@shared_task(name="onchain.alerts_sweep")
def alerts_sweep():
    """Reminders now due, and deliveries whose task was lost."""
    with only_one("alerts-sweep") as mine:
        if mine:
            alert_delivery.alerts_sweep()
