"""A dispute meeting a refund: whichever comes first, the money goes back to the cardholder once and the books say
so. Stripe fails a refund still pending on a charge the bank disputes; a dispute can also come after a refund
failed (owed to the sender) or after it succeeded. Against the real localstripe: `POST /_config/disputes` has the
card's bank dispute a charge at a chosen moment (gateway/dev/localstripe_fidelity.py)."""

import httpx
import pytest
from django.conf import settings

from onchain.models import OperatorAlert
from payments import pipeline_refunds
from payments.models import CardDispute, Transfer
from payments.services.ledger import account_balance
from tests.payments.test_refunds import (
    FAILING_REFUND_CARD,
    PENDING_REFUND_CARD,
    balances,
    fresh,
    kinds,
    refund_becomes,
    rejected_with,
)
from tests.payments.test_webhooks import deliver, event_json, sign

pytestmark = pytest.mark.django_db
S = Transfer.Status


def dispute_now(transfer):
    """The card's bank disputes the transfer's charge now; returns the dispute as Stripe's API does."""
    intent = httpx.get(f"{settings.STRIPE_API_BASE}/v1/payment_intents/{transfer.payment_intent_id}", timeout=10,
                       headers={"Authorization": f"Bearer {settings.STRIPE_SECRET_KEY}"}).json()
    charge = intent["latest_charge"]
    charge = charge["id"] if isinstance(charge, dict) else charge
    response = httpx.post(f"{settings.STRIPE_API_BASE}/_config/disputes", data={"charge": charge}, timeout=10)
    response.raise_for_status()
    return response.json()


def test_a_pending_refund_failed_by_a_dispute_ends_charged_back_not_owed_to_the_sender(client, pricing,
                                                                                      stripe_server):
    """The refund is pending when the bank disputes the charge; Stripe fails the refund
    (`charge_for_pending_refund_disputed`). Read with the dispute's own event still on its way, the failed refund
    is not booked as owed to the sender (an operator would pay them a second time): the charge's dispute is read
    from Stripe and charges the transfer back; refunds_payable and card_clearing end at zero and no alert asks to
    pay the sender. The dispute's event, when it comes, changes nothing."""
    transfer = rejected_with(PENDING_REFUND_CARD)
    refund_id = pipeline_refunds.transfer_refund(transfer_id=transfer.pk).refund_id
    assert fresh(transfer).status == S.REFUNDING
    dispute = dispute_now(transfer)
    refund = refund_becomes(refund_id, "failed")
    assert refund["failure_reason"] == "charge_for_pending_refund_disputed"
    payload = event_json(refund, type_="refund.failed")
    assert deliver(client, payload, sign(payload)).status_code == 200
    after = fresh(transfer)
    assert after.status == S.CHARGED_BACK, after.failure_reason
    assert kinds(transfer) == ["charged_back", "dispute", "funding"]
    assert all(v == 0 for v in balances().values()), balances()
    assert account_balance("disputes_receivable", "USD") == 0
    assert not OperatorAlert.objects.filter(message__contains=str(transfer.pk),
                                            message__icontains="owed to the sender").exists()
    payload = event_json(dispute, type_="charge.dispute.created")
    assert deliver(client, payload, sign(payload)).status_code == 200
    assert fresh(transfer).status == S.CHARGED_BACK
    assert kinds(transfer) == ["charged_back", "dispute", "funding"]
    assert CardDispute.objects.filter(stripe_id=dispute["id"]).count() == 1


def test_the_sweeper_books_a_refund_failed_by_a_dispute_as_charged_back(pricing, stripe_server):
    """No webhook at all: the sweeper's refund pass reads the failed refund and the charge's dispute and ends the
    transfer charged back, the same as the webhook would."""
    transfer = rejected_with(PENDING_REFUND_CARD, email="sweeper@example.com")
    refund_id = pipeline_refunds.transfer_refund(transfer_id=transfer.pk).refund_id
    dispute_now(transfer)
    refund_becomes(refund_id, "failed")
    assert pipeline_refunds.transfer_refund(transfer_id=transfer.pk).status == S.CHARGED_BACK
    assert kinds(transfer) == ["charged_back", "dispute", "funding"]
    assert all(v == 0 for v in balances().values()), balances()


