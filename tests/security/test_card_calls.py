"""Issue 7, item 10 (card calls that real Stripe may refuse) and the card-country half of item 4.

The pay flow turns the Stripe.js token into a PaymentMethod (`card[token]`), reads the issuing country from it, and
confirms with ONE call that carries the payment method and the 3-D Secure request; every call is pinned to the API
version the SDK was built for. The card's country is checked again when a payment succeeds, on every funding path
(webhook, poller), so a payment made outside our pay page (a partner's Stripe.js) with a refused card is refunded
before any payout. Everything runs against localstripe (our launcher extends it to Stripe's documented behaviour
for these calls; gateway/dev/localstripe_fidelity.py)."""

from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import stripe
from django.conf import settings
from django.core import checks

from onchain.models import OperatorAlert, Payout
from payments import pipeline, pipeline_card
from payments.errors import CardRefused
from payments.models import JournalEntry, Transfer
from payments.services.ledger import account_balance
from payments.services.quotes import quote_create
from payments.services.transfers import transfer_create, transfer_funding_prepare
from tests.conftest import authenticate_3ds, new_recipient, pay_on_stripe, stripe_requests
from tests.payments.test_card_payment import card_token, intent
from tests.payments.test_webhooks import deliver, event_json, sign

pytestmark = pytest.mark.django_db

RUSSIAN_CARD = "4000006430000009"  # Stripe's documented Russian test card (docs.stripe.com/testing)
BRAZILIAN_CARD = "4000000760000002"


@pytest.fixture
def transfer(pricing, stripe_server):
    quote = quote_create(source_currency="USD", source_amount=Decimal("250.00"))
    created, _ = transfer_create(
        partner=None, idempotency_key=str(quote.id), fingerprint="f", quote_id=quote.id,
        sender={"name": "John Smith", "phone": "+12125551234", "email": "john@example.com"},
        recipient={"name": "Aida Bekova", "phone": "+996555123456", "wallet_address": new_recipient()})
    return transfer_funding_prepare(transfer=created)


def _posts(path_part):
    return [r for r in stripe_requests(path_part) if r["method"] == "POST"]


def test_the_token_becomes_a_payment_method_and_one_confirm_carries_it_with_3ds(transfer):
    """POST /v1/payment_methods with type=card&card[token]; then exactly one confirm carrying `payment_method` and
    `payment_method_options[card][request_three_d_secure]=any`; no update call sets the payment method. The 4242
    card supports 3-D Secure, so the PaymentIntent waits for the cardholder (requires_action) and nothing is funded
    until the authentication completes; then the poller funds it."""
    token = card_token()
    result = pipeline_card.transfer_pay_card(transfer=transfer, card_token=token)
    assert result.status == "requires_action"

    (created,) = _posts("/v1/payment_methods")
    assert created["params"]["type"] == "card" and created["params"]["card[token]"] == token
    method_id = intent(transfer.payment_intent_id)["payment_method"]
    assert method_id.startswith("pm_")
    confirms = _posts(f"/v1/payment_intents/{transfer.payment_intent_id}/confirm")
    assert len(confirms) == 1
    assert confirms[0]["params"]["payment_method"] == method_id
    assert confirms[0]["params"]["payment_method_options[card][request_three_d_secure]"] == "any"
    updates = [r for r in _posts(f"/v1/payment_intents/{transfer.payment_intent_id}") if r["path"].count("/") == 3]
    assert not [u for u in updates if "payment_method" in u["params"]]
    transfer.refresh_from_db()
    assert transfer.status == Transfer.Status.AWAITING_FUNDING

    assert authenticate_3ds(intent(transfer.payment_intent_id)).json()["status"] == "succeeded"
    Transfer.objects.filter(pk=transfer.pk).update(created_at=transfer.created_at - pipeline.timedelta(minutes=1))
    pipeline.funding_poll()
    transfer.refresh_from_db()
    assert transfer.status == Transfer.Status.FUNDED
    assert transfer.card_country == "US" and transfer.card_fingerprint


def test_every_call_is_pinned_to_the_sdks_api_version_and_every_write_has_a_key(transfer):
    """The version written in settings is the one the SDK pins; each request we send carries it (Stripe-Version),
    and each POST carries an Idempotency-Key derived from the transfer."""
    assert settings.STRIPE_API_VERSION == stripe.api_version
    pipeline_card.transfer_pay_card(transfer=transfer, card_token=card_token())
    ours = [r for r in stripe_requests("/v1/") if not r["path"].startswith("/v1/tokens")]
    assert ours and {r["stripe_version"] for r in ours} == {settings.STRIPE_API_VERSION}
    writes = [r for r in ours if r["method"] == "POST"]
    assert writes and all(r["idempotency_key"] and str(transfer.pk) in r["idempotency_key"] for r in writes)


def test_the_pinned_version_is_documented_and_checked():
    """README and docs/architecture.md name the version; `manage.py check` fails if the SDK's pin and the setting
    part (an SDK upgrade must update the docs and the webhook endpoint too)."""
    root = Path(settings.BASE_DIR)
    for doc in ("README.md", "docs/architecture.md"):
        assert settings.STRIPE_API_VERSION in (root / doc).read_text(), doc
    assert not [m for m in checks.run_checks() if m.id.startswith("payments.") and m.level >= checks.ERROR]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(settings, "STRIPE_API_VERSION", "2020-08-27")
        assert [m.id for m in checks.run_checks() if m.id.startswith("payments.")] == ["payments.E001"]


