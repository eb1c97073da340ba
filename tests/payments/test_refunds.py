"""Refunds: only when there is money to return (a rejected transfer, a payout that can no longer be mined, a cancel
before settlement), in full, once, through `refunding`; the refund's own status decides: only a `succeeded` refund
makes the transfer `refunded` and posts its entry, a pending one is followed to the end by the webhook and by the
sweeper, a failed one (also after it had succeeded) ends `refund_failed` with an operator alert.

Against the real localstripe: gateway/dev/localstripe_fidelity.py plays Stripe's asynchronous refund test cards
(4000000000007726 begins pending then succeeds, 4000000000005126 begins succeeded then fails)."""

from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone
from django_fsm import TransitionNotAllowed

from onchain.models import OperatorAlert, Payout
from payments import pipeline, pipeline_refunds
from payments.models import JournalEntry, Transfer
from payments.providers import stripe_rail
from payments.services.ledger import account_balance
from payments.services.quotes import quote_create
from payments.services.transfers import transfer_create, transfer_funding_prepare
from tests.conftest import new_recipient, pay_on_stripe, stripe_requests, wait_for
from tests.helpers import force_status
from tests.payments.test_webhooks import deliver, event_json, sign

pytestmark = pytest.mark.django_db
S = Transfer.Status
PENDING_REFUND_CARD = "4000000000007726"  # Stripe: the refund begins pending, then succeeds (refund.updated)
FAILING_REFUND_CARD = "4000000000005126"  # Stripe: the refund begins succeeded, then fails (refund.failed)
HOUSE_ACCOUNTS = [("card_clearing", "USD"), ("fee_revenue", "USD"), ("fx_position", "USD"), ("fx_position", "KGS"),
                  ("recipient_payable", "KGS"), ("refunds_payable", "USD"), ("refused_funds", "USD")]


def make_transfer(*, email="john@example.com", amount="120.00"):
    quote = quote_create(source_currency="USD", source_amount=Decimal(amount))
    transfer, _ = transfer_create(
        partner=None, idempotency_key=str(quote.id), fingerprint="f", quote_id=quote.id,
        sender={"name": "John Smith", "phone": "+12125551234", "email": email},
        recipient={"name": "Aida Bekova", "phone": "+996555123456", "wallet_address": new_recipient()})
    return transfer_funding_prepare(transfer=transfer)


def funded_with(card="4242424242424242", **kwargs):
    transfer = make_transfer(**kwargs)
    assert pay_on_stripe(transfer.payment_intent_id, card=card)["status"] == "succeeded"
    pipeline.transfer_mark_funded(payment_intent=stripe_rail.payment_intent_retrieve(transfer.payment_intent_id))
    return Transfer.objects.get(pk=transfer.pk)


def rejected_with(card="4242424242424242", **kwargs):
    transfer = funded_with(card, **kwargs)
    assert transfer.status == S.FUNDED
    return pipeline.transfer_reject(transfer_id=transfer.pk, reason="rejected by a test: wallet on a list")


def stripe_get(path):
    response = httpx.get(f"{settings.STRIPE_API_BASE}{path}", timeout=10,
                         headers={"Authorization": f"Bearer {settings.STRIPE_SECRET_KEY}"})
    response.raise_for_status()
    return response.json()


def refund_becomes(refund_id, status):
    """Wait until Stripe (localstripe) holds the refund in `status`; returns it as Stripe's API does."""
    return wait_for(lambda: (lambda r: r if r["status"] == status else None)(stripe_get(f"/v1/refunds/{refund_id}")),
                    timeout=20, what=f"refund {refund_id} to become {status}")


def refund_posts():
    return [r for r in stripe_requests("/v1/refunds") if r["method"] == "POST"]


def kinds(transfer):
    return sorted(JournalEntry.objects.filter(transfer=transfer).values_list("kind", flat=True))


def balances():
    return {f"{code}:{currency}": account_balance(code, currency) for code, currency in HOUSE_ACCOUNTS}


def fresh(transfer):
    return Transfer.objects.get(pk=transfer.pk)


@pytest.fixture
def failed_settlement(pricing, stripe_server, chain):
    transfer = funded_with()
    pipeline.transfer_advance(transfer_id=transfer.pk)
    assert Payout.objects.filter(reference=str(transfer.pk)).mark_failed("reverted") == 1
    pipeline.TransferPayoutListener().payouts_failed(references=[str(transfer.pk)], reason="transaction reverted on chain")
    transfer.refresh_from_db()
    assert transfer.status == S.SETTLEMENT_FAILED
    return transfer


