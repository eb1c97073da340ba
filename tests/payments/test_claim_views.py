"""The recipient's claim page (issue 11) and the sender form without a wallet: plain forms that work without
JavaScript, errors beside their fields in the visitor's language, nothing changed by a refused claim."""

import html
import re
import uuid
from decimal import Decimal

import pytest

from common import sms
from payments import pipeline
from payments.models import ClaimCode, Transfer
from payments.services import balances
from tests.conftest import QUOTE_BODY, new_recipient

pytestmark = pytest.mark.django_db
S = Transfer.Status


@pytest.fixture(autouse=True)
def sms_outbox(settings):
    settings.SMS_BACKEND = "common.sms.LocmemBackend"
    sms.outbox.clear()
    yield sms.outbox
    sms.outbox.clear()


@pytest.fixture
def waiting(api, partner, pricing):
    balances.balance_topup(partner=partner, currency="RUB", amount=Decimal("20000.00"), reference="bank-1")
    quote = api.post("/api/v1/quotes", QUOTE_BODY, format="json").json()
    response = api.post("/api/v1/transfers", {
        "quote_id": quote["id"], "sender": {"name": "Aibek Usenov", "phone": "+79161234567", "email": "a@example.com"},
        "recipient": {"name": "Gulnara Usenova", "phone": "+996555123456"}, "funding": {"method": "balance"}},
        format="json", HTTP_IDEMPOTENCY_KEY="view-1")
    return pipeline.transfer_advance(transfer_id=response.json()["id"])


def url(transfer):
    return f"/r/{transfer.recipient_token}/claim"


def error_next_to(response, field):
    match = re.search(rf'<p class="field-error" id="{re.escape(field)}-error"[^>]*>(.*?)</p>', response.content.decode(),
                      re.S)
    assert match, f"no error slot for {field}"
    return html.unescape(match.group(1)).strip()


def code_from(outbox):
    return re.search(r"\b(\d{6})\b", outbox[-1].body).group(1)


def test_recipient_status_page_links_to_the_claim_and_the_page_has_plain_forms(client, waiting):
    """Awaiting the claim, the recipient's page links to the claim page, whose forms post without any script; the
    sender's page says the recipient chooses the wallet."""
    status_page = client.get(f"/r/{waiting.recipient_token}").content.decode()
    assert f'href="{url(waiting)}"' in status_page
    page = client.get(url(waiting)).content.decode()
    assert 'id="claim-send-form"' in page and 'id="claim-form"' in page and 'method="post"' in page
    assert 'autocomplete="one-time-code"' in page
    sender_page = client.get(f"/t/{waiting.sender_token}").content.decode()
    assert 'id="claim-pending"' in sender_page and "Waiting for the recipient" in sender_page


def test_send_then_claim_with_a_wallet_redirects_to_the_status_page(client, waiting, sms_outbox, chain):
    """Ask for a code (SMS sent, notice shown), post it with a wallet: 302 to the status page, transfer claimed."""
    response = client.post(url(waiting), {"action": "send"})
    assert response.status_code == 200 and 'id="claim-notice"' in response.content.decode()
    wallet = new_recipient()
    response = client.post(url(waiting), {"action": "claim", "code": code_from(sms_outbox), "wallet_address": wallet})
    assert response.status_code == 302 and response["Location"] == f"/r/{waiting.recipient_token}"
    assert Transfer.objects.get(pk=waiting.pk).recipient_wallet == wallet


@pytest.mark.parametrize(("data", "field", "message"), [
    pytest.param({"code": "12"}, "code", "6-digit code", id="short-code"),
    pytest.param({"code": "123456", "wallet_address": "0x123"}, "wallet_address", "40 hexadecimal", id="bad-wallet"),
    pytest.param({"code": "123456"}, "wallet_address", "wallet address or choose", id="no-destination"),
    pytest.param({"code": "123456", "payout_partner": "x"}, "payout_partner", "valid choice", id="unknown-partner"),
])
def test_bad_claim_input_is_shown_beside_its_field_and_changes_nothing(client, waiting, data, field, message):
    """Each mistake sits in its field's error slot; no code is used, no attempt counted, the transfer still waits."""
    response = client.post(url(waiting), {"action": "claim", **data})
    assert response.status_code == 200
    assert message in error_next_to(response, field)
    transfer = Transfer.objects.get(pk=waiting.pk)
    assert transfer.status == S.AWAITING_CLAIM and transfer.recipient_wallet == ""