def test_webhook_events_come_in_the_pinned_version(stripe_webhook_to, pricing):
    """The local webhook endpoint is registered with the pinned version, and localstripe stamps its events with it."""
    quote = quote_create(source_currency="USD", source_amount=Decimal("50.00"))
    created, _ = transfer_create(
        partner=None, idempotency_key="v1", fingerprint="f", quote_id=quote.id,
        sender={"name": "John Smith", "phone": "+12125551234", "email": "john@example.com"},
        recipient={"name": "Aida Bekova", "phone": "+996555123456", "wallet_address": new_recipient()})
    pay_on_stripe(created.payment_intent_id)
    events = httpx.get(f"{settings.STRIPE_API_BASE}/v1/events", timeout=10,
                       headers={"Authorization": f"Bearer {settings.STRIPE_SECRET_KEY}"}).json()["data"]
    succeeded = [e for e in events if e["type"] == "payment_intent.succeeded"]
    assert succeeded and {e["api_version"] for e in succeeded} == {settings.STRIPE_API_VERSION}


def test_a_russian_card_is_refused_before_any_charge(transfer):
    """With the default CARD_COUNTRIES_REFUSED (RU), Stripe's Russian test card is refused once its PaymentMethod
    says RU: no confirm call is made, the PaymentIntent keeps no payment method, nothing is funded."""
    assert settings.CARD_COUNTRIES_REFUSED == ["RU"]
    with pytest.raises(CardRefused, match="another country"):
        pipeline_card.transfer_pay_card(transfer=transfer, card_token=card_token(RUSSIAN_CARD))
    assert not _posts("/confirm")
    assert intent(transfer.payment_intent_id)["status"] == "requires_payment_method"
    transfer.refresh_from_db()
    assert transfer.status == Transfer.Status.AWAITING_FUNDING
    assert not JournalEntry.objects.filter(transfer=transfer).exists()


def test_a_brazilian_card_is_not_refused(transfer):
    """The country comes from the card: another documented country card goes on to 3-D Secure."""
    assert pipeline_card.transfer_pay_card(transfer=transfer, card_token=card_token(BRAZILIAN_CARD)).status == "requires_action"


def _refused_at_succeeded(transfer):
    transfer.refresh_from_db()
    assert transfer.status == Transfer.Status.AWAITING_FUNDING and transfer.funded_at is None
    assert not JournalEntry.objects.filter(transfer=transfer, kind="funding").exists()
    pipeline.transfer_funding_refuse(transfer_id=transfer.pk)
    pipeline.transfer_funding_refuse(transfer_id=transfer.pk)  # a redelivered task changes nothing
    transfer.refresh_from_db()
    assert transfer.status == Transfer.Status.REFUNDED
    assert "RU" in transfer.failure_reason
    refunds = httpx.get(f"{settings.STRIPE_API_BASE}/v1/refunds", timeout=10,
                        headers={"Authorization": f"Bearer {settings.STRIPE_SECRET_KEY}"}).json()["data"]
    assert [r["id"] for r in refunds if r["payment_intent"] == transfer.payment_intent_id] == [transfer.refund_id]
    assert sorted(JournalEntry.objects.filter(transfer=transfer).values_list("kind", flat=True)) == [
        "refused_capture", "refused_refund"]
    assert account_balance("card_clearing", "USD") == 0 and account_balance("refused_funds", "USD") == 0
    assert OperatorAlert.objects.filter(kind="funding", message__contains=str(transfer.pk)).count() == 1
    assert not Payout.objects.exists()


def test_a_refused_country_card_paid_outside_the_pay_page_is_refunded_from_the_webhook(client, transfer):
    """A partner's own Stripe.js charged a Russian card: the signed payment_intent.succeeded does not fund the
    transfer (the country is read from the charge), and the refusal refunds it in full, books it and alerts."""
    paid = pay_on_stripe(transfer.payment_intent_id, card=RUSSIAN_CARD)
    assert paid["status"] == "succeeded"
    payload = event_json(paid)
    assert deliver(client, payload, sign(payload)).status_code == 200
    _refused_at_succeeded(transfer)


def test_a_refused_country_card_is_refunded_when_the_poller_finds_the_payment(transfer):
    """No webhook: the funding poller sees the succeeded PaymentIntent, reads the charge's card country, and leaves
    the transfer unfunded for the refusal."""
    pay_on_stripe(transfer.payment_intent_id, card=RUSSIAN_CARD)
    Transfer.objects.filter(pk=transfer.pk).update(created_at=transfer.created_at - pipeline.timedelta(minutes=1))
    pipeline.funding_poll()
    _refused_at_succeeded(transfer)


def test_the_pay_view_refuses_a_card_whose_charge_says_another_country(transfer, settings):
    """Even if the country read before charging passed (here: the rule changes between the two reads), the
    country on the succeeded charge decides: the pay flow's own funding does not fund it either."""
    pipeline_card.transfer_pay_card(transfer=transfer, card_token=card_token())
    settings.CARD_COUNTRIES_REFUSED = ["US"]
    paid = authenticate_3ds(intent(transfer.payment_intent_id)).json()
    assert paid["status"] == "succeeded"
    pipeline.transfer_mark_funded(payment_intent=pipeline.stripe_rail.payment_intent_retrieve(transfer.payment_intent_id))
    transfer.refresh_from_db()
    assert transfer.status == Transfer.Status.AWAITING_FUNDING
