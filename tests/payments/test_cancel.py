"""Cancellation before settlement, by the sender (API, web) and by an operator (admin, with a reason), and expiry.

- unpaid: the PaymentIntent is cancelled at Stripe first (no late payment can land), the transfer ends `cancelled`,
  nothing is posted; a payment that had already succeeded is funded and the cancel becomes a full refund;
- paid (funded, held): `refunding`, then `refunded` with the refund entry;
- a second cancel answers with the transfer as it is; a cancel once settlement started is refused (409 problem, a
  message on the page and in admin) and changes nothing; another partner's transfer is not found (404).
All against the real PostgreSQL and localstripe."""

import httpx
import pytest
from django.test import Client

from payments import pipeline, pipeline_cancel, pipeline_refunds
from payments.models import JournalEntry, Transfer
from payments.providers import stripe_rail
from payments.services.ledger import account_balance
from staff.models import AuditEntry
from tests.conftest import pay_on_stripe, stripe_requests
from tests.helpers import force_status, staff_login
from tests.payments.test_api import assert_problem, new_quote, stripe_get, transfer_body
from tests.payments.test_refunds import funded_with, kinds, make_transfer

pytestmark = pytest.mark.django_db
S = Transfer.Status


def fresh(transfer):
    return Transfer.objects.get(pk=transfer.pk)


def api_transfer(api, key="order-1"):
    created = api.post("/api/v1/transfers", transfer_body(new_quote(api)["id"]), format="json",
                       HTTP_IDEMPOTENCY_KEY=key)
    assert created.status_code == 201, created.content
    return Transfer.objects.get(pk=created.json()["id"])


def cancel(api, transfer):
    return api.post(f"/api/v1/transfers/{transfer.pk}/cancel", format="json")


def intent_status(transfer):
    return stripe_get(f"/v1/payment_intents/{transfer.payment_intent_id}")["status"]


def stripe_mutations():
    return [r for r in stripe_requests() if r["method"] == "POST"]


# API ---------------------------------------------------------------------------------------------

def test_cancel_of_an_unpaid_transfer_cancels_its_payment_intent_and_posts_nothing(api, pricing, stripe_server):
    """POST /cancel on an unpaid transfer: its PaymentIntent is cancelled at Stripe, the transfer is `cancelled`
    with nothing posted; a second cancel answers 200 with the same state and asks Stripe nothing more."""
    transfer = api_transfer(api)
    response = cancel(api, transfer)
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "cancelled"
    assert response.json()["failure_reason"] == "cancelled by the sender"
    assert intent_status(transfer) == "canceled"
    assert not JournalEntry.objects.exists()
    calls = len(stripe_requests())
    again = cancel(api, transfer)
    assert (again.status_code, again.json()["status"]) == (200, "cancelled")
    assert len(stripe_requests()) == calls
    assert api.get(f"/api/v1/transfers/{transfer.pk}").json()["status"] == "cancelled"


def test_a_cancelled_transfer_can_no_longer_be_paid(api, pricing, stripe_server):
    """The cancelled PaymentIntent refuses a payment at Stripe, and the funding step would not fund it anyway."""
    transfer = api_transfer(api)
    cancel(api, transfer)
    with pytest.raises(httpx.HTTPStatusError, match="400"):
        pay_on_stripe(transfer.payment_intent_id)
    assert fresh(transfer).status == S.CANCELLED


def test_cancel_of_a_funded_transfer_refunds_it_in_full(api, pricing, stripe_server):
    """A funded transfer (not settled yet) cancelled by the sender goes `refunding` at once; the refund task refunds
    it in full on Stripe: `refunded`, its funding unwound, every account back to zero; cancelling again is 200."""
    transfer = api_transfer(api)
    pay_on_stripe(transfer.payment_intent_id)
    pipeline.transfer_mark_funded(payment_intent=stripe_rail.payment_intent_retrieve(transfer.payment_intent_id))
    assert fresh(transfer).status == S.FUNDED
    response = cancel(api, transfer)
    assert (response.status_code, response.json()["status"]) == (200, "refunding")
    pipeline_refunds.transfer_refund(transfer_id=transfer.pk)  # what the refund task scheduled after commit does
    assert fresh(transfer).status == S.REFUNDED
    assert kinds(transfer) == ["funding", "refund"]
    for code, currency in (("card_clearing", "RUB"), ("recipient_payable", "KGS"), ("fee_revenue", "RUB")):
        assert account_balance(code, currency) == 0
    assert (cancel(api, transfer).json()["status"]) == "refunded"