def test_a_wrong_code_is_shown_beside_the_code_in_russian(client, waiting, sms_outbox, chain):
    """A wrong code in a Russian page: the Russian message beside the code field, one attempt counted, nothing else."""
    client.get("/language/ru", {"next": "/"})
    client.post(url(waiting), {"action": "send"})
    wrong = f"{(int(code_from(sms_outbox)) + 1) % 10 ** 6:06d}"
    response = client.post(url(waiting), {"action": "claim", "code": wrong, "wallet_address": new_recipient()})
    assert error_next_to(response, "code") == "Код неверный. Проверьте SMS и попробуйте снова."
    assert ClaimCode.objects.get(transfer=waiting).failed_attempts == 1
    assert Transfer.objects.get(pk=waiting.pk).recipient_wallet == ""


def test_a_claimed_transfer_says_so_in_kyrgyz_and_cannot_be_claimed_again(client, waiting, sms_outbox, chain):
    """After a claim the page says it was claimed (Kyrgyz here) and a second claim post is a 409 changing nothing."""
    client.post(url(waiting), {"action": "send"})
    first = new_recipient()
    client.post(url(waiting), {"action": "claim", "code": code_from(sms_outbox), "wallet_address": first})
    client.get("/language/ky", {"next": "/"})
    assert "Бул которуу мурда эле алынган" in client.get(url(waiting)).content.decode()
    response = client.post(url(waiting), {"action": "claim", "code": "123456", "wallet_address": new_recipient()})
    assert response.status_code == 409 and "Бул которуу мурда эле алынган" in response.content.decode()
    assert Transfer.objects.get(pk=waiting.pk).recipient_wallet == first


def test_sender_form_without_a_wallet_creates_a_transfer_for_the_recipient_to_claim(client, pricing, stripe_server):
    """The sender's details form takes no wallet: the transfer is created with an empty wallet and goes to payment."""
    quote_id = re.search(r"/send/([0-9a-f-]+)/details", client.post(
        "/", {"source_currency": "RUB", "source_amount": "10000"})["Location"]).group(1)
    response = client.post(f"/send/{quote_id}/details", {
        "sender_name": "Aibek Usenov", "sender_phone": "+7 916 123-45-67", "sender_email": "aibek@example.com",
        "recipient_name": "Gulnara Usenova", "recipient_phone": "+996 555 123 456", "recipient_wallet": "",
        "idempotency_key": str(uuid.uuid4())})
    assert response.status_code == 302 and "/pay" in response["Location"]
    transfer = Transfer.objects.get()
    assert transfer.recipient_wallet == "" and transfer.status == S.AWAITING_FUNDING


def test_a_second_code_too_soon_is_a_429_saying_how_long_to_wait(client, waiting, sms_outbox, settings):
    """The resend interval answers 429 with the real wait in Retry-After (not a fixed minute), and sends nothing."""
    settings.CLAIM_CODE_RESEND_SECONDS = 300
    client.post(url(waiting), {"action": "send"})
    response = client.post(url(waiting), {"action": "send"})
    assert response.status_code == 429
    assert 240 < int(response["Retry-After"]) <= 301
    assert len(sms_outbox) == 1


def test_a_wallet_over_its_velocity_limit_is_refused_beside_the_wallet_field(client, waiting, sms_outbox, chain,
                                                                             settings):
    """A claim to a wallet that has had too many transfers: the message sits in the wallet's error slot, the
    transfer still waits."""
    settings.VELOCITY_LIMITS = {**settings.VELOCITY_LIMITS, "wallet": [(0, 3600)]}
    client.post(url(waiting), {"action": "send"})
    response = client.post(url(waiting), {"action": "claim", "code": code_from(sms_outbox),
                                          "wallet_address": new_recipient()})
    assert response.status_code == 409
    assert "too many transfers" in error_next_to(response, "wallet_address")
    assert Transfer.objects.get(pk=waiting.pk).status == S.AWAITING_CLAIM
