"""Issue 7, item 4 (a stolen card becomes irreversible crypto in seconds) and the card half of item 5.

- velocity limits per card fingerprint, sender email, sender phone, recipient wallet and client IP hold when 20
  attempts race (counters in PostgreSQL, shared by every process);
- a sender's first transfers and large amounts wait for a payout delay: no payout is requested before it;
- `charge.dispute.created` and `radar.early_fraud_warning.created` freeze the sender (email, phone), the card
  (fingerprint) and the wallet, raise an operator alert and book the dispute; frozen identities are refused on
  new transfers, at the pay page, at funding and at screening; an operator can lift a freeze;
- at most CARD_ATTEMPTS_PER_TRANSFER card attempts per transfer, counted race-free;
- every decline reads the same (Stripe's decline text tells a card tester which cards are live).

All against the real PostgreSQL and localstripe (gateway/dev/localstripe_fidelity.py plays Stripe's dispute, fraud
warning and decline test cards)."""

import threading
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.utils import timezone, translation

from onchain.models import OperatorAlert, Payout
from payments import pipeline, pipeline_card, pipeline_refunds
from payments.errors import CardRefused
from payments.models import JournalEntry, Transfer
from payments.providers import stripe_rail
from payments.services.ledger import account_balance
from payments.services.limits import sender_document_record, sender_document_verify, sender_profile_get
from payments.services.quotes import quote_create
from payments.services.transfers import transfer_create
from tests.conftest import new_recipient, pay_on_stripe, stripe_requests, wait_for
from tests.helpers import force_status
from tests.payments.test_api import assert_problem, new_quote, transfer_body
from tests.payments.test_card_payment import card_token, intent
from tests.payments.test_webhooks import deliver, event_json, sign

pytestmark = pytest.mark.django_db
S = Transfer.Status
# Stripe's documented country test cards (all Visa, all distinct fingerprints), none of them Russian.
CARDS = ["4242424242424242", "4000000760000002", "4000001240000000", "4000004840008001", "4000000400000008",
         "4000000560000004", "4000001000000000", "4000001960000008", "4000002030000002", "4000002080000001",
         "4000002330000009", "4000002460000001", "4000002500000003", "4000002760000016", "4000003000000030",
         "4000003480000005", "4000003720000005", "4000003800000008", "4000004280000005", "4000004400000000"]
DISPUTED_CARD = "4000000000000259"
FRAUD_WARNING_CARD = "4000000000005423"


def make_transfer(*, email="john@example.com", phone="+12125551234", wallet=None, amount="250.00", key=None,
                  travel_rule=None):
    quote = quote_create(source_currency="USD", source_amount=Decimal(amount))
    transfer, _ = transfer_create(
        partner=None, idempotency_key=key or str(quote.id), fingerprint="f", quote_id=quote.id,
        sender={"name": "John Smith", "phone": phone, "email": email},
        recipient={"name": "Aida Bekova", "phone": "+996555123456", "wallet_address": wallet or new_recipient()},
        travel_rule=travel_rule)
    return transfer


def funded_with(card, **kwargs):
    """A transfer paid on Stripe with `card` (as a partner's Stripe.js would) and funded from the PaymentIntent."""
    transfer = make_transfer(**kwargs)
    assert pay_on_stripe(transfer.payment_intent_id, card=card)["status"] == "succeeded"
    pipeline.transfer_mark_funded(payment_intent=stripe_rail.payment_intent_retrieve(transfer.payment_intent_id))
    transfer.refresh_from_db()
    return transfer


def race(n, fn):
    """Run fn(i) in n threads released together; returns the outcome of each ("ok" or the exception's class name)."""
    barrier, outcomes = threading.Barrier(n), [None] * n

    def run(i):
        try:
            barrier.wait(timeout=30)
            fn(i)
            outcomes[i] = "ok"
        except Exception as exc:  # the outcome is what the test counts
            outcomes[i] = type(exc).__name__
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return outcomes


