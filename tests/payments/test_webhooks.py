"""Stripe webhooks: events signed like Stripe signs them, about PaymentIntents paid on the real localstripe."""

import hashlib
import hmac
import json
import secrets
import time

import httpx
import pytest
from django.conf import settings

from payments.models import JournalEntry, StripeEvent, Transfer
from tests.conftest import QUOTE_BODY, new_recipient, pay_on_stripe

pytestmark = pytest.mark.django_db

URL = "/webhooks/stripe"


def sign(payload, *, secret=None, ts=None):
    """A `Stripe-Signature` header value, computed as Stripe does."""
    ts = int(time.time()) if ts is None else ts
    mac = hmac.new((secret or settings.STRIPE_WEBHOOK_SECRET).encode(), f"{ts}.{payload}".encode(), hashlib.sha256)
    return f"t={ts},v1={mac.hexdigest()}"


def event_json(intent, *, type_="payment_intent.succeeded", event_id=None):
    return json.dumps({"id": event_id or f"evt_{secrets.token_hex(12)}", "object": "event", "type": type_,
                       "api_version": "2024-06-20", "created": int(time.time()), "livemode": False,
                       "data": {"object": intent}})


def deliver(client, payload, signature=None):
    headers = {} if signature is None else {"HTTP_STRIPE_SIGNATURE": signature}
    return client.post(URL, data=payload, content_type="application/json", **headers)


def fetch_intent(payment_intent_id):
    response = httpx.get(f"{settings.STRIPE_API_BASE}/v1/payment_intents/{payment_intent_id}", timeout=10,
                         headers={"Authorization": f"Bearer {settings.STRIPE_SECRET_KEY}"})
    response.raise_for_status()
    return response.json()


@pytest.fixture
def paid(api, pricing, stripe_server):
    """A transfer created through the API and paid with a test card on localstripe (no webhook configured)."""
    quote = api.post("/api/v1/quotes", QUOTE_BODY, format="json").json()
    body = {"quote_id": quote["id"],
            "sender": {"name": "Aibek Usenov", "phone": "+79161234567", "email": "aibek@example.com"},
            "recipient": {"name": "Gulnara Usenova", "phone": "+996555123456", "wallet_address": new_recipient()}}
    created = api.post("/api/v1/transfers", body, format="json", HTTP_IDEMPOTENCY_KEY="order-1")
    assert created.status_code == 201, created.content
    pi_id = created.json()["funding"]["payment_intent_id"]
    assert pay_on_stripe(pi_id)["status"] == "succeeded"
    intent = fetch_intent(pi_id)
    assert intent["status"] == "succeeded"
    return Transfer.objects.get(pk=created.json()["id"]), intent


def assert_untouched(transfer):
    """Nothing recorded, nothing moved."""
    assert StripeEvent.objects.count() == 0
    transfer.refresh_from_db()
    assert transfer.status == Transfer.Status.AWAITING_FUNDING
    assert transfer.funded_at is None
    assert not JournalEntry.objects.filter(transfer=transfer).exists()


def assert_refused(response):
    assert response.status_code == 400, response.content
    assert response["Content-Type"].split(";")[0] == "application/problem+json"
    assert {"type", "title", "status", "detail"} <= set(response.json())
    assert response.json()["status"] == 400


def test_signed_succeeded_event_funds_the_transfer(client, paid):
    """A correctly signed payment_intent.succeeded for the transfer's PaymentIntent funds it and posts the funding entry."""
    transfer, intent = paid
    payload = event_json(intent)
    response = deliver(client, payload, sign(payload))
    assert response.status_code == 200, response.content
    transfer.refresh_from_db()
    assert transfer.status not in (Transfer.Status.AWAITING_FUNDING, Transfer.Status.EXPIRED)
    assert transfer.status == Transfer.Status.FUNDED  # the next step waits for a worker
    assert transfer.funded_at is not None
    assert JournalEntry.objects.filter(transfer=transfer, kind="funding").count() == 1
    event = StripeEvent.objects.get()
    assert event.event_id == json.loads(payload)["id"]
    assert event.object_id == intent["id"]


def test_same_event_three_times_applies_once(client, paid):
    """Redelivering the same event is answered 200 each time and recorded and applied exactly once."""
    transfer, intent = paid
    payload = event_json(intent)
    for _ in range(3):
        response = deliver(client, payload, sign(payload))
        assert response.status_code == 200, response.content
    assert StripeEvent.objects.count() == 1
    assert JournalEntry.objects.filter(transfer=transfer, kind="funding").count() == 1
    transfer.refresh_from_db()
    assert transfer.status == Transfer.Status.FUNDED


def test_two_events_for_one_intent_fund_once(client, paid):
    """Two distinct events about the same PaymentIntent are both recorded but fund the transfer once."""
    transfer, intent = paid
    for _ in range(2):
        payload = event_json(intent)
        assert deliver(client, payload, sign(payload)).status_code == 200
    assert StripeEvent.objects.count() == 2
    assert JournalEntry.objects.filter(transfer=transfer, kind="funding").count() == 1


