"""Issue 7, item 9: a signed webhook whose object is not what we act on gets a 400 (never a 500 that Stripe retries
for days), and a captured payment that does not match its quote is refunded in full, booked and shown to
operators, never funded."""

import json

import httpx
import pytest
from django.conf import settings

from onchain.models import OperatorAlert, Payout
from payments import pipeline
from payments.models import JournalEntry, StripeEvent, Transfer
from payments.services.ledger import account_balance
from tests.conftest import pay_on_stripe
from tests.payments.test_webhooks import deliver, event_json, fetch_intent, sign

pytestmark = pytest.mark.django_db

GOOD = {"id": "pi_x", "object": "payment_intent", "amount": 1000, "currency": "usd", "status": "succeeded"}
MALFORMED = {
    "object is a string": "pi_123",
    "object is a list": [GOOD],
    "object is null": None,
    "currency null": {**GOOD, "currency": None},
    "amount missing": {k: v for k, v in GOOD.items() if k != "amount"},
    "amount a string": {**GOOD, "amount": "1000"},
    "amount a boolean": {**GOOD, "amount": True},
    "id a number": {**GOOD, "id": 7},
    "status missing": {k: v for k, v in GOOD.items() if k != "status"},
}


@pytest.mark.parametrize("obj", list(MALFORMED.values()), ids=list(MALFORMED))
def test_signed_payment_intent_event_with_a_malformed_object_is_a_400(client, obj):
    """Refused as problem details; the event is not recorded (a corrected redelivery still applies)."""
    payload = event_json(obj)
    response = deliver(client, payload, sign(payload))
    assert response.status_code == 400, response.content
    assert response["Content-Type"].startswith("application/problem+json")
    assert json.loads(response.content)["status"] == 400
    assert not StripeEvent.objects.exists()


def _stripe(method, path, **data):
    response = httpx.request(method, f"{settings.STRIPE_API_BASE}{path}", data=data or None, timeout=10,
                             headers={"Authorization": f"Bearer {settings.STRIPE_SECRET_KEY}"})
    response.raise_for_status()
    return response.json()


@pytest.fixture
def mismatched(api, pricing, stripe_server):
    """A transfer whose PaymentIntent was captured in another currency than its quote's (EUR instead of RUB)."""
    from tests.payments.test_api import new_quote, transfer_body

    created = api.post("/api/v1/transfers", transfer_body(new_quote(api)["id"]), format="json",
                       HTTP_IDEMPOTENCY_KEY="mismatch-1").json()
    pi_id = created["funding"]["payment_intent_id"]
    _stripe("POST", f"/v1/payment_intents/{pi_id}", currency="eur")
    assert pay_on_stripe(pi_id)["status"] == "succeeded"
    return Transfer.objects.get(pk=created["id"]), fetch_intent(pi_id)


def test_a_captured_payment_that_does_not_match_the_quote_is_refunded_never_funded(client, mismatched):
    """The webhook accepts the event but does not fund; the refusal refunds the PaymentIntent in full on Stripe,
    books the capture and the refund (card clearing back to zero), ends the transfer `refunded` and raises a
    `funding` alert. Run twice (a redelivered task), it changes nothing more."""
    transfer, intent = mismatched
    payload = event_json(intent)
    assert deliver(client, payload, sign(payload)).status_code == 200
    assert Transfer.objects.get(pk=transfer.pk).status == Transfer.Status.AWAITING_FUNDING  # not funded

    for _ in range(2):
        pipeline.transfer_funding_refuse(transfer_id=transfer.pk)
    after = Transfer.objects.get(pk=transfer.pk)
    assert after.status == Transfer.Status.REFUNDED
    assert "refunded in full" in after.failure_reason
    refunds = [r for r in _stripe("GET", "/v1/refunds")["data"] if r["payment_intent"] == intent["id"]]
    assert [r["id"] for r in refunds] == [after.refund_id]
    assert refunds[0]["amount"] == intent["amount"]
    kinds = sorted(JournalEntry.objects.filter(transfer=transfer).values_list("kind", flat=True))
    assert kinds == ["unmatched_capture", "unmatched_refund"]
    assert account_balance("card_clearing", "EUR") == 0 and account_balance("unmatched_funds", "EUR") == 0
    assert OperatorAlert.objects.filter(kind="funding", message__contains=str(transfer.pk)).count() == 1
    assert not Payout.objects.exists()


def test_the_poller_finds_the_mismatch_when_no_webhook_came(mismatched):
    """Without a webhook, the funding poller sees the succeeded PaymentIntent and leaves it unfunded; the refusal
    then refunds it (the task the poller schedules runs the same service)."""
    transfer, _intent = mismatched
    Transfer.objects.filter(pk=transfer.pk).update(created_at=transfer.created_at - pipeline.timedelta(minutes=1))
    pipeline.funding_poll()
    assert Transfer.objects.get(pk=transfer.pk).status == Transfer.Status.AWAITING_FUNDING
    assert pipeline.transfer_funding_refuse(transfer_id=transfer.pk).status == Transfer.Status.REFUNDED
