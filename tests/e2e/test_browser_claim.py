"""The recipient claim in headless Chromium (Debian's package, driven by Playwright), without JavaScript-only steps:
from the recipient link to a one-time code by SMS, a wrong code refused beside its field, then the right code with a
wallet, ending on the status page with the transfer claimed and back in the pipeline."""

import re
from decimal import Decimal

import pytest

from common import sms
from payments import pipeline
from payments.models import Transfer
from payments.services import balances
from payments.services.quotes import quote_create
from payments.services.transfers import transfer_create
from tests.browser import assert_accessible, requires_chromium
from tests.conftest import new_recipient

pytestmark = [
    pytest.mark.django_db(transaction=True),
    requires_chromium,
]


def test_recipient_claims_a_transfer_with_a_one_time_code_in_the_browser(page, pricing, chain, partner,  # noqa: F811
                                                                          live_server, settings):
    """A phone-only transfer waits for its claim; in the browser the recipient asks for a code, a wrong code is shown
    beside the code field with nothing changed, and the right one with a wallet claims it (status page, wallet set)."""
    settings.SMS_BACKEND = "common.sms.LocmemBackend"
    sms.outbox.clear()
    balances.balance_topup(partner=partner, currency="RUB", amount=Decimal("20000.00"), reference="bank-claim")
    quote = quote_create(source_currency="RUB", source_amount=Decimal("15000.00"), partner=partner)
    transfer, _created = transfer_create(
        partner=partner, idempotency_key="browser-claim", fingerprint="0" * 64, quote_id=quote.id,
        sender={"name": "Aibek Usenov", "phone": "+79161234567", "email": "aibek@example.com"},
        recipient={"name": "Gulnara Usenova", "phone": "+996555123456"}, funding={"method": "balance"})
    assert pipeline.transfer_advance(transfer_id=transfer.pk).status == Transfer.Status.AWAITING_CLAIM

    page.goto(f"{live_server.url}/r/{transfer.recipient_token}")
    assert_accessible(page, "recipient status awaiting claim")
    page.click("#claim-link")
    assert_accessible(page, "claim page")
    page.click("#claim-send")
    page.locator("#claim-notice").wait_for()
    assert_accessible(page, "claim page, code sent")
    code = re.search(r"\b(\d{6})\b", sms.outbox[-1].body).group(1)
    wallet = new_recipient()

    page.fill("#id_code", f"{(int(code) + 1) % 10 ** 6:06d}")
    page.fill("#id_wallet_address", wallet)
    page.click("#claim-submit")
    assert "not right" in page.locator("#code-error").inner_text()
    assert_accessible(page, "claim page, wrong code")
    assert Transfer.objects.get(pk=transfer.pk).recipient_wallet == ""

    page.fill("#id_code", code)
    page.fill("#id_wallet_address", wallet.lower())
    page.click("#claim-submit")
    page.wait_for_url(f"**/r/{transfer.recipient_token}")
    assert_accessible(page, "recipient status after the claim")
    claimed = Transfer.objects.get(pk=transfer.pk)
    assert claimed.recipient_wallet == wallet and claimed.status in (Transfer.Status.FUNDED, Transfer.Status.SETTLING)
