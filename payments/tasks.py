"""Thin Celery entry points; the work is in payments.pipeline."""

from celery import shared_task

from onchain.errors import ChainUnavailable, SettlementNotConfigured
from payments import pipeline
from payments.errors import FundingUnavailable


@shared_task(autoretry_for=(SettlementNotConfigured, ChainUnavailable), retry_backoff=2, max_retries=20)
def transfer_advance(transfer_id):
    pipeline.transfer_advance(transfer_id=transfer_id)


@shared_task(autoretry_for=(FundingUnavailable,), retry_backoff=2, max_retries=20)
def transfer_refund(transfer_id):
    pipeline.transfer_refund(transfer_id=transfer_id)


@shared_task
def funding_poll():
    pipeline.funding_poll()


@shared_task
def transfers_sweep():
    pipeline.transfers_sweep()
