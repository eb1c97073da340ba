"""The US remittance rule for USD card senders (payments/services/us_remittance.py, docs/compliance.md):

- funding opens a cancellation window (US_CANCEL_WINDOW_SECONDS, 30 minutes here as in production) and the payout
  waits for its end: screening leaves the transfer `funded`, the sweeper hands it on only once the window is over, and
  no path (an operator's release included) pays out inside it;
- the sender's cancel inside the window (at 29 minutes) refunds in full; after it (at 31 minutes) or after the payout
  it is refused and nothing changes; an operator may still cancel;
- the disclosure (before payment) and the receipt (after) on the API and on the sender's pages;
- the recipient's link never cancels.
All against the real PostgreSQL and localstripe (the payout tests against anvil)."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from onchain.models import Payout
from payments import pipeline, pipeline_cancel, pipeline_refunds
from payments.errors import TransferNotCancellable, TransferNotPayable
from payments.models import JournalEntry, Transfer
from payments.services import us_remittance
from tests.conftest import stripe_requests
from tests.helpers import force_status
from tests.payments.test_api import assert_problem, new_quote
from tests.payments.test_refunds import funded_with, kinds, make_transfer, stripe_get

pytestmark = pytest.mark.django_db
S = Transfer.Status
WINDOW = 1800


@pytest.fixture(autouse=True)
def window(settings):
    settings.US_CANCEL_WINDOW_SECONDS = WINDOW


def fresh(transfer):
    return Transfer.objects.get(pk=transfer.pk)


def minutes_since_payment(transfer, minutes):
    """Put the transfer `minutes` after its payment: its stored window (and payout time) move back accordingly."""
    ends = timezone.now() + timedelta(seconds=WINDOW) - timedelta(minutes=minutes)
    Transfer.objects.filter(pk=transfer.pk).update(cancel_window_ends_at=ends, release_after=ends,
                                                   funded_at=ends - timedelta(seconds=WINDOW))
    return fresh(transfer)


def stripe_mutations():
    return [r for r in stripe_requests() if r["method"] == "POST"]


def unchanged(transfer):
    """A snapshot of what a refused cancel must not touch: the row, the ledger, Stripe."""
    row = fresh(transfer)
    return (row.status, row.failure_reason, row.refund_id, JournalEntry.objects.count(), len(stripe_mutations()))


# Service: the window and the payout gate ------------------------------------------------------------------------

def test_funding_opens_the_window_and_holds_the_payout_until_it_ends(pricing, stripe_server, chain):
    """A USD card transfer funded now may be cancelled for 30 minutes and is not paid out before: screening clears it
    but leaves it `funded` with no payout; the sweeper's query does not pick it before the end and does after; once
    the window is over (plus a minute for clocks that disagree between hosts) the same step queues its payout."""
    transfer = funded_with()
    assert transfer.cancel_window_ends_at == transfer.funded_at + timedelta(seconds=WINDOW)
    assert transfer.release_after == transfer.cancel_window_ends_at + us_remittance.PAYOUT_MARGIN
    pipeline.transfer_advance(transfer_id=transfer.pk)
    assert fresh(transfer).status == S.FUNDED
    assert not Payout.objects.filter(reference=str(transfer.pk)).exists()
    just_before = transfer.cancel_window_ends_at - timedelta(seconds=1)
    assert transfer.pk not in set(pipeline.transfers_due_for_advance(now=just_before).values_list("pk", flat=True))
    Transfer.objects.filter(pk=transfer.pk).update(updated_at=timezone.now() - timedelta(minutes=1))
    just_before = transfer.release_after - timedelta(seconds=1)  # the window is over, the margin is not
    assert transfer.pk not in set(pipeline.transfers_due_for_advance(now=just_before).values_list("pk", flat=True))
    after = transfer.release_after + timedelta(seconds=1)
    assert transfer.pk in set(pipeline.transfers_due_for_advance(now=after).values_list("pk", flat=True))
    minutes_since_payment(transfer, 31)
    pipeline.transfer_advance(transfer_id=transfer.pk)
    assert fresh(transfer).status == S.SETTLING
    assert Payout.objects.filter(reference=str(transfer.pk)).count() == 1


def test_no_payout_inside_the_window_even_by_an_operators_release(pricing, stripe_server, chain):
    """A held USD transfer released by an operator while the sender may still cancel is refused (the payout gate is
    in the one function every payout passes), nothing changes; after the window the release pays it."""
    transfer = funded_with()
    force_status(Transfer.objects.filter(pk=transfer.pk), S.HELD)
    with pytest.raises(TransferNotPayable, match="time to cancel"):
        pipeline.transfer_release(transfer_id=transfer.pk)
    assert fresh(transfer).status == S.HELD and not Payout.objects.exists()
    minutes_since_payment(transfer, 31)
    assert pipeline.transfer_release(transfer_id=transfer.pk).status == S.SETTLING


def test_a_cancel_at_29_minutes_refunds_in_full(pricing, stripe_server):
    """Inside the window the sender's cancel moves the transfer to `refunding`; the refund path returns every cent
    (fee included) at Stripe: `refunded` with the refund entry."""
    transfer = minutes_since_payment(funded_with(), 29)
    assert pipeline_cancel.transfer_cancellable(transfer)
    assert pipeline_cancel.transfer_cancel(transfer_id=transfer.pk, reason="cancelled by the sender").status == S.REFUNDING
    pipeline_refunds.transfer_refund(transfer_id=transfer.pk)
    transfer = fresh(transfer)
    assert transfer.status == S.REFUNDED
    assert kinds(transfer) == ["funding", "refund"]
    refund = stripe_get(f"/v1/refunds/{transfer.refund_id}")
    assert refund["amount"] == transfer.source_minor == 12000


def test_a_cancel_at_31_minutes_is_refused_and_changes_nothing(pricing, stripe_server):
    """After the window the sender's cancel is refused with the reason, the transfer stays `funded` (its payout is
    due), nothing is posted and Stripe is not asked; an operator can still cancel it (a compliance reason)."""
    transfer = minutes_since_payment(funded_with(), 31)
    assert not pipeline_cancel.transfer_cancellable(transfer)
    before = unchanged(transfer)
    with pytest.raises(TransferNotCancellable, match="30 minutes"):
        pipeline_cancel.transfer_cancel(transfer_id=transfer.pk, reason="cancelled by the sender")
    assert unchanged(transfer) == before
    assert pipeline_cancel.transfer_cancellable(transfer, by_operator=True)
    assert pipeline_cancel.transfer_cancel(transfer_id=transfer.pk, reason="cancelled by an operator",
                                    by_operator=True).status == S.REFUNDING


def test_a_cancel_after_the_payout_is_refused_and_changes_nothing(pricing, stripe_server):
    """Paid out (settling, inside the window or not): refused, nothing changes."""
    transfer = minutes_since_payment(funded_with(), 5)
    force_status(Transfer.objects.filter(pk=transfer.pk), S.SETTLING)
    before = unchanged(transfer)
    with pytest.raises(TransferNotCancellable, match="already on its way"):
        pipeline_cancel.transfer_cancel(transfer_id=transfer.pk, reason="cancelled by the sender")
    assert unchanged(transfer) == before


def test_other_currencies_and_a_disabled_window_have_no_window(api, pricing, stripe_server, settings):
    """A RUB transfer gets no window (the rule is for USD senders); with the setting at 0 neither does a USD one."""
    quote = new_quote(api)
    assert quote["us_remittance"] is None
    settings.US_CANCEL_WINDOW_SECONDS = 0
    transfer = funded_with()
    assert transfer.cancel_window_ends_at is None and transfer.release_after is None


# API --------------------------------------------------------------------------------------------

def test_the_api_discloses_before_payment_and_gives_the_receipt_after(api, pricing, stripe_server, partner):
    """A USD quote carries the disclosure (fees, no taxes, rate, som received, 30 minutes to cancel, the CFPB and our
    contact; no deadline yet); the funded transfer carries the receipt with its cancel deadline."""
    quote = api.post("/api/v1/quotes", {"source_currency": "USD", "source_amount": "120.00", "target_currency": "KGS"},
                     format="json").json()
    d = quote["us_remittance"]
    assert (d["total"], d["currency"], d["taxes"], d["other_fees"]) == ("120.00", "USD", "0.00", "0.00")
    assert Decimal(d["transfer_amount"]) + Decimal(d["fee"]) == Decimal("120.00")
    assert (d["amount_received"], d["exchange_rate"]) == (quote["target_amount"], quote["rate"])
    assert d["cancel_minutes"] == 30 and d["cancel_until"] is None
    assert d["regulator"] == {"name": "Consumer Financial Protection Bureau", "website": "https://www.consumerfinance.gov",
                              "phone": "1-855-411-2372"}
    assert d["provider_contact"]["email"]
    transfer = funded_with()
    Transfer.objects.filter(pk=transfer.pk).update(partner=partner)  # the helper makes a web transfer
    receipt = api.get(f"/api/v1/transfers/{transfer.pk}").json()["us_remittance"]
    assert receipt["amount_received"] == str(transfer.quote.target_amount)
    assert receipt["cancel_until"] == transfer.cancel_window_ends_at.isoformat().replace("+00:00", "Z")


def test_the_api_cancel_after_the_window_is_a_409_and_changes_nothing(api, pricing, stripe_server, partner):
    """POST /transfers/{id}/cancel for a USD card transfer past its window: 409 `transfer-not-cancellable` saying the
    30 minutes have passed; the transfer stays funded."""
    transfer = minutes_since_payment(funded_with(), 31)
    Transfer.objects.filter(pk=transfer.pk).update(partner=partner)
    before = unchanged(transfer)
    body = assert_problem(api.post(f"/api/v1/transfers/{transfer.pk}/cancel", format="json"), 409,
                          "transfer-not-cancellable")
    assert "30 minutes" in body["detail"]
    assert unchanged(transfer) == before


def test_the_api_cancel_inside_the_window_refunds(api, pricing, stripe_server, partner):
    """The same call at 29 minutes: 200, `refunding`."""
    transfer = minutes_since_payment(funded_with(), 29)
    Transfer.objects.filter(pk=transfer.pk).update(partner=partner)
    response = api.post(f"/api/v1/transfers/{transfer.pk}/cancel", format="json")
    assert (response.status_code, response.json()["status"]) == (200, "refunding")


# Web --------------------------------------------------------------------------------------------

def test_the_pay_page_discloses_before_payment(client, pricing, stripe_server):
    """A USD sender's pay page shows the disclosure: fee, taxes, rate, som received, date available, 30 minutes to
    cancel and how, error-resolution rights, the CFPB's and our contact."""
    transfer = make_transfer()
    page = client.get(f"/t/{transfer.sender_token}/pay").content.decode()
    assert 'id="us-disclosure"' in page
    for text in ("Transfer fees", "Transfer taxes", "Exchange rate", "Date available", "within 30 minutes",
                 "180 days", "1-855-411-2372", "consumerfinance.gov", "Cancel this transfer"):
        assert text in page, text


