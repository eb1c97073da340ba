"""Periodic entry points (beat). The tasks of each transfer step live in payments.pipeline, beside the code
that schedules them; importing it here registers them with the worker."""

from celery import shared_task

from payments import pipeline
from payments.services import reconciliation
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
    reconciliation.treasury_reconcile()


@shared_task
def rates_refresh():
    rates_refresh_service()