def stripe_list(path):
    response = httpx.get(f"{settings.STRIPE_API_BASE}{path}", timeout=10,
                         headers={"Authorization": f"Bearer {settings.STRIPE_SECRET_KEY}"})
    response.raise_for_status()
    return response.json()["data"]


# Velocity ----------------------------------------------------------------------------------------

KINDS = {
    # kind: what the 20 attempts share (everything else differs between them)
    "email": lambda i: {"email": "same@example.com"},
    "phone": lambda i: {"phone": "+12125550000"},
    "wallet": lambda i: {"wallet": "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"},
    "card": lambda i: {"card": "4242424242424242"},
    "ip": lambda i: {"ip": "203.0.113.7"},
}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("kind", list(KINDS))
def test_velocity_limit_holds_when_20_attempts_race(pricing, stripe_server, settings, kind):
    """20 card attempts on 20 transfers that share only one identity, released at once: exactly the limit (4 per
    hour) reach Stripe, the other 16 are refused with a retry time, and the counter says 4."""
    from payments.errors import VelocityLimited
    from payments.models import VelocityCounter

    settings.VELOCITY_LIMITS = {k: [(4, 3600)] if k == kind else [(1000, 3600)] for k in KINDS}
    plans = []
    for i in range(20):
        shared = KINDS[kind](i)
        transfer = make_transfer(email=shared.get("email", f"sender{i}@example.com"),
                                 phone=shared.get("phone", f"+1212555{1000 + i}"), wallet=shared.get("wallet"))
        plans.append((transfer, card_token(shared.get("card", CARDS[i])), shared.get("ip", f"198.51.100.{i + 1}")))
    refused = []

    def attempt(i):
        transfer, token, ip = plans[i]
        try:
            pipeline_card.transfer_pay_card(transfer=transfer, card_token=token, client_ip=ip)
        except VelocityLimited as exc:
            refused.append(exc.retry_after)
            raise

    outcomes = race(20, attempt)
    assert outcomes.count("ok") == 4, outcomes
    assert outcomes.count("VelocityLimited") == 16, outcomes
    assert all(0 < r <= 3600 for r in refused)
    assert len([r for r in stripe_requests("/confirm") if r["method"] == "POST"]) == 4
    assert VelocityCounter.objects.get(kind=kind, window_seconds=3600).count == 4


@pytest.mark.django_db(transaction=True)
def test_velocity_refusal_is_a_429_with_retry_after_on_the_pay_page(client, pricing, stripe_server, settings):
    """The pay page answers a refused attempt with 429 and Retry-After, and says so in words."""
    settings.VELOCITY_LIMITS = {"ip": [(1, 3600)]}
    first, second = make_transfer(), make_transfer(email="other@example.com")
    for transfer, expected in ((first, 200), (second, 429)):
        response = client.post(f"/t/{transfer.sender_token}/pay", {"card_token": card_token()},
                               HTTP_ACCEPT="application/json", REMOTE_ADDR="203.0.113.9")
        assert response.status_code == expected, response.content
    assert 0 < int(response["Retry-After"]) <= 3600
    assert "Too many" in response.json()["errors"][0]