def test_the_status_page_gives_the_receipt_and_the_cancel_button(pricing, stripe_server):
    """After payment (inside the window) the sender's page has the receipt with its deadline and the cancel button;
    confirming it (a POST with the CSRF token, no JavaScript) starts the full refund."""
    transfer = minutes_since_payment(funded_with(), 29)
    web = Client(enforce_csrf_checks=True)
    page = web.get(f"/t/{transfer.sender_token}").content.decode()
    assert 'id="us-receipt"' in page and 'id="us-cancel-window"' in page and "You can cancel until" in page
    assert f'href="/t/{transfer.sender_token}/cancel"' in page
    confirm = web.get(f"/t/{transfer.sender_token}/cancel")
    response = web.post(f"/t/{transfer.sender_token}/cancel",
                        {"csrfmiddlewaretoken": confirm.cookies["csrftoken"].value})
    assert response.status_code == 302
    assert fresh(transfer).status == S.REFUNDING


def test_the_web_cancel_after_the_window_says_why_in_the_senders_language(pricing, stripe_server):
    """Past the window: no cancel button; the cancel page and its POST answer 409 in Kyrgyz, and nothing changes."""
    transfer = minutes_since_payment(funded_with(), 31)
    web = Client()
    web.cookies["django_language"] = "ky"
    assert "cancel-link" not in web.get(f"/t/{transfer.sender_token}").content.decode()
    before = unchanged(transfer)
    for response in (web.get(f"/t/{transfer.sender_token}/cancel"), web.post(f"/t/{transfer.sender_token}/cancel")):
        assert response.status_code == 409
        content = response.content.decode()
        assert 'id="cancel-error"' in content and "30 minutes" not in content and "30 мүнөт" in content
    assert unchanged(transfer) == before


