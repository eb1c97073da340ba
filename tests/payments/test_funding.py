"""Creating a transfer and preparing its card funding is one service (payments.services.transfers.transfer_create):
every interface gets a PaymentIntent with the transfer, and when Stripe does not answer the transfer stays
saved and the next try (a partner's retry, the pay page, the sweeper) prepares it with the same key."""

import contextlib
import uuid
from decimal import Decimal

import pytest

from gateway.dev.services import free_port
from payments import pipeline
from payments.models import Transfer
from payments.providers import stripe_rail
from payments.services.quotes import quote_create
from tests.conftest import new_recipient
from tests.payments.test_api import assert_problem, new_quote, transfer_body

pytestmark = pytest.mark.django_db


@contextlib.contextmanager
def stripe_unreachable(settings):
    """Stripe refuses connections for this process inside the block (a real closed port, not a mock)."""
    real_base = settings.STRIPE_API_BASE
    settings.STRIPE_API_BASE = f"http://127.0.0.1:{free_port()}"
    stripe_rail.client.cache_clear()
    try:
        yield
    finally:
        settings.STRIPE_API_BASE = real_base
        stripe_rail.client.cache_clear()


def test_api_transfer_comes_with_its_payment_intent(api, pricing, stripe_server):
    """One call: the transfer and its PaymentIntent, amount in minor units."""
    response = api.post("/api/v1/transfers", transfer_body(new_quote(api)["id"]), format="json",
                        HTTP_IDEMPOTENCY_KEY="one-call")
    assert response.status_code == 201, response.content
    funding = response.json()["funding"]
    assert funding["payment_intent_id"].startswith("pi_") and funding["client_secret"]
    assert Transfer.objects.get().payment_intent_id == funding["payment_intent_id"]


def test_api_keeps_the_transfer_when_stripe_is_down_and_a_retry_prepares_it(api, pricing, stripe_server, settings):
    """503 problem details while Stripe is unreachable, the transfer saved without a PaymentIntent; the same key
    and body once Stripe answers return that transfer (200) with its PaymentIntent, and still one transfer."""
    body = transfer_body(new_quote(api)["id"])
    with stripe_unreachable(settings):
        assert_problem(api.post("/api/v1/transfers", body, format="json", HTTP_IDEMPOTENCY_KEY="k1"), 503,
                       "funding-unavailable")
    (saved,) = Transfer.objects.all()
    assert saved.payment_intent_id == "" and saved.status == Transfer.Status.AWAITING_FUNDING
    retry = api.post("/api/v1/transfers", body, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    assert retry.status_code == 200, retry.content
    assert retry.json()["id"] == str(saved.pk)
    assert retry.json()["funding"]["payment_intent_id"].startswith("pi_")
    assert Transfer.objects.count() == 1


def test_web_form_keeps_the_transfer_when_stripe_is_down(client, pricing, settings):
    """The details form answers 503 with the saved page and its link to pay; nothing is lost, and the pay page
    prepares the card payment once Stripe answers."""
    quote = quote_create(source_currency="RUB", source_amount=Decimal("10000.00"), partner=None)
    with stripe_unreachable(settings):
        response = client.post(f"/send/{quote.id}/details", {
            "sender_name": "Aibek Usenov", "sender_phone": "+7 916 123-45-67", "sender_email": "aibek@example.com",
            "recipient_name": "Gulnara Usenova", "recipient_phone": "+996 555 123 456",
            "recipient_wallet": new_recipient(), "idempotency_key": str(uuid.uuid4())})
    assert response.status_code == 503
    transfer = Transfer.objects.get()
    assert transfer.payment_intent_id == ""
    assert f"/t/{transfer.sender_token}/pay" in response.content.decode()
    # The pay page, with Stripe back, prepares the card payment it missed.
    assert client.get(f"/t/{transfer.sender_token}/pay").status_code == 200
    assert Transfer.objects.get().payment_intent_id.startswith("pi_")


def test_sweeper_prepares_the_payment_intent_stripe_missed(api, pricing, stripe_server, settings):
    """A transfer saved while Stripe was down gets its PaymentIntent from the sweeper once Stripe answers."""
    body = transfer_body(new_quote(api)["id"])
    with stripe_unreachable(settings):
        assert api.post("/api/v1/transfers", body, format="json", HTTP_IDEMPOTENCY_KEY="k2").status_code == 503
    Transfer.objects.update(created_at=Transfer.objects.get().created_at.replace(year=2020))
    pipeline.transfers_sweep()
    assert Transfer.objects.get().payment_intent_id.startswith("pi_")