# Settled refunds ---------------------------------------------------------------------------------

def test_failed_settlement_is_refunded_in_full_once(failed_settlement):
    """The card payment is refunded on Stripe (one request, key derived from the transfer), the refund entry
    reverses the funding, twice changes nothing."""
    pipeline_refunds.transfer_refund(transfer_id=failed_settlement.pk)
    pipeline_refunds.transfer_refund(transfer_id=failed_settlement.pk)
    failed_settlement.refresh_from_db()
    assert failed_settlement.status == S.REFUNDED
    assert failed_settlement.refund_id.startswith("re_")
    assert JournalEntry.objects.filter(transfer=failed_settlement, kind="refund").count() == 1
    assert [r["idempotency_key"] for r in refund_posts()] == [f"transfer-{failed_settlement.pk}-refund"]


def test_no_refund_while_the_payout_can_still_be_mined(failed_settlement):
    """A payout still in a live batch may yet pay: refusing the refund keeps us from paying twice."""
    force_status(Payout.objects.filter(reference=str(failed_settlement.pk)), Payout.Status.BATCHED)
    pipeline_refunds.transfer_refund(transfer_id=failed_settlement.pk)
    failed_settlement.refresh_from_db()
    assert failed_settlement.status == S.SETTLEMENT_FAILED
    assert not JournalEntry.objects.filter(transfer=failed_settlement, kind="refund").exists()
    assert not refund_posts()


def test_a_crash_after_the_refund_call_gets_the_same_refund_back(pricing, stripe_server):
    """The decision (`refunding`) is committed before Stripe is asked; if the answer is lost (a crash between the call
    and our commit), asking again with the transfer's key returns the same refund, and the transfer is refunded
    once."""
    transfer = rejected_with()
    first = stripe_rail.refund_create(transfer_id=transfer.pk, payment_intent_id=transfer.payment_intent_id)
    force_status(Transfer.objects.filter(pk=transfer.pk), S.REFUNDING)  # committed, then the process died
    pipeline_refunds.transfer_refund(transfer_id=transfer.pk)  # what the sweeper's refund task does
    after = fresh(transfer)
    assert (after.status, after.refund_id) == (S.REFUNDED, first.id)
    assert len(stripe_get("/v1/refunds")["data"]) == 1
    assert kinds(transfer) == ["funding", "refund"]


# Pending refunds ---------------------------------------------------------------------------------

def test_a_pending_refund_is_not_refunded_until_its_webhook_says_succeeded(client, pricing, stripe_server):
    """Stripe answers the refund `pending`: the transfer stays `refunding` with the refund recorded and nothing
    posted; `refund.updated` with the refund succeeded (read back from Stripe) makes it `refunded` and posts the
    refund entry, once, however often the event comes."""
    transfer = rejected_with(PENDING_REFUND_CARD)
    after = pipeline_refunds.transfer_refund(transfer_id=transfer.pk)
    assert after.status == S.REFUNDING and after.refund_id.startswith("re_")
    assert fresh(transfer).status == S.REFUNDING
    assert kinds(transfer) == ["funding"]
    refund = refund_becomes(after.refund_id, "succeeded")
    payload = event_json(refund, type_="refund.updated")
    for body in (payload, payload, event_json(refund, type_="refund.updated")):
        assert deliver(client, body, sign(body)).status_code == 200
    after = fresh(transfer)
    assert after.status == S.REFUNDED
    assert kinds(transfer) == ["funding", "refund"]
    assert all(v == 0 for v in balances().values()), balances()


def test_a_pending_refund_whose_webhook_is_lost_is_finished_by_the_sweeper(pricing, stripe_server, settings):
    """No webhook comes: the sweeper lists the refunding transfer once its poll interval has passed, and the refund
    task reads the refund (no new refund is made) and applies it."""
    settings.REFUND_POLL_SECONDS = 0
    transfer = rejected_with(PENDING_REFUND_CARD)
    refund_id = pipeline_refunds.transfer_refund(transfer_id=transfer.pk).refund_id
    refund_becomes(refund_id, "succeeded")
    due = pipeline_refunds.refunds_due(now=timezone.now() + timedelta(seconds=1))
    assert list(due.values_list("id", flat=True)) == [transfer.pk]
    pipeline_refunds.transfer_refund(transfer_id=transfer.pk)  # what refund_task does for each
    assert fresh(transfer).status == S.REFUNDED
    assert len(refund_posts()) == 1
    assert kinds(transfer) == ["funding", "refund"]
    assert not pipeline_refunds.refunds_due(now=timezone.now() + timedelta(seconds=1)).exists()


