"""The sender's flow in headless Chromium (Debian's package, driven by Playwright): amount with a live quote,
details, card payment through Stripe.js (localstripe's), then the sender's and recipient's status pages
updating live to `completed`, with the recipient's KGST on the chain."""

from decimal import Decimal

import pytest

from payments.models import Transfer
from tests.browser import assert_accessible, pay_by_card, requires_chromium
from tests.conftest import new_recipient, token_balance

pytestmark = [
    pytest.mark.django_db(transaction=True),
    requires_chromium,
]



def test_sender_pays_by_card_in_the_browser_and_watches_the_transfer_complete(
        page, pricing, chain, stripe_webhook_to, celery_processes):
    """A sender goes from the amount form to `completed` in a real browser, through the card's 3-D Secure step; both
    status pages update without a reload, and the recipient's wallet holds exactly the som shown before paying."""
    live = stripe_webhook_to.url
    wallet = new_recipient()

    page.goto(f"{live}/")
    page.fill("#id_source_amount", "15000")
    page.select_option("#id_source_currency", "RUB")
    target = page.locator("#quote-preview [data-role=target-amount]")
    target.wait_for()
    shown_som = Decimal(target.inner_text().replace("\u00a0", "").replace(" ", "").replace(",", "").split("KGS")[0]
                        .strip() or "0")
    assert page.locator("#quote-preview [data-role=official-rate]").is_visible()
    page.click("#amount-submit")

    page.wait_for_url("**/details")
    page.fill("#id_sender_name", "Aibek Usenov")
    page.fill("#id_sender_phone", "+7 916 123-45-67")
    page.fill("#id_sender_email", "aibek@example.com")
    page.fill("#id_recipient_name", "Gulnara Usenova")
    page.fill("#id_recipient_phone", "+996 555 123 456")
    page.fill("#id_recipient_wallet", wallet.lower())
    page.click("#details-submit")

    page.wait_for_url("**/pay")
    pay_by_card(page)

    page.wait_for_url("**/t/*")
    sender_url = page.url
    assert "/pay" not in sender_url
    # Live updates: the page is never reloaded, the status element changes in place.
    page.locator("#transfer-status[data-status=completed]").wait_for(timeout=90_000)
    assert page.url == sender_url
    assert page.locator("#tx-hash").inner_text().strip().startswith("0x")
    assert_accessible(page, "sender status, completed (QR, explorer link, receipt)")

    transfer = Transfer.objects.select_related("quote").get(recipient_wallet=wallet)
    assert transfer.status == "completed"
    assert transfer.quote.target_amount == shown_som
    assert token_balance(chain["token"], wallet) == int(transfer.quote.target_amount * 100) * 10**16

    recipient_page = page.context.new_page()
    recipient_page.goto(f"{live}/r/{transfer.recipient_token}")
    recipient_page.locator("#transfer-status[data-status=completed]").wait_for()
    assert_accessible(recipient_page, "recipient status, completed")
    text = recipient_page.content()
    assert "aibek@example.com" not in text and "+79161234567" not in text
    assert "Aibek" in text


def test_wrong_wallet_checksum_is_shown_next_to_the_field(page, pricing, stripe_server, live_server):
    """A mistyped (mixed-case, wrong checksum) wallet is refused in the browser with the message beside the
    field, and no transfer is created."""
    page.goto(f"{live_server.url}/")
    page.fill("#id_source_amount", "100")
    page.select_option("#id_source_currency", "USD")
    page.click("#amount-submit")
    page.wait_for_url("**/details")
    page.fill("#id_sender_name", "John Smith")
    page.fill("#id_sender_phone", "+1 212 555 1234")
    page.fill("#id_sender_email", "john@example.com")
    page.fill("#id_recipient_name", "Aida")
    page.fill("#id_recipient_phone", "+996555123456")
    page.fill("#id_recipient_wallet", "0x52908400098527886e0F7030069857D2E4169EE7")
    page.click("#details-submit")
    error = page.locator("#recipient_wallet-error")
    error.wait_for()
    assert "checksum" in error.inner_text().lower()
    assert not Transfer.objects.exists()
