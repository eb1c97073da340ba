"""Thin Celery entry points: one task per batch for sending; periodic passes for building, tracking,
reconciliation and treasury checks, each run by one worker at a time (onchain.locks), chain by chain."""

import logging

from celery import shared_task
from requests.exceptions import ConnectionError as RPCConnectionError
from requests.exceptions import Timeout as RPCTimeout

from onchain import triggers
from onchain.errors import ChainUnavailable
from onchain.locks import only_one
from onchain.models import Chain, Token
from onchain.services import alert_delivery, passes, sending
from onchain.services.drivers import driver_for

log = logging.getLogger(__name__)

TRANSIENT = (RPCConnectionError, RPCTimeout, ChainUnavailable)


@shared_task(autoretry_for=TRANSIENT, retry_backoff=1, retry_backoff_max=30, max_retries=10)
def batch_send(batch_id):
    sending.batch_send(batch_id=batch_id)


def _isolated(what, rows, run):
    """Run `run(row)` for each row. One chain failing (its RPC down, a node error) does not stop the others: each is
    tried, then the first failure is raised (the task fails visibly, as it did with one chain)."""
    failed = None
    for row in rows:
        try:
            run(row)
        except Exception as exc:  # noqa: BLE001 - any failure of one chain; re-raised after the others ran
            log.warning("settlement_pass_failed pass=%s id=%s error=%s", what, getattr(row, "pk", row),
                        type(exc).__name__)
            failed = failed or exc
    if failed is not None:
        raise failed


def _each(what, rows, run):
    """`_isolated` over (id, protocol) rows, each under a per-id lock: `run(driver, id)`."""
    def locked(row):
        row_id, protocol = row
        with only_one(f"{what}:{row_id}") as mine:
            if mine:  # else another worker is on it (or stuck on that chain's node): this one goes on to the next
                run(driver_for(protocol), row_id)

    _isolated(what, rows, locked)


def _tokens(*, paying=False):
    """Tokens of chains we have hot wallets on (`paying`: an active one, which building needs)."""
    wallets = {"chain__hot_wallets__is_active": True} if paying else {"chain__hot_wallets__isnull": False}
    return Token.objects.filter(**wallets).distinct().order_by("id").values_list("id", "chain__protocol")


@shared_task
def settlement_build():
    """Build what is due (the sweeper: queued payouts never wait on a lost task), token by token."""
    _isolated("build", [token_id for token_id, _ in _tokens(paying=True)], passes.build_and_send)


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
    def track(chain):
        if not passes.heads_tracking(chain):
            passes.track_once(chain.pk)
            passes.build_queued(chain.pk)

    _isolated("track", Chain.objects.filter(hot_wallets__isnull=False).distinct().order_by("id"), track)


def settlement_tick():
    """Both passes, in this process (tests and benchmarks)."""
    settlement_build()
    settlement_track()


@shared_task
def settlement_reconcile():
    _each("reconcile", _tokens(), lambda driver, token_id: driver.reconcile(token_id=token_id))


@shared_task
def treasury_check():
    _each("treasury", _tokens(), lambda driver, token_id: driver.treasury_check(token_id=token_id))


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