def test_a_dispute_after_a_failed_refund_takes_the_debt_to_the_sender_off_the_books(client, pricing, stripe_server):
    """The refund failed (booked `refund_failed`: owed to the sender in refunds_payable), then the cardholder's bank
    disputes the charge and takes the money back to the card: nothing is owed to the sender any more. The transfer
    ends `charged_back`; refunds_payable, card_clearing and disputes_receivable end at zero; the alert says so."""
    transfer = rejected_with(FAILING_REFUND_CARD)
    assert pipeline_refunds.transfer_refund(transfer_id=transfer.pk).status == S.REFUNDED
    refund = refund_becomes(fresh(transfer).refund_id, "failed")
    payload = event_json(refund, type_="refund.failed")
    assert deliver(client, payload, sign(payload)).status_code == 200
    assert fresh(transfer).status == S.REFUND_FAILED
    assert account_balance("refunds_payable", "USD") == -transfer.source_minor
    dispute = dispute_now(transfer)
    payload = event_json(dispute, type_="charge.dispute.created")
    for _ in range(2):  # Stripe may send it twice: booked once
        assert deliver(client, payload, sign(payload)).status_code == 200
    after = fresh(transfer)
    assert after.status == S.CHARGED_BACK, after.failure_reason
    assert kinds(transfer) == ["dispute", "funding", "refund", "refund_failed", "refund_owed_charged_back"]
    assert all(v == 0 for v in balances().values()), balances()
    assert account_balance("disputes_receivable", "USD") == 0
    assert OperatorAlert.objects.filter(message__contains=dispute["id"]).filter(
        message__contains="nothing is owed to the sender").count() == 1


def test_a_refund_that_fails_after_its_charge_was_disputed_ends_charged_back(client, pricing, stripe_server):
    """Refunded, then the bank disputes the charge (booked: Stripe took the disputed amount too), then Stripe fails
    the refund: the chargeback returned the money, so the failed refund is owed to no one; the transfer ends
    `charged_back` with every account at zero and no alert asking to pay the sender."""
    transfer = rejected_with(FAILING_REFUND_CARD, email="late-fail@example.com")
    refund_id = pipeline_refunds.transfer_refund(transfer_id=transfer.pk).refund_id
    dispute = dispute_now(transfer)
    payload = event_json(dispute, type_="charge.dispute.created")
    assert deliver(client, payload, sign(payload)).status_code == 200
    assert fresh(transfer).status == S.REFUNDED
    assert account_balance("disputes_receivable", "USD") == transfer.source_minor
    refund = refund_becomes(refund_id, "failed")
    payload = event_json(refund, type_="refund.failed")
    assert deliver(client, payload, sign(payload)).status_code == 200
    after = fresh(transfer)
    assert after.status == S.CHARGED_BACK, after.failure_reason
    assert all(v == 0 for v in balances().values()), balances()
    assert account_balance("disputes_receivable", "USD") == 0
    assert not OperatorAlert.objects.filter(message__contains=str(transfer.pk),
                                            message__icontains="owed to the sender (docs").exists()


def test_a_dispute_after_a_refund_succeeded_is_booked_as_receivable(client, pricing, stripe_server):
    """Refunded in full, then disputed anyway: Stripe takes the disputed amount as well, so it leaves card_clearing
    for disputes_receivable (to be won back with the refund as evidence); the transfer stays `refunded`."""
    transfer = rejected_with(email="double-dip@example.com")
    assert pipeline_refunds.transfer_refund(transfer_id=transfer.pk).status == S.REFUNDED
    dispute = dispute_now(transfer)
    payload = event_json(dispute, type_="charge.dispute.created")
    assert deliver(client, payload, sign(payload)).status_code == 200
    assert fresh(transfer).status == S.REFUNDED
    assert kinds(transfer) == ["dispute", "funding", "refund"]
    total = transfer.source_minor
    assert account_balance("disputes_receivable", "USD") == total
    assert account_balance("card_clearing", "USD") == -total
    assert OperatorAlert.objects.filter(message__contains=dispute["id"]).filter(
        message__contains="refund as evidence").count() == 1