# Attempts per transfer ---------------------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_at_most_three_card_attempts_per_transfer_even_when_20_race(client, pricing, stripe_server, settings):
    """20 different cards submitted at once for one transfer: 3 attempts reach Stripe, 17 are refused; afterwards
    the pay page says so (no card form) and the API shows no attempts left."""
    from payments.errors import CardAttemptsExhausted

    settings.CARD_ATTEMPTS_PER_TRANSFER = 3
    transfer = make_transfer()
    tokens = [card_token(CARDS[i]) for i in range(20)]
    outcomes = race(20, lambda i: pipeline_card.transfer_pay_card(transfer=Transfer.objects.get(pk=transfer.pk),
                                                             card_token=tokens[i]))
    assert outcomes.count(CardAttemptsExhausted.__name__) == 17, outcomes
    assert len([r for r in stripe_requests("/v1/payment_methods") if r["method"] == "POST"]) == 3
    transfer.refresh_from_db()
    assert transfer.card_attempts == 3 and transfer.status == S.AWAITING_FUNDING

    page = client.get(f"/t/{transfer.sender_token}/pay")
    assert page.status_code == 200
    assert b'id="pay-form"' not in page.content and b'id="attempts-exhausted"' in page.content
    again = client.post(f"/t/{transfer.sender_token}/pay", {"card_token": card_token()}, HTTP_ACCEPT="application/json")
    assert again.status_code == 409 and "too many times" in again.json()["errors"][0]


def test_the_same_token_sent_twice_is_one_attempt(pricing, stripe_server, settings):
    """A double click sends the same token twice: it counts once, and the second send is answered from Stripe."""
    settings.CARD_ATTEMPTS_PER_TRANSFER = 1
    transfer = make_transfer()
    token = card_token()
    pipeline_card.transfer_pay_card(transfer=transfer, card_token=token)
    pipeline_card.transfer_pay_card(transfer=Transfer.objects.get(pk=transfer.pk), card_token=token)
    assert Transfer.objects.get(pk=transfer.pk).card_attempts == 1


def test_the_api_shows_attempts_left(api, pricing, stripe_server, settings):
    """`funding.card_attempts_left` in the partner API."""
    settings.CARD_ATTEMPTS_PER_TRANSFER = 3
    created = api.post("/api/v1/transfers", transfer_body(new_quote(api)["id"]), format="json",
                       HTTP_IDEMPOTENCY_KEY="attempts").json()
    assert created["funding"]["card_attempts_left"] == 3


# Generic decline message -------------------------------------------------------------------------

DECLINES = {"insufficient funds": "4000000000009995", "lost card": "4000000000009987", "stolen card": "4000000000009979",
            "expired": "4000000000000069", "incorrect cvc": "4000000000000127", "generic": "4000000000000002",
            "fraudulent": "4100000000000019"}


@pytest.mark.django_db
@pytest.mark.parametrize("card", list(DECLINES.values()), ids=list(DECLINES))
def test_every_decline_reads_the_same(pricing, stripe_server, settings, card):
    """Whatever the issuer said (localstripe answers each of Stripe's decline cards with its own code and text), the
    sender reads one message, in each language; Stripe's text never reaches them."""
    settings.STRIPE_REQUEST_THREE_D_SECURE = "automatic"  # so the decline comes back from our confirm call
    messages = set()
    for language in ("en", "ru", "ky"):
        transfer = make_transfer()
        with translation.override(language), pytest.raises(CardRefused) as refused:
            pipeline_card.transfer_pay_card(transfer=transfer, card_token=card_token(card))
        messages.add((language, refused.value.detail))
        assert intent(transfer.payment_intent_id)["status"] == "requires_payment_method"
    en = dict(messages)["en"]
    assert en == "The payment was declined. Please try another card or contact your bank."
    assert len({m for _, m in messages}) == 3  # translated, not English in every language
    for _, message in messages:
        assert not any(word in message.lower() for word in ("insufficient", "lost", "stolen", "expired", "security code"))


@pytest.mark.django_db
def test_the_pay_page_shows_the_generic_decline(client, pricing, stripe_server, settings):
    """Through the pay view: the JSON the page's script shows has the generic message, not Stripe's."""
    settings.STRIPE_REQUEST_THREE_D_SECURE = "automatic"
    transfer = make_transfer()
    response = client.post(f"/t/{transfer.sender_token}/pay", {"card_token": card_token("4000000000009995")},
                           HTTP_ACCEPT="application/json")
    assert response.status_code == 422
    assert response.json()["errors"] == ["The payment was declined. Please try another card or contact your bank."]
    assert b"insufficient" not in response.content.lower()


