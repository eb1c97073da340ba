"""Refunds after a failed settlement: only when the payout can no longer be mined, in full, once."""

from decimal import Decimal

import pytest

from onchain.models import Payout
from payments import pipeline
from payments.models import JournalEntry, Transfer
from payments.providers import stripe_rail
from payments.services.quotes import quote_create
from payments.services.transfers import transfer_create, transfer_funding_prepare
from tests.conftest import new_recipient, pay_on_stripe
from tests.helpers import force_status

pytestmark = pytest.mark.django_db


@pytest.fixture
def failed_settlement(pricing, stripe_server, chain):
    quote = quote_create(source_currency="USD", source_amount=Decimal("120.00"))
    transfer, _ = transfer_create(
        partner=None, idempotency_key=str(quote.id), fingerprint="f", quote_id=quote.id,
        sender={"name": "John Smith", "phone": "+12125551234", "email": "john@example.com"},
        recipient={"name": "Aida Bekova", "phone": "+996555123456", "wallet_address": new_recipient()})
    transfer = transfer_funding_prepare(transfer=transfer)
    pay_on_stripe(transfer.payment_intent_id)
    pipeline.transfer_mark_funded(payment_intent=stripe_rail.payment_intent_retrieve(transfer.payment_intent_id))
    pipeline.transfer_advance(transfer_id=transfer.pk)
    assert Payout.objects.filter(reference=str(transfer.pk)).mark_failed("reverted") == 1
    pipeline.TransferPayoutListener().payouts_failed(references=[str(transfer.pk)], reason="transaction reverted on chain")
    transfer.refresh_from_db()
    assert transfer.status == Transfer.Status.SETTLEMENT_FAILED
    return transfer


def test_failed_settlement_is_refunded_in_full_once(failed_settlement):
    """The card payment is refunded on Stripe, the refund entry reverses the funding, twice changes nothing."""
    pipeline.transfer_refund(transfer_id=failed_settlement.pk)
    pipeline.transfer_refund(transfer_id=failed_settlement.pk)
    failed_settlement.refresh_from_db()
    assert failed_settlement.status == Transfer.Status.REFUNDED
    assert failed_settlement.refund_id.startswith("re_")
    assert JournalEntry.objects.filter(transfer=failed_settlement, kind="refund").count() == 1


def test_no_refund_while_the_payout_can_still_be_mined(failed_settlement):
    """A payout still in a live batch may yet pay: refusing the refund keeps us from paying twice."""
    force_status(Payout.objects.filter(reference=str(failed_settlement.pk)), Payout.Status.BATCHED)
    pipeline.transfer_refund(transfer_id=failed_settlement.pk)
    failed_settlement.refresh_from_db()
    assert failed_settlement.status == Transfer.Status.SETTLEMENT_FAILED
    assert not JournalEntry.objects.filter(transfer=failed_settlement, kind="refund").exists()
