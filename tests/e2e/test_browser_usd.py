"""A USD sender in headless Chromium under the US remittance rule: the disclosure before paying, the receipt after,
and the cancel within the 30 minutes (no JavaScript needed for it: a link, a confirmation page, a form POST)."""


import pytest

from payments.models import Transfer
from tests.browser import assert_accessible, pay_by_card, requires_chromium
from tests.conftest import new_recipient

pytestmark = [
    pytest.mark.django_db(transaction=True),
    requires_chromium,
]


def test_usd_sender_sees_the_disclosure_pays_gets_the_receipt_and_cancels(page, pricing, stripe_webhook_to,  # noqa: F811
                                                                          settings):
    """Disclosure on the pay page (fees, taxes, rate, som received, 30 minutes to cancel, the CFPB); after paying
    the status page turns `funded` with the receipt and its cancel deadline; the cancel button's confirmation
    cancels it and the money goes back (`refunding`); no payout was made meanwhile."""
    settings.US_CANCEL_WINDOW_SECONDS = 1800
    live = stripe_webhook_to.url
    wallet = new_recipient()

    page.goto(f"{live}/")
    page.fill("#id_source_amount", "100")
    page.select_option("#id_source_currency", "USD")
    page.click("#amount-submit")
    page.wait_for_url("**/details")
    page.fill("#id_sender_name", "John Smith")
    page.fill("#id_sender_phone", "+1 212 555 1234")
    page.fill("#id_sender_email", "john@example.com")
    page.fill("#id_recipient_name", "Aida Bekova")
    page.fill("#id_recipient_phone", "+996 555 123 456")
    page.fill("#id_recipient_wallet", wallet.lower())
    page.click("#details-submit")

    page.wait_for_url("**/pay")
    disclosure = page.locator("#us-disclosure")
    for text in ("Transfer taxes", "Total to recipient", "within 30 minutes", "1-855-411-2372", "180 days"):
        assert text in disclosure.inner_text(), text
    assert_accessible(page, "pay page with the US disclosure")
    pay_by_card(page)

    page.wait_for_url("**/t/*")
    page.locator("#transfer-status[data-status=funded] #us-receipt").wait_for(timeout=60_000)
    assert "You can cancel until" in page.locator("#us-receipt").inner_text()
    assert "full refund until" in page.locator("#us-cancel-window").inner_text()
    assert_accessible(page, "sender status with the US receipt")
    page.click("#cancel-link")
    page.wait_for_url("**/cancel")
    assert_accessible(page, "cancel page of a USD transfer")
    page.click("#cancel-confirm")
    page.locator("#transfer-status[data-status=refunding], #transfer-status[data-status=refunded]").wait_for()

    transfer = Transfer.objects.get(recipient_wallet=wallet)
    assert transfer.status in ("refunding", "refunded") and transfer.failure_reason == "cancelled by the sender"
    assert not transfer.payout_reference
