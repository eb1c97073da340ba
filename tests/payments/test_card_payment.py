"""Card funding on localstripe through the pay service: card country refused before charging, 3-D Secure, declines,
double submits, and the poller covering a lost webhook."""

from decimal import Decimal

import httpx
import pytest
from django.conf import settings

from payments import pipeline, pipeline_card
from payments.errors import CardRefused, TransferNotPayable
from payments.models import JournalEntry, Transfer
from payments.providers import stripe_rail
from payments.services.quotes import quote_create
from payments.services.transfers import transfer_create, transfer_funding_prepare
from tests.conftest import authenticate_3ds, new_recipient

pytestmark = pytest.mark.django_db


def card_token(number="4242424242424242"):
    """What Stripe.js does in the browser: tokenise the card with the publishable key."""
    response = httpx.post(f"{settings.STRIPE_API_BASE}/v1/tokens", timeout=10, data={
        "key": settings.STRIPE_PUBLISHABLE_KEY, "card[number]": number, "card[exp_month]": "12",
        "card[exp_year]": "2030", "card[cvc]": "123"})
    response.raise_for_status()
    return response.json()["id"]


def intent(payment_intent_id):
    return httpx.get(f"{settings.STRIPE_API_BASE}/v1/payment_intents/{payment_intent_id}", timeout=10,
                     headers={"Authorization": f"Bearer {settings.STRIPE_SECRET_KEY}"}).json()


@pytest.fixture
def transfer(pricing, stripe_server):
    quote = quote_create(source_currency="USD", source_amount=Decimal("250.00"))
    created, _ = transfer_create(
        partner=None, idempotency_key=str(quote.id), fingerprint="f", quote_id=quote.id,
        sender={"name": "John Smith", "phone": "+12125551234", "email": "john@example.com"},
        recipient={"name": "Aida Bekova", "phone": "+996555123456", "wallet_address": new_recipient()})
    return transfer_funding_prepare(transfer=created)


def funded_from_stripe(transfer):
    """What the webhook or the poller does once the PaymentIntent succeeded."""
    return pipeline.transfer_mark_funded(payment_intent=stripe_rail.payment_intent_retrieve(transfer.payment_intent_id))


def test_good_card_funds_the_transfer_once(transfer):
    """A tokenised card is confirmed with 3-D Secure requested: the PaymentIntent waits for the cardholder, and once
    they authenticate it succeeds and the transfer is funded with one ledger entry."""
    assert pipeline_card.transfer_pay_card(transfer=transfer, card_token=card_token()).status == "requires_action"
    assert authenticate_3ds(intent(transfer.payment_intent_id)).json()["status"] == "succeeded"
    funded_from_stripe(transfer)
    funded_from_stripe(transfer)
    transfer.refresh_from_db()
    assert transfer.status == Transfer.Status.FUNDED
    assert intent(transfer.payment_intent_id)["status"] == "succeeded"
    assert intent(transfer.payment_intent_id)["amount"] == 25000
    assert JournalEntry.objects.filter(transfer=transfer, kind="funding").count() == 1


def test_card_from_a_refused_country_is_never_charged(transfer, settings):
    """A card whose issuing country is refused (RU in production; Stripe's basic test cards are US cards) is refused
    before any charge: the PaymentIntent keeps no payment method and the transfer stays unfunded."""
    settings.CARD_COUNTRIES_REFUSED = ["US"]
    with pytest.raises(CardRefused, match="another country"):
        pipeline_card.transfer_pay_card(transfer=transfer, card_token=card_token())
    transfer.refresh_from_db()
    assert transfer.status == Transfer.Status.AWAITING_FUNDING
    assert intent(transfer.payment_intent_id)["status"] == "requires_payment_method"


def test_declined_card_funds_nothing_and_another_card_can_pay(transfer):
    """A card declined after its 3-D Secure step posts nothing and leaves the transfer waiting for funding; the same
    PaymentIntent is then paid with another card (a new attempt, one confirm call carrying the new card)."""
    pipeline_card.transfer_pay_card(transfer=transfer, card_token=card_token("4000000000000341"))
    declined = authenticate_3ds(intent(transfer.payment_intent_id))
    assert declined.status_code == 402
    assert intent(transfer.payment_intent_id)["status"] == "requires_payment_method"
    assert funded_from_stripe(transfer) is None
    transfer.refresh_from_db()
    assert transfer.status == Transfer.Status.AWAITING_FUNDING
    assert not JournalEntry.objects.filter(transfer=transfer).exists()

    assert pipeline_card.transfer_pay_card(transfer=transfer, card_token=card_token()).status == "requires_action"
    assert authenticate_3ds(intent(transfer.payment_intent_id)).json()["status"] == "succeeded"
    funded_from_stripe(transfer)
    transfer.refresh_from_db()
    assert transfer.status == Transfer.Status.FUNDED and transfer.card_attempts == 2


def test_double_submit_charges_once(transfer):
    """Submitting the same token twice (a double click) confirms once (Stripe replays the keyed calls), charges once
    and leaves the transfer funded."""
    token = card_token()
    stale = Transfer.objects.get(pk=transfer.pk)  # the second request read the row before the first paid
    assert pipeline_card.transfer_pay_card(transfer=transfer, card_token=token).status == "requires_action"
    assert pipeline_card.transfer_pay_card(transfer=stale, card_token=token).status == "requires_action"
    authenticate_3ds(intent(transfer.payment_intent_id))
    funded_from_stripe(transfer)
    transfer.refresh_from_db()
    assert transfer.status == Transfer.Status.FUNDED
    with pytest.raises(TransferNotPayable):
        pipeline_card.transfer_pay_card(transfer=transfer, card_token=token)
    charges = httpx.get(f"{settings.STRIPE_API_BASE}/v1/charges", timeout=10,
                        headers={"Authorization": f"Bearer {settings.STRIPE_SECRET_KEY}"}).json()["data"]
    assert len([c for c in charges if c["payment_intent"] == transfer.payment_intent_id]) == 1
    assert JournalEntry.objects.filter(transfer=transfer, kind="funding").count() == 1


def test_poller_funds_a_transfer_whose_webhook_never_came(transfer):
    """With no webhook delivered, `funding_poll` asks Stripe and funds the paid transfer."""
    from tests.conftest import pay_on_stripe

    pay_on_stripe(transfer.payment_intent_id)
    Transfer.objects.filter(pk=transfer.pk).update(created_at=transfer.created_at - pipeline.timedelta(minutes=1))
    pipeline.funding_poll()
    transfer.refresh_from_db()
    assert transfer.status == Transfer.Status.FUNDED


def test_unpaid_transfer_expires_and_its_payment_intent_is_cancelled(transfer, settings):
    """Past the funding window the PaymentIntent is cancelled first, then the transfer expires."""
    settings.FUNDING_WINDOW_SECONDS = 60
    Transfer.objects.filter(pk=transfer.pk).update(created_at=transfer.created_at - pipeline.timedelta(minutes=5))
    pipeline.funding_poll()
    transfer.refresh_from_db()
    assert transfer.status == Transfer.Status.EXPIRED
    assert intent(transfer.payment_intent_id)["status"] == "canceled"