def test_cancel_of_an_unpaid_transfer_whose_payment_already_succeeded_becomes_a_refund(api, pricing, stripe_server):
    """The card was charged but no webhook has told us yet: the cancel finds the payment succeeded, funds the
    transfer and refunds it, rather than leaving money captured against a cancelled transfer."""
    transfer = api_transfer(api)
    pay_on_stripe(transfer.payment_intent_id)
    response = cancel(api, transfer)
    assert (response.status_code, response.json()["status"]) == (200, "refunding")
    assert intent_status(transfer) == "succeeded"
    pipeline_refunds.transfer_refund(transfer_id=transfer.pk)
    assert fresh(transfer).status == S.REFUNDED
    assert kinds(transfer) == ["funding", "refund"]


def test_a_held_transfer_is_not_cancelled_by_the_sender_and_nothing_says_why(api, client, pricing, stripe_server):
    """A transfer held for compliance review is not the sender's to cancel (a true sanctions match must stay
    blocked): through the API a 409 `transfer-not-cancellable`, on the status page no cancel button and a POST
    refused, with a neutral message (nothing about sanctions); the transfer, the ledger and Stripe are untouched."""
    transfer = api_transfer(api)
    pay_on_stripe(transfer.payment_intent_id)
    pipeline.transfer_mark_funded(payment_intent=stripe_rail.payment_intent_retrieve(transfer.payment_intent_id))
    force_status(Transfer.objects.filter(pk=transfer.pk), S.HELD)
    calls, entries = len(stripe_mutations()), JournalEntry.objects.count()
    body = assert_problem(cancel(api, transfer), 409, "transfer-not-cancellable")
    assert "being checked" in body["detail"] and "sanction" not in body["detail"].lower()
    page = client.get(f"/t/{transfer.sender_token}")
    assert f"/t/{transfer.sender_token}/cancel" not in page.content.decode()
    response = client.post(f"/t/{transfer.sender_token}/cancel")
    assert "sanction" not in response.content.decode().lower()
    assert fresh(transfer).status == S.HELD
    assert JournalEntry.objects.count() == entries and len(stripe_mutations()) == calls


def test_an_operator_may_cancel_a_held_transfer(pricing, stripe_server, api):
    """The compliance officer's way out of a hold: an operator's cancel refunds it in full."""
    transfer = api_transfer(api)
    pay_on_stripe(transfer.payment_intent_id)
    pipeline.transfer_mark_funded(payment_intent=stripe_rail.payment_intent_retrieve(transfer.payment_intent_id))
    force_status(Transfer.objects.filter(pk=transfer.pk), S.HELD)
    after = pipeline_cancel.transfer_cancel(transfer_id=transfer.pk, reason="cancelled by an operator", by_operator=True)
    assert after.status == S.REFUNDING


@pytest.mark.parametrize("state", [S.SETTLING, S.COMPLETED, S.SETTLEMENT_FAILED])
def test_cancel_after_settlement_started_is_refused_and_changes_nothing(api, pricing, stripe_server, state):
    """Once the payout is on its way (or done), a cancel is a 409 problem `transfer-not-cancellable`; the transfer,
    the ledger and Stripe are untouched."""
    transfer = api_transfer(api)
    force_status(Transfer.objects.filter(pk=transfer.pk), state)
    calls = len(stripe_mutations())
    body = assert_problem(cancel(api, transfer), 409, "transfer-not-cancellable")
    assert "no longer be cancelled" in body["detail"]
    assert fresh(transfer).status == state
    assert not JournalEntry.objects.exists()
    assert len(stripe_mutations()) == calls


def test_cancel_of_another_partners_transfer_is_not_found(api, pricing, stripe_server):
    """Another partner's transfer answers 404 (not 403: its existence is not revealed) and stays as it is."""
    from rest_framework.test import APIClient

    from payments.services.setup import partner_create

    transfer = api_transfer(api)
    _, key = partner_create(name="globex")
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    assert_problem(cancel(other, transfer), 404)
    assert fresh(transfer).status == S.AWAITING_FUNDING
    assert intent_status(transfer) != "canceled"


def test_cancel_needs_an_api_key(client, api, pricing, stripe_server):
    """Without partner authentication the cancel is a 401 and nothing changes."""
    transfer = api_transfer(api)
    assert client.post(f"/api/v1/transfers/{transfer.pk}/cancel").status_code == 401
    assert fresh(transfer).status == S.AWAITING_FUNDING


# Web ---------------------------------------------------------------------------------------------

def _csrf_client():
    return Client(enforce_csrf_checks=True)


