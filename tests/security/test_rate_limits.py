"""Issue 7, item 5 (requests half): partner keys, guessed keys and anonymous senders are rate-limited through
Redis (shared by every process), with 429, Retry-After and problem details; concurrent requests cannot overrun."""

import threading
import uuid
from decimal import Decimal

import pytest
from django.db import connections

from common.ratelimit import rate_limit_hit
from payments.models import Quote, Transfer
from payments.services.quotes import quote_create
from tests.conftest import QUOTE_BODY, new_recipient
from tests.payments.test_api import assert_problem

pytestmark = pytest.mark.django_db


def test_a_partner_key_past_its_limit_gets_429_with_retry_after(api, pricing, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "api-key": (5, 60)}
    for _ in range(5):
        assert api.post("/api/v1/quotes", QUOTE_BODY, format="json").status_code == 201
    response = api.post("/api/v1/quotes", QUOTE_BODY, format="json")
    body = assert_problem(response, 429, "throttled")
    assert 1 <= int(response["Retry-After"]) <= 60
    assert "detail" in body
    assert Quote.objects.count() == 5


def test_the_limit_is_per_key(api, pricing, settings):
    """Another partner's key is not throttled by this one's traffic."""
    from rest_framework.test import APIClient

    from payments.services.setup import partner_create

    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "api-key": (3, 60)}
    for _ in range(4):
        api.get("/api/v1/transfers")
    assert api.get("/api/v1/transfers").status_code == 429
    _other, key = partner_create(name="other")
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    assert other.get("/api/v1/transfers").status_code == 200


def test_guessing_api_keys_is_cut_off_before_the_next_guess_is_checked(client, settings, partner):
    """After N invalid keys from one address, every request from it (even with the right key) gets 429 until the
    window ends: at most N guesses per window, far fewer than 100."""
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "api-auth-failures": (10, 3600)}
    for i in range(10):
        response = client.get("/api/v1/transfers", HTTP_AUTHORIZATION=f"Api-Key guess.{i}")
        assert response.status_code == 401
    blocked = client.get("/api/v1/transfers", HTTP_AUTHORIZATION=f"Api-Key {partner.raw_key}")
    assert_problem(blocked, 429, "throttled")
    assert int(blocked["Retry-After"]) > 0
    other_address = client.get("/api/v1/transfers", HTTP_AUTHORIZATION=f"Api-Key {partner.raw_key}",
                               REMOTE_ADDR="10.1.2.3")
    assert other_address.status_code == 200


def test_anonymous_quotes_from_the_sender_form_are_limited_per_address(client, pricing, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "web-quote": (3, 3600)}
    for _ in range(3):
        assert client.post("/", {"source_currency": "RUB", "source_amount": "1000"}).status_code == 302
    response = client.post("/", {"source_currency": "RUB", "source_amount": "1000"})
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert Quote.objects.count() == 3


def test_anonymous_transfers_and_payment_intents_are_limited_per_address(client, pricing, settings, stripe_server):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "web-transfer": (2, 3600)}
    statuses = []
    for _ in range(3):
        quote = quote_create(source_currency="RUB", source_amount=Decimal("10000.00"), partner=None)
        statuses.append(client.post(f"/send/{quote.id}/details", {
            "sender_name": "Aibek Usenov", "sender_phone": "+7 916 123-45-67", "sender_email": "a@example.com",
            "recipient_name": "Gulnara Usenova", "recipient_phone": "+996 555 123 456",
            "recipient_wallet": new_recipient(), "idempotency_key": str(uuid.uuid4())}).status_code)
    assert statuses == [302, 302, 429]
    assert Transfer.objects.count() == 2


def test_sender_cancels_are_limited_per_address_like_transfers(client, pricing, settings, stripe_server):
    """Each cancel POST asks Stripe about the PaymentIntent: past the sender-form limit a 429, and the view (and
    Stripe) is not reached; the transfer is untouched by the refused request."""
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "web-transfer": (1, 3600)}
    quote = quote_create(source_currency="RUB", source_amount=Decimal("10000.00"), partner=None)
    client.post(f"/send/{quote.id}/details", {
        "sender_name": "Aibek Usenov", "sender_phone": "+7 916 123-45-67", "sender_email": "a@example.com",
        "recipient_name": "Gulnara Usenova", "recipient_phone": "+996 555 123 456",
        "recipient_wallet": new_recipient(), "idempotency_key": str(uuid.uuid4())})
    transfer = Transfer.objects.get()
    response = client.post(f"/t/{transfer.sender_token}/cancel")
    assert response.status_code == 429 and int(response["Retry-After"]) > 0
    assert Transfer.objects.get().status == Transfer.Status.AWAITING_FUNDING


def test_fifty_concurrent_hits_never_overrun_a_limit(settings):
    """50 threads hit a limit of 20 at once (each its own Redis connection): exactly 20 are let through."""
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "web-quote": (20, 3600)}
    allowed, start = [], threading.Barrier(50)

    def hit():
        start.wait()
        if rate_limit_hit(scope="web-quote", ident="203.0.113.7") is None:
            allowed.append(1)
        connections.close_all()

    threads = [threading.Thread(target=hit) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(allowed) == 20