# Payout delay ------------------------------------------------------------------------------------

@pytest.fixture
def delays(settings):
    settings.FIRST_TRANSFERS_COUNT = 2
    settings.FIRST_TRANSFERS_PAYOUT_DELAY_SECONDS = 3600
    settings.LARGE_AMOUNT_KGS = Decimal("100000")
    settings.LARGE_AMOUNT_PAYOUT_DELAY_SECONDS = 6 * 3600
    return settings


def _due(transfer):
    return pipeline.transfers_due_for_advance(now=timezone.now()).filter(pk=transfer.pk).exists()


def _time_passes(transfer, seconds):
    """Move the transfer's clock back instead of sleeping (the sweeper compares with now)."""
    Transfer.objects.filter(pk=transfer.pk).update(
        release_after=transfer.release_after - timedelta(seconds=seconds),
        updated_at=transfer.updated_at - timedelta(seconds=seconds))
    transfer.refresh_from_db()


@pytest.mark.django_db
def test_a_first_transfer_is_not_paid_out_before_the_delay(pricing, stripe_server, chain, delays):
    """A new sender's card payment: funded with release_after = funded_at + 1 h; screening leaves it funded, the
    sweeper does not pick it, and no payout exists; once the hour has passed the sweeper's step pays it."""
    transfer = funded_with(CARDS[0])
    assert transfer.status == S.FUNDED
    assert transfer.release_after == transfer.funded_at + timedelta(hours=1)
    pipeline.transfer_advance(transfer_id=transfer.pk)
    transfer.refresh_from_db()
    assert transfer.status == S.FUNDED
    _time_passes(transfer, 3600 - 60)  # a minute early
    assert not _due(transfer)
    pipeline.transfer_advance(transfer_id=transfer.pk)
    assert Payout.objects.count() == 0

    _time_passes(transfer, 61)
    assert _due(transfer)
    pipeline.transfer_advance(transfer_id=transfer.pk)
    assert Transfer.objects.get(pk=transfer.pk).status == S.SETTLING
    assert Payout.objects.filter(reference=str(transfer.pk)).count() == 1


@pytest.mark.django_db
def test_a_known_sender_is_paid_at_once_but_a_large_amount_waits(pricing, stripe_server, chain, delays):
    """Two completed transfers with the same email and card make a known sender: a small amount is paid out at
    once; a large one (over LARGE_AMOUNT_KGS) waits six hours; a new card from the same email is a first transfer.
    (The sender is identified, KYC tier 1, so the tier check does not hold the large amount: docs/compliance.md.)"""
    profile = sender_profile_get(phone="+12125551234", email="john@example.com")
    sender_document_record(profile=profile, id_type="passport", country="US", number="X1", expiry=None, by="ops")
    sender_document_verify(profile=profile, by="ops")
    for _ in range(2):
        force_status(Transfer.objects.filter(pk=funded_with(CARDS[1]).pk), S.COMPLETED)
    small = funded_with(CARDS[1])
    assert small.release_after is None
    pipeline.transfer_advance(transfer_id=small.pk)
    assert Transfer.objects.get(pk=small.pk).status == S.SETTLING

    large = funded_with(CARDS[1], amount="2000.00", travel_rule={
        "originator": {"address": "New York", "date_of_birth": "1980-01-01"}, "beneficiary": {"country": "KG"}})
    assert large.quote.target_amount > Decimal("100000")
    assert large.release_after == large.funded_at + timedelta(hours=6)
    new_card = funded_with(CARDS[2])
    assert new_card.release_after == new_card.funded_at + timedelta(hours=1)
    for transfer in (large, new_card):
        pipeline.transfer_advance(transfer_id=transfer.pk)
        assert Transfer.objects.get(pk=transfer.pk).status == S.FUNDED
    assert list(Payout.objects.values_list("reference", flat=True)) == [str(small.pk)]