@pytest.mark.django_db(transaction=True)
def test_a_pending_refund_finishes_through_stripes_own_webhooks(pricing, stripe_webhook_to):
    """The real flow: localstripe sends refund.created and charge.refunded (pending: nothing changes), then
    refund.updated when the refund succeeds, to our endpoint; the transfer ends `refunded` with its entry."""
    transfer = rejected_with(PENDING_REFUND_CARD, email="pending-refund@example.com")
    pipeline_refunds.transfer_refund(transfer_id=transfer.pk)
    wait_for(lambda: fresh(transfer).status == S.REFUNDED, timeout=30, what="the refund webhook to finish it")
    assert kinds(transfer) == ["funding", "refund"]


# Failed refunds ----------------------------------------------------------------------------------

def test_a_refund_that_fails_after_succeeding_ends_refund_failed_owed_to_the_sender(client, pricing, stripe_server):
    """Stripe answers `succeeded` (refunded, refund entry posted), then the refund fails (`refund.failed`): the
    transfer ends `refund_failed`, the money is back in card_clearing and owed to the sender in refunds_payable,
    every other account is back to zero, and operators get one alert."""
    transfer = rejected_with(FAILING_REFUND_CARD)
    assert pipeline_refunds.transfer_refund(transfer_id=transfer.pk).status == S.REFUNDED
    refund = refund_becomes(fresh(transfer).refund_id, "failed")
    for type_ in ("refund.updated", "refund.failed"):
        payload = event_json(refund, type_=type_)
        assert deliver(client, payload, sign(payload)).status_code == 200
    after = fresh(transfer)
    assert after.status == S.REFUND_FAILED
    assert "expired_or_canceled_card" in after.failure_reason
    assert kinds(transfer) == ["funding", "refund", "refund_failed"]
    total = transfer.source_minor
    assert balances() == {**{k: 0 for k in balances()}, "card_clearing:USD": total, "refunds_payable:USD": -total}
    assert OperatorAlert.objects.filter(kind="funding", message__contains="refund failed").count() == 1
    with pytest.raises(TransitionNotAllowed):  # no way back to refunded by itself: an operator decides
        after.mark_refunded(refund["id"])


def test_a_refused_payment_with_a_pending_refund_is_booked_when_the_refund_succeeds(client, pricing, stripe_server):
    """A card frozen by fingerprint, paid outside the pay page: the capture is refused at funding, booked into
    refused_funds and the transfer is `refunding`; only when the refund succeeds is `refused_refund` posted."""
    first = funded_with(PENDING_REFUND_CARD, email="first@example.com")
    call_command("freezes", "add", "--kind", "card", "--value", first.card_fingerprint, "--reason", "test")
    second = make_transfer(email="second@example.com")
    pay_on_stripe(second.payment_intent_id, card=PENDING_REFUND_CARD)
    pipeline.transfer_mark_funded(payment_intent=stripe_rail.payment_intent_retrieve(second.payment_intent_id))
    after = pipeline.transfer_funding_refuse(transfer_id=second.pk)
    assert after.status == S.REFUNDING and "frozen" in after.failure_reason
    assert kinds(second) == ["refused_capture"]
    refund = refund_becomes(after.refund_id, "succeeded")
    payload = event_json(refund, type_="refund.updated")
    assert deliver(client, payload, sign(payload)).status_code == 200
    assert fresh(second).status == S.REFUNDED
    assert kinds(second) == ["refused_capture", "refused_refund"]
    assert account_balance("refused_funds", "USD") == 0


# Bad input ---------------------------------------------------------------------------------------