def _confirm_page(web, transfer, **headers):
    page = web.get(f"/t/{transfer.sender_token}/cancel", **headers)
    token = page.cookies["csrftoken"].value if "csrftoken" in page.cookies else web.cookies["csrftoken"].value
    return page, token


def test_the_sender_cancels_from_the_status_page_after_confirming(pricing, stripe_server):
    """The status page links to a confirmation page; its POST (CSRF token, the sender's link as the key) cancels
    the unpaid transfer and returns to the status page, which says it was cancelled and offers no cancel again."""
    transfer = make_transfer()
    web = _csrf_client()
    status_page = web.get(f"/t/{transfer.sender_token}").content.decode()
    assert f'href="/t/{transfer.sender_token}/cancel"' in status_page
    page, token = _confirm_page(web, transfer)
    assert page.status_code == 200
    assert page["Referrer-Policy"] == "same-origin"  # a form: under no-referrer the POST's Origin is null (CSRF)
    assert 'id="cancel-form"' in page.content.decode() and "nothing will be charged" in page.content.decode()
    assert fresh(transfer).status == S.AWAITING_FUNDING  # the page itself changes nothing
    response = web.post(f"/t/{transfer.sender_token}/cancel", {"csrfmiddlewaretoken": token})
    assert response.status_code == 302 and response["Location"] == f"/t/{transfer.sender_token}"
    assert fresh(transfer).status == S.CANCELLED
    after = web.get(f"/t/{transfer.sender_token}").content.decode()
    assert 'data-status="cancelled"' in after and "cancel-link" not in after


def test_a_paid_transfer_says_it_will_be_refunded(pricing, stripe_server):
    """For a paid transfer the confirmation page says the payment is refunded in full; confirming starts it."""
    transfer = funded_with()
    web = _csrf_client()
    page, token = _confirm_page(web, transfer)
    assert "refunded in full" in page.content.decode()
    web.post(f"/t/{transfer.sender_token}/cancel", {"csrfmiddlewaretoken": token})
    assert fresh(transfer).status == S.REFUNDING


def test_the_web_cancel_without_its_csrf_token_is_refused(pricing, stripe_server):
    """A cross-site POST (no CSRF token) is a 403 and cancels nothing."""
    transfer = make_transfer()
    response = _csrf_client().post(f"/t/{transfer.sender_token}/cancel")
    assert response.status_code == 403
    assert fresh(transfer).status == S.AWAITING_FUNDING


def test_the_web_cancel_needs_the_senders_link(client, pricing, stripe_server):
    """The recipient's link is refused with a message (403), a made-up token finds nothing; nothing changes."""
    transfer = make_transfer()
    refused = client.post(f"/t/{transfer.recipient_token}/cancel")
    assert refused.status_code == 403 and "Only the sender can cancel" in refused.content.decode()
    assert client.get("/t/not-a-token/cancel").status_code == 404
    assert fresh(transfer).status == S.AWAITING_FUNDING


def test_a_web_cancel_after_settlement_started_shows_why_in_the_senders_language(pricing, stripe_server):
    """A settling transfer: the cancel page (and a POST to it) says in Russian that it can no longer be cancelled,
    answers 409, offers no form, and nothing changes."""
    transfer = make_transfer()
    force_status(Transfer.objects.filter(pk=transfer.pk), S.SETTLING)
    web = Client()
    web.cookies["django_language"] = "ru"
    for response in (web.get(f"/t/{transfer.sender_token}/cancel"), web.post(f"/t/{transfer.sender_token}/cancel")):
        assert response.status_code == 409
        content = response.content.decode()
        assert 'id="cancel-error"' in content and 'id="cancel-form"' not in content
        assert "Этот перевод уже нельзя отменить" in content
        assert "can no longer be cancelled" not in content
    assert fresh(transfer).status == S.SETTLING
    assert "cancel-link" not in web.get(f"/t/{transfer.sender_token}").content.decode()


# Admin -------------------------------------------------------------------------------------------

@pytest.fixture
def operator(client, db):
    from tests.security.factories import staff_user

    client.user = staff_user("operator")
    return staff_login(client, client.user)


def _admin_cancel(client, transfer, reason):
    return client.post("/admin/payments/transfer/", {"action": "cancel", "_selected_action": [str(transfer.pk)],
                                                     "post": "yes", "reason": reason}, follow=True)