# Disputes and early fraud warnings ---------------------------------------------------------------

def _frozen(kind, value):
    from payments.models import Freeze

    return Freeze.objects.filter(kind=kind, value=value, lifted_at__isnull=True).exists()


def _assert_frozen(transfer, fingerprint):
    assert _frozen("email", transfer.sender_email)
    assert _frozen("phone", transfer.sender_phone)
    assert _frozen("wallet", transfer.recipient_wallet.lower())
    assert _frozen("card", fingerprint)


@pytest.mark.django_db(transaction=True)
def test_a_dispute_from_stripe_freezes_the_sender_card_and_wallet(api, pricing, stripe_webhook_to):
    """The real flow: a partner's Stripe.js charges Stripe's dispute test card; localstripe sends
    payment_intent.succeeded, then charge.dispute.created, to our webhook. The transfer (funded, not yet paid out)
    ends `charged_back`; the disputed amount leaves card_clearing for disputes_receivable and, as nothing was paid
    out, the obligation to the recipient is unwound; sender, card and wallet are frozen; operators are alerted."""
    transfer = make_transfer(email="victim-card@example.com", phone="+12125559876")
    pay_on_stripe(transfer.payment_intent_id, card=DISPUTED_CARD)
    wait_for(lambda: Transfer.objects.get(pk=transfer.pk).status == S.CHARGED_BACK, timeout=30,
             what="the dispute to reach the transfer")
    (dispute,) = stripe_list("/v1/disputes")
    charge = stripe_list("/v1/charges")[0]
    _assert_frozen(transfer, charge["payment_method_details"]["card"]["fingerprint"])
    kinds = set(JournalEntry.objects.filter(transfer=transfer).values_list("kind", flat=True))
    assert kinds == {"funding", "dispute", "charged_back"}
    for account, currency in (("card_clearing", "USD"), ("disputes_receivable", "USD"), ("recipient_payable", "KGS"),
                              ("fee_revenue", "USD")):
        assert account_balance(account, currency) == 0, account
    assert OperatorAlert.objects.filter(kind="funding", message__contains=dispute["id"]).count() == 1
    assert not Payout.objects.exists()

    # Frozen identities are refused on a new transfer ...
    body = transfer_body(new_quote(api)["id"])
    body["sender"]["email"] = "victim-card@example.com"
    assert_problem(api.post("/api/v1/transfers", body, format="json", HTTP_IDEMPOTENCY_KEY="after-dispute"), 403,
                   "transfer-refused")
    # ... and the same card (a new token, same fingerprint) is refused at the pay page for anyone.
    other = make_transfer(email="someone-else@example.com", phone="+12125554321")
    with pytest.raises(CardRefused):
        pipeline_card.transfer_pay_card(transfer=other, card_token=card_token(DISPUTED_CARD))
    assert not [r for r in stripe_requests(f"/v1/payment_intents/{other.payment_intent_id}/confirm")]


@pytest.mark.django_db
def test_a_dispute_after_payout_books_the_loss_and_freezes(client, pricing, stripe_server):
    """A transfer already completed: the signed dispute event (the dispute as Stripe holds it) moves the disputed
    amount from card_clearing to disputes_receivable, freezes, alerts; redelivered, or sent again under another
    event id, it changes nothing more."""
    transfer = funded_with(DISPUTED_CARD, email="paid-out@example.com")
    force_status(Transfer.objects.filter(pk=transfer.pk), S.COMPLETED)
    dispute = wait_for(lambda: (stripe_list("/v1/disputes") or [None])[0], timeout=15, what="Stripe's dispute")
    first = event_json(dispute, type_="charge.dispute.created")
    for payload in (first, first, event_json(dispute, type_="charge.dispute.created")):
        assert deliver(client, payload, sign(payload)).status_code == 200
    transfer.refresh_from_db()
    assert transfer.status == S.COMPLETED
    (entry,) = JournalEntry.objects.filter(transfer=transfer, kind="dispute")
    assert sorted((p.account.code, p.amount_minor) for p in entry.postings.all()) == [
        ("card_clearing", -dispute["amount"]), ("disputes_receivable", dispute["amount"])]
    _assert_frozen(transfer, transfer.card_fingerprint)
    assert OperatorAlert.objects.filter(kind="funding", message__contains=dispute["id"]).count() == 1