def test_refunding_an_unfunded_transfer_asks_stripe_nothing_and_changes_nothing(pricing, stripe_server):
    """An unfunded transfer has nothing to refund: the refund step leaves it awaiting funding, posts nothing and
    makes no refund request."""
    transfer = make_transfer()
    assert pipeline_refunds.transfer_refund(transfer_id=transfer.pk).status == S.AWAITING_FUNDING
    assert fresh(transfer).status == S.AWAITING_FUNDING
    assert not JournalEntry.objects.exists() and not refund_posts()


def test_a_second_refund_is_not_made(pricing, stripe_server):
    """A refunded transfer asked to refund again (a redelivered task, an operator's second click) changes nothing:
    one refund at Stripe, one refund entry."""
    transfer = rejected_with()
    pipeline_refunds.transfer_refund(transfer_id=transfer.pk)
    refund_id = fresh(transfer).refund_id
    assert pipeline_refunds.transfer_refund(transfer_id=transfer.pk).status == S.REFUNDED
    assert fresh(transfer).refund_id == refund_id
    assert len(refund_posts()) == 1
    assert kinds(transfer) == ["funding", "refund"]


def test_a_transfer_without_a_payment_intent_never_calls_stripe(pricing, stripe_server):
    """The refund rail is chosen in one place: a transfer with no card payment (e.g. funded from a partner balance)
    gets no Stripe refund; without a rail for it, nothing changes."""
    transfer = rejected_with()
    Transfer.objects.filter(pk=transfer.pk).update(payment_intent_id="")
    assert pipeline_refunds.transfer_refund(transfer_id=transfer.pk).status == S.REJECTED
    assert fresh(transfer).status == S.REJECTED
    assert not refund_posts()
    assert kinds(transfer) == ["funding"]


def test_a_refund_event_for_a_refund_we_do_not_know_changes_nothing(client, pricing, stripe_server):
    """A refund made outside the gateway (e.g. in Stripe's dashboard) on a funded transfer: its events are recorded
    and change no transfer."""
    transfer = funded_with()
    response = httpx.post(f"{settings.STRIPE_API_BASE}/v1/refunds", timeout=10,
                          headers={"Authorization": f"Bearer {settings.STRIPE_SECRET_KEY}"},
                          data={"payment_intent": transfer.payment_intent_id})
    response.raise_for_status()
    payload = event_json(response.json(), type_="refund.updated")
    assert deliver(client, payload, sign(payload)).status_code == 200
    assert fresh(transfer).status == S.FUNDED
    assert kinds(transfer) == ["funding"]


def test_a_partial_refund_made_elsewhere_never_refunds_a_refunding_transfer(client, pricing, stripe_server):
    """A transfer is `refunding` and our refund is not recorded yet; a partial refund of its PaymentIntent made in
    Stripe's dashboard arrives first (matched by its PaymentIntent, as ours could be). It is taken for ours only if
    it returns the whole payment in its currency: this one leaves the transfer `refunding`, nothing booked."""
    transfer = funded_with(email="dashboard@example.com")
    transfer.mark_refunding("cancelled by a test")
    transfer.save()
    response = httpx.post(f"{settings.STRIPE_API_BASE}/v1/refunds", timeout=10,
                          data={"payment_intent": transfer.payment_intent_id, "amount": 100},
                          headers={"Authorization": f"Bearer {settings.STRIPE_SECRET_KEY}"})
    response.raise_for_status()
    payload = event_json(response.json(), type_="refund.updated")
    assert deliver(client, payload, sign(payload)).status_code == 200
    after = fresh(transfer)
    assert after.status == S.REFUNDING and after.refund_id == ""
    assert kinds(transfer) == ["funding"]


@pytest.mark.parametrize("obj", [{"id": "re_1", "object": "refund"}, {"id": 7, "status": "succeeded", "amount": 1},
                                 "re_1"], ids=["no-status", "id-a-number", "a-string"])
def test_a_signed_refund_event_with_a_malformed_object_is_a_400(client, obj):
    """Refused as problem details (never a 500 that Stripe retries for days), nothing recorded."""
    from payments.models import StripeEvent

    payload = event_json(obj, type_="refund.updated")
    assert deliver(client, payload, sign(payload)).status_code == 400
    assert not StripeEvent.objects.exists()