def test_the_recipients_link_cannot_cancel(pricing, stripe_server):
    """Holding only the recipient's link: the cancel page and its POST answer 403 with a clear message in the
    person's language, and nothing changes."""
    transfer = minutes_since_payment(funded_with(), 1)
    web = Client()
    web.cookies["django_language"] = "ru"
    before = unchanged(transfer)
    for response in (web.get(f"/t/{transfer.recipient_token}/cancel"), web.post(f"/t/{transfer.recipient_token}/cancel")):
        assert response.status_code == 403
        content = response.content.decode()
        assert 'id="cancel-error"' in content and "Только отправитель" in content
    assert "cancel-link" not in web.get(f"/r/{transfer.recipient_token}").content.decode()
    assert unchanged(transfer) == before


def test_the_disclosure_date_is_bishkeks(pricing):
    """The date available is the recipient's date (Bishkek, UTC+6): a payout at 20:00 UTC is available the next day."""
    from payments.services.quotes import quote_create
    quote = quote_create(source_currency="USD", source_amount=Decimal("50.00"))
    evening = timezone.now().replace(hour=20, minute=0, second=0, microsecond=0)
    d = us_remittance.disclosure(quote=quote, now=evening - timedelta(seconds=WINDOW))
    assert d.available_on == (evening + timedelta(days=1)).date()
