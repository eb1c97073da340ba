"""The building and tracking passes as their callers run them: beat's periodic tasks, the build trigger's task
(onchain.triggers) and the heads runner (onchain.heads). One builder per token and one tracker per chain at a time
(onchain.locks); correctness never depends on those locks (row locks and guarded transitions do that)."""

import contextlib
import logging

import redis
from celery import current_app
from django.conf import settings

from onchain import triggers
from onchain.locks import only_one, redis_client
from onchain.models import Chain, Payout, Token
from onchain.services import sending
from onchain.services.drivers import driver_for

log = logging.getLogger(__name__)
SEND_TASK = "onchain.tasks.batch_send"


def build_and_send(token_id, wait=0, send_here=False):
    """One building pass for the token; each batch, as soon as it is committed, goes to its `batch_send` task (a
    worker's pass: retried with backoff, redelivered if its worker dies), or with `send_here` is broadcast from this
    process at once (the heads runner: not through the queue, where it would wait behind the transfers' tasks; no
    row lock is held then; a send that fails here goes to the task). A lost send is the tracker's broadcast.
    `wait`: seconds to wait for a pass already running rather than leave what it did not see to the next one."""
    with only_one(f"build:{token_id}", wait=wait) as mine:
        if not mine:
            return []
        protocol = Token.objects.values_list("chain__protocol", flat=True).get(pk=token_id)
        return driver_for(protocol).build(token_id=token_id, on_built=_send_now if send_here else _send_task)


def _send_task(batch):
    current_app.send_task(SEND_TASK, args=[str(batch.pk)])  # by name: onchain.tasks imports this module


def _send_now(batch):
    try:
        sending.batch_send(batch_id=batch.pk)
    except Exception:  # noqa: BLE001 - any failure: the task retries (transient errors) or the tracker rebroadcasts
        log.warning("batch_send_inline_failed batch=%s: handed to batch_send", batch.pk, exc_info=True)
        _send_task(batch)


def track_once(chain_id, wait=0):
    """One tracking pass for the chain. True when this ran it (False: another tracker holds the chain)."""
    with only_one(f"track:{chain_id}", wait=wait) as mine:
        if mine:
            driver_for(Chain.objects.values_list("protocol", flat=True).get(pk=chain_id)).track(chain_id=chain_id)
    return mine


def build_queued(chain_id, here=False):
    """A build for each token of the chain with payouts queued: here, sending here too (the heads runner), or by a
    trigger for a worker (after beat's tracking pass): a batch just mined frees its wallet, and a payout waiting for
    company may be due now."""
    for token_id in Payout.objects.filter(token__chain_id=chain_id, status=Payout.Status.QUEUED).values_list(
            "token_id", flat=True).distinct():
        if here:
            build_and_send(token_id, send_here=True)
        else:
            triggers.build_kick(token_id)


def _heads_key(chain_id):
    return f"tulpar:heads-alive:{settings.CELERY_TASK_DEFAULT_QUEUE}:{chain_id}"


def heads_alive(chain):
    """The heads runner finished a pass: beat's tracking stands aside while this mark is fresh, three block times
    (at least 2 s); a runner that stopped, or is stuck in a pass, hands back to beat by then."""
    with contextlib.suppress(redis.RedisError):
        redis_client().set(_heads_key(chain.pk), "1", px=max(2000, 3 * (chain.block_time_ms or 1000)))


def heads_tracking(chain):
    """Is the heads runner tracking this chain (its mark fresh)? False when Redis cannot say: beat tracks then."""
    try:
        return bool(redis_client().exists(_heads_key(chain.pk)))
    except redis.RedisError:
        return False

