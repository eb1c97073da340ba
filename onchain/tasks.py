"""Thin Celery entry points; the work is in onchain.services.payouts."""

from celery import shared_task
from requests.exceptions import ConnectionError as RPCConnectionError
from requests.exceptions import Timeout as RPCTimeout

from onchain.errors import ChainUnavailable, WalletHalted
from onchain.services import payouts

TRANSIENT = (RPCConnectionError, RPCTimeout, ChainUnavailable, WalletHalted)


@shared_task(autoretry_for=TRANSIENT, retry_backoff=2, retry_backoff_max=60, max_retries=None)
def payout_submit(payout_id):
    payouts.payout_submit(payout_id=payout_id)


@shared_task
def payouts_track():
    payouts.payouts_track()
    payouts.payouts_sweep()