def test_an_operator_cancels_an_unpaid_transfer_with_a_reason(operator, pricing, stripe_server):
    """The operator's cancel (reason required) cancels the PaymentIntent and the transfer, and the audit trail names
    the operator and the reason; the transfer itself says only that an operator cancelled it."""
    transfer = make_transfer()
    response = _admin_cancel(operator, transfer, "customer asked by phone")
    assert response.status_code == 200
    assert fresh(transfer).status == S.CANCELLED
    assert fresh(transfer).failure_reason == "cancelled by an operator"
    assert intent_status(transfer) == "canceled"
    entry = AuditEntry.objects.get(target_id=str(transfer.pk), action="payments.cancel_transfer")
    assert (entry.reason, entry.outcome, entry.actor) == ("customer asked by phone", "done", operator.user)


def test_an_operator_cancel_of_a_funded_transfer_queues_its_refund(operator, pricing, stripe_server):
    """A funded transfer cancelled in admin goes `refunding`; nothing is posted until the refund succeeds."""
    transfer = funded_with()
    _admin_cancel(operator, transfer, "duplicate payment reported by the sender")
    assert fresh(transfer).status == S.REFUNDING
    assert kinds(transfer) == ["funding"]


def test_an_operator_cancel_without_a_reason_is_refused(operator, pricing, stripe_server):
    """An empty reason re-shows the confirmation page with the error beside the field: nothing changes, nothing is
    posted or audited, Stripe is not asked."""
    transfer = funded_with()
    calls = len(stripe_mutations())
    response = _admin_cancel(operator, transfer, "   ")
    assert response.status_code == 200
    assert "Give a reason" in response.content.decode()
    assert fresh(transfer).status == S.FUNDED
    assert kinds(transfer) == ["funding"]
    assert not AuditEntry.objects.filter(target_id=str(transfer.pk)).exists()
    assert len(stripe_mutations()) == calls


def test_an_operator_cancel_after_settlement_is_refused_with_a_message(operator, pricing, stripe_server):
    """A completed transfer: admin says it can no longer be cancelled, the refusal is audited, nothing changes."""
    transfer = funded_with()
    force_status(Transfer.objects.filter(pk=transfer.pk), S.COMPLETED)
    response = _admin_cancel(operator, transfer, "sender changed their mind")
    assert "can no longer be cancelled" in response.content.decode()
    assert fresh(transfer).status == S.COMPLETED
    assert kinds(transfer) == ["funding"]
    assert AuditEntry.objects.get(target_id=str(transfer.pk)).outcome == "refused"


def test_an_operator_refund_of_an_unfunded_or_refunded_transfer_is_refused(operator, pricing, stripe_server):
    """Admin's refund of an unpaid transfer ("never paid") or of a refunded one ("refunded once") is refused with a
    clear message; nothing is asked of Stripe, nothing posted."""
    unpaid = make_transfer()
    refunded = funded_with(email="second@example.com")
    pipeline_cancel.transfer_cancel(transfer_id=refunded.pk, reason="cancelled by the sender")
    pipeline_refunds.transfer_refund(transfer_id=refunded.pk)
    assert fresh(refunded).status == S.REFUNDED
    refunds_before = len([r for r in stripe_requests("/v1/refunds") if r["method"] == "POST"])
    for transfer, words in ((unpaid, "never paid"), (refunded, "refunded once")):
        response = operator.post("/admin/payments/transfer/", {"action": "refund", "_selected_action": [str(transfer.pk)],
                                                               "post": "yes", "reason": "asked to"}, follow=True)
        assert words in response.content.decode()
    assert fresh(unpaid).status == S.AWAITING_FUNDING and fresh(refunded).status == S.REFUNDED
    assert len([r for r in stripe_requests("/v1/refunds") if r["method"] == "POST"]) == refunds_before
    assert kinds(unpaid) == [] and kinds(refunded) == ["funding", "refund"]


# Expiry ------------------------------------------------------------------------------------------

def test_expiry_cancels_the_payment_intent_and_posts_nothing(pricing, stripe_server):
    """An unfunded transfer past its window expires: its PaymentIntent is cancelled first and, as nothing was
    funded, no journal entry is posted."""
    transfer = make_transfer()
    assert pipeline.transfer_expire(transfer_id=transfer.pk).status == S.EXPIRED
    assert intent_status(transfer) == "canceled"
    assert not JournalEntry.objects.exists()


def test_cancel_and_expiry_are_guarded_transitions(pricing, stripe_server):
    """`cancelled` is reachable only from awaiting_funding, `refunded` only from refunding."""
    from django_fsm import TransitionNotAllowed

    transfer = funded_with()
    with pytest.raises(TransitionNotAllowed):
        transfer.mark_cancelled("x")
    with pytest.raises(TransitionNotAllowed):
        transfer.mark_refunded("re_1")
    assert fresh(transfer).status == S.FUNDED