@pytest.mark.django_db
def test_a_frozen_card_paid_outside_the_pay_page_is_refunded_at_funding(pricing, stripe_server):
    """A card frozen by fingerprint, charged through a partner's Stripe.js for another sender: the succeeded
    payment is not funded but refunded in full and booked in and out of refused_funds."""
    first = funded_with(CARDS[4], email="first@example.com")
    call_command("freezes", "add", "--kind", "card", "--value", first.card_fingerprint, "--reason", "test")
    second = funded_with(CARDS[4], email="second@example.com", phone="+12125550101")
    assert second.status == S.AWAITING_FUNDING
    second = pipeline.transfer_funding_refuse(transfer_id=second.pk)
    assert second.status == S.REFUNDED and "frozen" in second.failure_reason
    assert sorted(JournalEntry.objects.filter(transfer=second).values_list("kind", flat=True)) == [
        "refused_capture", "refused_refund"]


@pytest.mark.django_db
def test_an_early_fraud_warning_rejects_and_refunds_an_unpaid_transfer(client, pricing, stripe_server):
    """A funded transfer not yet paid out (here: waiting for its delay) whose charge gets an early fraud warning
    is rejected and refunded in full; sender, card and wallet are frozen; operators are alerted."""
    transfer = funded_with(FRAUD_WARNING_CARD, email="warned@example.com")
    assert transfer.status == S.FUNDED
    warning = wait_for(lambda: (stripe_list("/v1/radar/early_fraud_warnings") or [None])[0], timeout=15,
                       what="Stripe's early fraud warning")
    payload = event_json(warning, type_="radar.early_fraud_warning.created")
    assert deliver(client, payload, sign(payload)).status_code == 200
    transfer.refresh_from_db()
    assert transfer.status == S.REJECTED
    pipeline_refunds.transfer_refund(transfer_id=transfer.pk)  # what the refund task scheduled after commit does
    transfer.refresh_from_db()
    assert transfer.status == S.REFUNDED
    _assert_frozen(transfer, transfer.card_fingerprint)
    assert OperatorAlert.objects.filter(kind="funding", message__contains=warning["id"]).count() == 1


@pytest.mark.django_db
def test_frozen_wallet_is_rejected_at_screening_and_a_lifted_freeze_lets_transfers_through(api, pricing, stripe_server):
    """A freeze placed by an operator (manage.py freezes) is consulted by screening; lifting it (with who and why)
    lets the next transfer through."""
    from payments.models import Freeze

    wallet = new_recipient()
    transfer = funded_with(CARDS[3], wallet=wallet)
    call_command("freezes", "add", "--kind", "wallet", "--value", wallet, "--reason", "chargeback ring")
    pipeline.transfer_advance(transfer_id=transfer.pk)
    transfer.refresh_from_db()
    assert transfer.status == S.REJECTED and "frozen" in transfer.failure_reason

    body = transfer_body(new_quote(api)["id"], wallet=wallet)
    assert_problem(api.post("/api/v1/transfers", body, format="json", HTTP_IDEMPOTENCY_KEY="w1"), 403, "transfer-refused")
    freeze = Freeze.objects.get(kind="wallet", value=wallet.lower())
    call_command("freezes", "lift", str(freeze.pk), "--by", "ops@tulpar", "--reason", "customer verified")
    freeze.refresh_from_db()
    assert freeze.lifted_at and freeze.lifted_by == "ops@tulpar" and freeze.lift_reason == "customer verified"
    assert api.post("/api/v1/transfers", body, format="json", HTTP_IDEMPOTENCY_KEY="w2").status_code == 201