def test_mutated_body_is_refused(client, paid):
    """A body changed after signing (here: a larger amount) fails verification: 400 problem, no state change."""
    transfer, intent = paid
    payload = event_json(intent)
    signature = sign(payload)
    tampered = payload.replace(f'"amount": {intent["amount"]}', f'"amount": {intent["amount"] + 100}', 1)
    assert tampered != payload
    assert_refused(deliver(client, tampered, signature))
    assert_untouched(transfer)


def test_wrong_signature_is_refused(client, paid):
    """A well-formed header whose v1 is not the body's HMAC is refused: 400 problem, no state change."""
    transfer, intent = paid
    payload = event_json(intent)
    assert_refused(deliver(client, payload, f"t={int(time.time())},v1={secrets.token_hex(32)}"))
    assert_untouched(transfer)


def test_signature_with_wrong_secret_is_refused(client, paid):
    """An event signed with another endpoint's secret is refused: 400 problem, no state change."""
    transfer, intent = paid
    payload = event_json(intent)
    assert_refused(deliver(client, payload, sign(payload, secret="whsec_" + secrets.token_hex(16))))
    assert_untouched(transfer)


def test_old_timestamp_is_refused(client, paid):
    """A correctly signed event whose timestamp is older than the 300 s tolerance (a replay) is refused."""
    transfer, intent = paid
    payload = event_json(intent)
    assert_refused(deliver(client, payload, sign(payload, ts=int(time.time()) - 301)))
    assert_untouched(transfer)


@pytest.mark.parametrize("signature", [None, "", "garbage", "v1=abc"], ids=["missing", "empty", "garbage", "no-ts"])
def test_missing_or_malformed_header_is_refused(client, paid, signature):
    """Without a usable Stripe-Signature header the event is refused: 400 problem, no state change."""
    transfer, intent = paid
    assert_refused(deliver(client, event_json(intent), signature))
    assert_untouched(transfer)


def test_webhook_answers_only_post(client):
    """GET on the webhook endpoint is not allowed."""
    assert client.get(URL).status_code == 405


@pytest.mark.parametrize(("field", "change"), [("amount", -100), ("currency", "usd")], ids=["amount", "currency"])
def test_intent_not_matching_the_transfer_does_not_fund(client, paid, field, change):
    """A signed succeeded event whose PaymentIntent amount or currency differs from the transfer's leaves it unfunded."""
    transfer, intent = paid
    intent = {**intent, field: intent[field] + change if isinstance(change, int) else change}
    payload = event_json(intent)
    assert deliver(client, payload, sign(payload)).status_code == 200
    transfer.refresh_from_db()
    assert transfer.status == Transfer.Status.AWAITING_FUNDING
    assert transfer.funded_at is None
    assert not JournalEntry.objects.filter(transfer=transfer).exists()


def test_unsucceeded_intent_does_not_fund(client, api, pricing, stripe_server):
    """A signed succeeded-type event carrying a PaymentIntent that is not `succeeded` does not fund the transfer."""
    quote = api.post("/api/v1/quotes", QUOTE_BODY, format="json").json()
    body = {"quote_id": quote["id"],
            "sender": {"name": "Aibek Usenov", "phone": "+79161234567", "email": "aibek@example.com"},
            "recipient": {"name": "Gulnara Usenova", "phone": "+996555123456", "wallet_address": new_recipient()}}
    created = api.post("/api/v1/transfers", body, format="json", HTTP_IDEMPOTENCY_KEY="order-1").json()
    intent = fetch_intent(created["funding"]["payment_intent_id"])
    assert intent["status"] != "succeeded"
    payload = event_json(intent)
    assert deliver(client, payload, sign(payload)).status_code == 200
    transfer = Transfer.objects.get(pk=created["id"])
    assert transfer.status == Transfer.Status.AWAITING_FUNDING
    assert not JournalEntry.objects.exists()


def test_unhandled_event_type_is_recorded_and_ignored(client, paid):
    """An event type with no handler is acknowledged and recorded, and does not fund the transfer."""
    transfer, intent = paid
    payload = event_json(intent, type_="payment_intent.created")
    assert deliver(client, payload, sign(payload)).status_code == 200
    assert StripeEvent.objects.get().event_type == "payment_intent.created"
    transfer.refresh_from_db()
    assert transfer.status == Transfer.Status.AWAITING_FUNDING
    assert not JournalEntry.objects.exists()


@pytest.mark.parametrize("payload", [
    "{}",
    "[]",
    '{"id": "evt_1", "object": "event", "type": "payment_intent.succeeded"}',
    '{"id": "evt_2", "object": "event", "type": "payment_intent.succeeded", "data": {}}',
    "not json",
], ids=["empty-object", "array", "no-data", "no-data-object", "not-json"])
def test_signed_but_malformed_event_is_refused(client, payload):
    """A correctly signed body that is not a Stripe event is a 400 problem (not a 500) and records nothing."""
    assert_refused(deliver(client, payload, sign(payload)))
    assert StripeEvent.objects.count() == 0
