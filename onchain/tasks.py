"""Thin Celery entry points: one task per batch for sending; periodic passes for building, tracking,
reconciliation and treasury checks, each run by one worker at a time (onchain.locks)."""

from celery import shared_task
from requests.exceptions import ConnectionError as RPCConnectionError
from requests.exceptions import Timeout as RPCTimeout

from onchain import triggers
from onchain.errors import ChainUnavailable
from onchain.locks import only_one
from onchain.models import Chain, Token
from onchain.services import alert_delivery, passes, reconcile, sending, treasury

TRANSIENT = (RPCConnectionError, RPCTimeout, ChainUnavailable)


@shared_task(autoretry_for=TRANSIENT, retry_backoff=1, retry_backoff_max=30, max_retries=10)
def batch_send(batch_id):
    sending.batch_send(batch_id=batch_id)


@shared_task
def settlement_build():
    """Build what is due (the sweeper: queued payouts never wait on a lost task)."""
    for token_id in Token.objects.values_list("id", flat=True):
        passes.build_and_send(token_id)


@shared_task
def settlement_build_token(token_id):
    """A trigger's build (onchain.triggers): payouts were queued. When another builder holds the token it returns at
    once (a worker slot is not spent waiting): that builder's next pass, the heads runner's within 0.25 s or beat's,
    takes what it did not see."""
    triggers.build_taken(token_id)
    if Token.objects.filter(pk=token_id).exists():  # a token row may be gone (tests) by the time the task runs
        passes.build_and_send(token_id)


@shared_task
def settlement_track():
    """Follow what is in flight. Separate from building, so a crash while building never stalls tracking.
    onchain.heads runs the same pass on each new head; this beat pass stands aside while that runner is live."""
    for chain in Chain.objects.all():
        if not passes.heads_tracking(chain):
            passes.track_once(chain.pk)
            passes.build_queued(chain.pk)


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