@pytest.mark.django_db
def test_a_dispute_that_arrives_before_the_funding_ends_the_transfer_charged_back(client, pricing, stripe_server):
    """The dispute's webhook comes first (the succeeded event was lost): the identities are frozen at once; the
    poller then finds the succeeded payment, refuses it (frozen card), and since the bank already took the money
    back (Stripe refuses a refund on a disputed charge) the transfer ends `charged_back`, booked in and out of
    refused_funds, with no refund attempted."""
    transfer = make_transfer(email="early@example.com")
    pay_on_stripe(transfer.payment_intent_id, card=DISPUTED_CARD)
    dispute = wait_for(lambda: (stripe_list("/v1/disputes") or [None])[0], timeout=15, what="Stripe's dispute")
    payload = event_json(dispute, type_="charge.dispute.created")
    assert deliver(client, payload, sign(payload)).status_code == 200
    assert Transfer.objects.get(pk=transfer.pk).status == S.AWAITING_FUNDING
    assert _frozen("email", "early@example.com")

    pipeline.transfer_mark_funded(payment_intent=stripe_rail.payment_intent_retrieve(transfer.payment_intent_id))
    assert Transfer.objects.get(pk=transfer.pk).status == S.AWAITING_FUNDING
    transfer = pipeline.transfer_funding_refuse(transfer_id=transfer.pk)
    assert transfer.status == S.CHARGED_BACK and not transfer.refund_id
    assert sorted(JournalEntry.objects.filter(transfer=transfer).values_list("kind", flat=True)) == [
        "refused_capture", "refused_chargeback"]
    assert account_balance("card_clearing", "USD") == 0
    assert not [r for r in stripe_requests("/v1/refunds") if r["method"] == "POST"]


@pytest.mark.django_db
def test_a_frozen_email_is_frozen_in_every_spelling(api, pricing, stripe_server):
    """A freeze on an email also stops its +tag and letter-case variants (and Gmail's dotted ones)."""
    call_command("freezes", "add", "--kind", "email", "--value", "Victim.Name@gmail.com", "--reason", "test")
    for spelling in ("victimname@gmail.com", "Victim.Name+2@GoogleMail.com", "VICTIM.NAME@GMAIL.COM"):
        body = transfer_body(new_quote(api)["id"])
        body["sender"]["email"] = spelling
        assert_problem(api.post("/api/v1/transfers", body, format="json", HTTP_IDEMPOTENCY_KEY=spelling), 403,
                       "transfer-refused")


MALFORMED_DISPUTES = {
    "object is a string": "dp_1",
    "no charge": {"id": "dp_1", "object": "dispute", "amount": 100, "currency": "usd"},
    "id a number": {"id": 7, "object": "dispute", "charge": "ch_1", "amount": 100, "currency": "usd"},
    "amount a string": {"id": "dp_1", "object": "dispute", "charge": "ch_1", "amount": "100", "currency": "usd"},
}


@pytest.mark.django_db
@pytest.mark.parametrize("type_", ["charge.dispute.created", "radar.early_fraud_warning.created"])
@pytest.mark.parametrize("obj", list(MALFORMED_DISPUTES.values()), ids=list(MALFORMED_DISPUTES))
def test_a_signed_dispute_event_with_a_malformed_object_is_a_400(client, type_, obj):
    """Refused as problem details, never a 500 that Stripe would retry for days; nothing is recorded or frozen."""
    from payments.models import Freeze, StripeEvent

    payload = event_json(obj, type_=type_)
    response = deliver(client, payload, sign(payload))
    assert response.status_code == 400, response.content
    assert not StripeEvent.objects.exists() and not Freeze.objects.exists()