def test_a_refund_stripe_refuses_ends_refund_failed_with_the_money_owed_to_the_sender(pricing, stripe_server):
    """The charge was already refunded outside the gateway (e.g. in Stripe's dashboard), so Stripe refuses our
    refund (charge_already_refunded): the transfer ends `refund_failed`, its funding unwound into refunds_payable
    (card_clearing still holds the payment as far as our books know), and operators get an alert to sort it out."""
    transfer = rejected_with()
    httpx.post(f"{settings.STRIPE_API_BASE}/v1/refunds", timeout=10, data={"payment_intent": transfer.payment_intent_id},
               headers={"Authorization": f"Bearer {settings.STRIPE_SECRET_KEY}"}).raise_for_status()
    after = pipeline_refunds.transfer_refund(transfer_id=transfer.pk)
    assert after.status == S.REFUND_FAILED and not after.refund_id
    assert "already been refunded" in after.failure_reason
    assert kinds(transfer) == ["funding", "refund_failed"]
    total = transfer.source_minor
    assert balances() == {**{k: 0 for k in balances()}, "card_clearing:USD": total, "refunds_payable:USD": -total}
    assert OperatorAlert.objects.filter(kind="funding", message__contains=str(transfer.pk)).count() == 1
    pipeline_refunds.transfer_refund(transfer_id=transfer.pk)  # again: nothing more
    assert kinds(transfer) == ["funding", "refund_failed"]


def test_a_refund_refused_because_the_charge_was_disputed_waits_for_the_dispute(client, pricing, stripe_server):
    """The card's bank disputed the charge before our refund (its webhook not here yet): Stripe refuses the refund,
    which is not a failed refund; the transfer stays `refunding` with nothing posted, and the dispute, when its event
    comes, charges it back (funding unwound against disputes_receivable); no refund is ever made."""
    transfer = rejected_with("4000000000000259")  # Stripe's dispute test card: the charge is disputed a moment later
    dispute = wait_for(lambda: (stripe_get("/v1/disputes")["data"] or [None])[0], timeout=15, what="the dispute")
    assert pipeline_refunds.transfer_refund(transfer_id=transfer.pk).status == S.REFUNDING
    assert fresh(transfer).status == S.REFUNDING and kinds(transfer) == ["funding"]
    payload = event_json(dispute, type_="charge.dispute.created")
    assert deliver(client, payload, sign(payload)).status_code == 200
    assert fresh(transfer).status == S.CHARGED_BACK
    assert kinds(transfer) == ["charged_back", "dispute", "funding"]
    assert account_balance("card_clearing", "USD") == 0 and account_balance("recipient_payable", "KGS") == 0
    assert pipeline_refunds.transfer_refund(transfer_id=transfer.pk).status == S.CHARGED_BACK
    assert not stripe_get("/v1/refunds")["data"]


def test_a_refused_capture_disputed_before_its_refund_ends_charged_back_once_the_dispute_is_known(
        client, pricing, stripe_server):
    """A payment refused at funding (its sender was frozen after the transfer was made) whose charge the bank
    disputes before our refund: Stripe refuses the refund; once the dispute's event is here, the next refund pass
    ends the transfer `charged_back` (its capture returned through the chargeback) instead of asking Stripe again on
    every sweep, and no refund exists."""
    from payments.models import Freeze

    transfer = make_transfer(email="frozen@example.com")
    Freeze.objects.create(kind=Freeze.Kind.EMAIL, value="frozen@example.com",
                          reason="another card's dispute")
    assert pay_on_stripe(transfer.payment_intent_id, card="4000000000000259")["status"] == "succeeded"
    dispute = wait_for(lambda: (stripe_get("/v1/disputes")["data"] or [None])[0], timeout=15, what="the dispute")
    pipeline.transfer_mark_funded(payment_intent=stripe_rail.payment_intent_retrieve(transfer.payment_intent_id))
    pipeline.transfer_funding_refuse(transfer_id=transfer.pk)
    assert fresh(transfer).status == S.REFUNDING  # refused by Stripe, the dispute's event not here yet: it waits
    payload = event_json(dispute, type_="charge.dispute.created")
    assert deliver(client, payload, sign(payload)).status_code == 200
    assert pipeline_refunds.transfer_refund(transfer_id=transfer.pk).status == S.CHARGED_BACK
    assert kinds(transfer) == ["refused_capture", "refused_chargeback"]
    assert account_balance("card_clearing", "USD") == 0 and account_balance("refused_funds", "USD") == 0
    assert not stripe_get("/v1/refunds")["data"]
