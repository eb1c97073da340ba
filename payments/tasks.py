"""Periodic entry points (beat). The tasks of each transfer step live in payments.pipeline and
payments.pipeline_refunds (the refund step), beside the code that schedules them; importing them here registers them
with the worker."""

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded

from payments import pipeline, pipeline_refunds, pipeline_rescreen  # noqa: F401  (pipeline_refunds: its task)
from payments.services import claims, payout_partners, reconciliation
from payments.services.idempotency import idempotency_purge as idempotency_purge_service
from payments.services.rates import rates_refresh as rates_refresh_service


@shared_task
def funding_poll():
    pipeline.funding_poll()


@shared_task
def transfers_sweep():
    pipeline.transfers_sweep()


@shared_task
def reconcile_card():
    reconciliation.card_reconcile()


@shared_task
def reconcile_partner_statements():
    reconciliation.partner_statements_reconcile()


@shared_task
def reconcile_treasury():
    reconciliation.treasury_reconcile_all()


@shared_task
def idempotency_purge():
    idempotency_purge_service()


@shared_task
def rates_refresh():
    rates_refresh_service()


# Many transfers may wait: a longer limit than the steps', and past it the task goes again and resumes where it stopped
# (a transfer already screened against this list version is not screened twice).
@shared_task(name="payments.transfers_rescreen", soft_time_limit=1500, time_limit=1800,
             autoretry_for=(SoftTimeLimitExceeded,), max_retries=10)
def rescreen_task(reason):
    """A new list version committed (`reason` names it, e.g. "ofac_sdn:42"): screen unsettled transfers again. The list
    loader enqueues it on commit: `rescreen_task.delay(reason)`, or by name, `send_task("payments.transfers_rescreen",
    args=[reason])`, where importing payments.tasks would make an import loop."""
    pipeline_rescreen.transfers_rescreen(reason=reason)


@shared_task
def payouts_escalate():
    """Payout partners' payouts unconfirmed past PAYOUT_CONFIRM_ESCALATE_MINUTES: one operator alert each."""
    payout_partners.payouts_escalate()


@shared_task
def claims_sweep():
    """Unclaimed transfers: reminders due, and the final refund past CLAIM_WINDOW_HOURS (payments/services/claims.py)."""
    claims.claims_sweep()


from payments import tasks_notifications, tasks_webhooks  # noqa: E402,F401  (notifications; outgoing webhooks)
