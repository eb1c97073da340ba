"""Sender web pages through Django's test client: amount form and live preview, details form validation,
quote problems and the status pages' privacy. The success paths that call Stripe are the browser test's."""

import html
import re
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone
from eth_utils import to_checksum_address

from payments.models import Corridor, Quote, Rate, Transfer
from payments.services.quotes import quote_create
from payments.web.forms import DetailsForm
from tests.helpers import force_status

pytestmark = pytest.mark.django_db

# A checksummed address with both cases in its body, so flipping its case breaks the checksum.
WALLET = to_checksum_address("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed")
assert WALLET == "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"


@pytest.fixture
def corridors():
    """RUB at 1.09 and USD at 87.50 official, each with a 1.5 % / 1 % margin, a fixed and a percent fee."""
    Corridor.objects.create(source_currency="RUB", margin_bps=150, fixed_fee=Decimal("50.00"), percent_fee_bps=100,
                            min_amount=Decimal("500"), max_amount=Decimal("500000"))
    Corridor.objects.create(source_currency="USD", margin_bps=100, fixed_fee=Decimal("1.99"), percent_fee_bps=100,
                            min_amount=Decimal("10"), max_amount=Decimal("5000"))
    now = timezone.now()
    Rate.objects.create(source_currency="RUB", rate=Decimal("1.09"), effective_at=now)
    Rate.objects.create(source_currency="USD", rate=Decimal("87.50"), effective_at=now)


@pytest.fixture
def quote(corridors):
    return quote_create(source_currency="RUB", source_amount=Decimal("10000.00"), partner=None)


def details_data(**overrides):
    data = {"sender_name": "Aibek Usenov", "sender_phone": "+7 916 123-45-67", "sender_email": "aibek@example.com",
            "recipient_name": "Gulnara Usenova", "recipient_phone": "+996 555 123 456",
            "recipient_wallet": WALLET, "idempotency_key": str(uuid.uuid4())}
    data.update(overrides)
    return data


def make_transfer(quote, **fields):
    values = {"quote": quote, "idempotency_key": str(uuid.uuid4()), "request_fingerprint": "0" * 64,
              "sender_name": "Aibek Temirov", "sender_phone": "+79161234567", "sender_email": "aibek@example.com",
              "recipient_name": "Gulnara Usenova", "recipient_phone": "+996555123456", "recipient_wallet": WALLET}
    values.update(fields)
    return Transfer.objects.create(**values)


def error_next_to(response, field):
    """The text of the error slot rendered beside `field` (the element with id "<field>-error")."""
    content = response.content.decode()
    match = re.search(rf'<p class="field-error" id="{re.escape(field)}-error"[^>]*>(.*?)</p>', content, re.S)
    assert match, f"no error slot for {field} in the page"
    return html.unescape(match.group(1)).strip()


def element(response, element_id):
    content = response.content.decode()
    match = re.search(rf'<[^>]*\bid="{re.escape(element_id)}"[^>]*>', content)
    assert match, f"no #{element_id} in the page"
    return match.group(0)


# 1. Amount form and live preview -----------------------------------------------------------------

def test_start_page_renders_the_amount_form_with_live_preview(client, corridors):
    """The start page has the amount form, and the amount input asks for the preview fragment as one types."""
    response = client.get("/")
    assert response.status_code == 200
    amount_input = element(response, "id_source_amount")
    assert 'hx-get="/quote-preview"' in amount_input
    assert 'hx-trigger="input changed delay:300ms"' in amount_input
    assert 'hx-target="#quote-preview"' in amount_input
    assert 'hx-trigger="change"' in element(response, "id_source_currency")
    assert 'id="quote-preview"' in response.content.decode()
    assert "/static/vendor/htmx.min.js" in response.content.decode()


def test_preview_shows_our_rate_the_official_rate_the_fee_and_the_som(client, corridors):
    """10 000 RUB: fee 50 + 1 % = 150, our rate 1.09 less 1.5 % = 1.07365, (10 000 − 150) × 1.07365 = 10 575.4525,
    up to 10 575.46 KGS; the total charged and the total cost (1 − 10 575.46 / 10 900 = 2.98 %); the preview stores
    nothing."""
    response = client.get("/quote-preview", {"source_currency": "RUB", "source_amount": "10000"})
    assert response.status_code == 200
    content = response.content.decode()
    assert "10,575.46" in content
    assert "150.00" in content
    assert "10,000.00" in content  # total charged
    assert "2.98 %" in content  # total cost
    assert "1.0737" in content  # ours
    assert "1.0900" in content  # NBKR official
    assert error_next_to(response, "source_amount") == ""
    assert Quote.objects.count() == 0


@pytest.mark.parametrize("typed", ["10000", "10 000", "10\u00a0000,00", "10,000", "10,000.00", "10.000,00", " 10000.0 "])
def test_preview_accepts_amounts_as_people_type_them(client, corridors, typed):
    """Spaces, a decimal comma and thousands separators of either convention all read as 10 000 RUB."""
    response = client.get("/quote-preview", {"source_currency": "RUB", "source_amount": typed})
    assert "10,575.46" in response.content.decode()


def test_preview_with_no_amount_prompts_without_an_error(client, corridors):
    """An empty amount (the sender cleared the field) is not an error yet."""
    response = client.get("/quote-preview", {"source_currency": "RUB", "source_amount": ""})
    assert response.status_code == 200
    assert error_next_to(response, "source_amount") == ""
    assert "Enter an amount" in response.content.decode()


BAD_AMOUNTS = [
    pytest.param("RUB", "-100", "source_amount", "above zero", id="negative"),
    pytest.param("RUB", "0", "source_amount", "above zero", id="zero"),
    pytest.param("RUB", "12abc", "source_amount", "as a number", id="malformed"),
    pytest.param("RUB", "1.234", "source_amount", "two decimals", id="three-decimals"),
    pytest.param("RUB", "600000", "source_amount", "between 500.00 and 500000.00 RUB", id="above-corridor-max"),
    pytest.param("RUB", "100", "source_amount", "between 500.00 and 500000.00 RUB", id="below-corridor-min"),
    pytest.param("RUB", "1000000000000000", "source_amount", "too large", id="too-many-digits"),
    pytest.param("USD", "6000", "source_amount", "between 10.00 and 5000.00 USD", id="usd-above-max"),
    pytest.param("EUR", "1000", "source_currency", "RUB", id="unknown-currency"),
]


@pytest.mark.parametrize(("currency", "amount", "field", "message"), BAD_AMOUNTS)
def test_preview_shows_why_an_amount_is_refused_next_to_the_field(client, corridors, currency, amount, field, message):
    """The preview fragment refreshes the error slot beside the offending field (out of band) and stores nothing."""
    response = client.get("/quote-preview", {"source_currency": currency, "source_amount": amount})
    assert response.status_code == 200
    assert 'hx-swap-oob="true"' in element(response, f"{field}-error")
    assert message in error_next_to(response, field)
    assert "Recipient gets" not in response.content.decode()
    assert Quote.objects.count() == 0


@pytest.mark.parametrize(("currency", "amount", "field", "message"), BAD_AMOUNTS)
def test_amount_post_refuses_bad_input_next_to_the_field(client, corridors, currency, amount, field, message):
    """Submitting a refused amount or currency re-renders the form with the message beside the field; no Quote."""
    response = client.post("/", {"source_currency": currency, "source_amount": amount})
    assert response.status_code == 200
    assert message in error_next_to(response, field)
    assert 'aria-invalid="true"' in element(response, f"id_{field}")
    assert Quote.objects.count() == 0


def test_amount_post_without_a_rate_says_so(client):
    """With a corridor but no rate loaded, the sender is told the price is unavailable instead of a server error."""
    Corridor.objects.create(source_currency="RUB", margin_bps=150, fixed_fee=Decimal("50.00"), percent_fee_bps=100,
                            min_amount=Decimal("500"), max_amount=Decimal("500000"))
    response = client.post("/", {"source_currency": "RUB", "source_amount": "10000"})
    assert response.status_code == 200
    assert "No RUB/KGS rate" in response.content.decode()
    assert Quote.objects.count() == 0


def test_amount_post_creates_a_firm_quote_and_goes_to_the_details(client, corridors):
    """A valid amount creates one web quote (no partner) priced as the preview and redirects to its details page."""
    response = client.post("/", {"source_currency": "RUB", "source_amount": "10000"})
    quote = Quote.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/send/{quote.id}/details"
    assert quote.partner is None
    assert quote.target_amount == Decimal("10575.46")  # 9850 × 1.07365 = 10575.4525, up to the tyiyn
    assert quote.fee == Decimal("150.00")


# 2. Details form ---------------------------------------------------------------------------------

def test_details_page_shows_the_quote_and_a_fresh_idempotency_key(client, quote):
    """The details page prices the quote and carries a hidden uuid4 key, a new one per rendering."""
    first = client.get(f"/send/{quote.id}/details")
    second = client.get(f"/send/{quote.id}/details")
    assert first.status_code == 200
    assert "10,575.46" in first.content.decode()
    keys = [re.search(r'name="idempotency_key" value="([^"]+)"', r.content.decode()).group(1) for r in (first, second)]
    assert uuid.UUID(keys[0]).version == 4
    assert keys[0] != keys[1]
    assert 'data-countdown="' in first.content.decode()


@pytest.mark.parametrize(("overrides", "field", "message"), [
    pytest.param({"sender_phone": "12345"}, "sender_phone", "country code", id="bad-sender-phone"),
    pytest.param({"recipient_phone": "+996 555"}, "recipient_phone", "country code", id="bad-recipient-phone"),
    pytest.param({"sender_email": "aibek@"}, "sender_email", "email", id="bad-email"),
    pytest.param({"recipient_wallet": WALLET[:-2]}, "recipient_wallet",
                 "0x followed by 40 hexadecimal characters", id="wallet-too-short"),
    pytest.param({"recipient_wallet": WALLET + "00"}, "recipient_wallet",
                 "0x followed by 40 hexadecimal characters", id="wallet-too-long"),
    pytest.param({"recipient_wallet": "0x" + "g" * 40}, "recipient_wallet", "hexadecimal characters (0-9, a-f)",
                 id="wallet-not-hex"),
    pytest.param({"recipient_wallet": WALLET.swapcase().replace("0X", "0x")}, "recipient_wallet", "checksum",
                 id="wallet-wrong-checksum"),
    pytest.param({"recipient_name": ""}, "recipient_name", "required", id="missing-recipient-name"),
])
def test_details_form_refuses_bad_input_next_to_the_field(client, quote, overrides, field, message):
    """Each refused value is reported beside its own field, the other fields keep no error, and no Transfer is made."""
    response = client.post(f"/send/{quote.id}/details", details_data(**overrides))
    assert response.status_code == 200
    assert message in error_next_to(response, field)
    for other in ("sender_name", "sender_phone", "sender_email", "recipient_name", "recipient_phone", "recipient_wallet"):
        if other != field:
            assert error_next_to(response, other) == ""
    assert Transfer.objects.count() == 0


def test_details_form_reports_every_bad_field_at_once(client, quote):
    """A form with several mistakes shows all of them, each beside its field."""
    response = client.post(f"/send/{quote.id}/details",
                           details_data(sender_phone="nope", recipient_wallet="0x123"))
    assert "country code" in error_next_to(response, "sender_phone")
    assert "40 hexadecimal" in error_next_to(response, "recipient_wallet")
    assert Transfer.objects.count() == 0


def test_details_form_accepts_an_all_lowercase_wallet_and_stores_its_checksum(quote):
    """All-lowercase carries no checksum and is valid; the form hands the EIP-55 form to the service."""
    form = DetailsForm(details_data(recipient_wallet=" " + WALLET.lower() + "\n"))
    assert form.is_valid(), form.errors
    assert form.cleaned_data["recipient_wallet"] == WALLET
    assert form.cleaned_data["sender_phone"] == "+79161234567"
    assert form.service_payload()["recipient"] == {"name": "Gulnara Usenova", "phone": "+996555123456",
                                                   "wallet_address": WALLET}


def test_details_form_refuses_a_missing_idempotency_key(client, quote):
    """A post without the hidden key (a stale or hand-made form) is refused rather than sent without protection."""
    response = client.post(f"/send/{quote.id}/details", details_data(idempotency_key=""))
    assert response.status_code == 200
    assert "out of date" in response.content.decode()
    assert Transfer.objects.count() == 0


def test_expired_quote_shows_a_clear_message_and_creates_nothing(client, quote):
    """Past its expiry the details page says so with a link to a new quote, and a post makes no Transfer."""
    Quote.objects.filter(pk=quote.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    page = client.get(f"/send/{quote.id}/details")
    posted = client.post(f"/send/{quote.id}/details", details_data())
    for response in (page, posted):
        assert response.status_code == 410
        content = response.content.decode()
        assert "This quote has expired" in content
        assert 'href="/"' in content
        assert 'id="details-form"' not in content
    assert Transfer.objects.count() == 0


def test_used_quote_says_it_was_used(client, quote):
    """A quote that already backs a transfer cannot back a second one: the page says so."""
    make_transfer(quote)
    response = client.get(f"/send/{quote.id}/details")
    assert response.status_code == 410
    assert "already been used" in response.content.decode()
    posted = client.post(f"/send/{quote.id}/details", details_data())
    assert posted.status_code == 410
    assert Transfer.objects.count() == 1


def test_back_to_the_details_of_a_transfer_made_in_this_browser_goes_on_with_it(client, quote):
    """After sending the details, the back button leads to that transfer's pay page, not to "quote already used"
    (the session remembers which transfers this browser made); another browser still gets the message."""
    transfer = make_transfer(quote)
    session = client.session
    session["web_transfers"] = {str(quote.id): transfer.sender_token}
    session.save()
    response = client.get(f"/send/{quote.id}/details")
    assert response.status_code == 302
    assert response["Location"] == f"/t/{transfer.sender_token}/pay"
    assert Client().get(f"/send/{quote.id}/details").status_code == 410


def test_unknown_or_partner_quote_is_not_found(client, quote):
    """A quote id that does not exist, or a partner's quote, is a 404 on the web flow."""
    assert client.get(f"/send/{uuid.uuid4()}/details").status_code == 404
    Quote.objects.filter(pk=quote.pk).update(partner=_partner())
    assert client.get(f"/send/{quote.id}/details").status_code == 404
    assert client.post(f"/send/{quote.id}/details", details_data()).status_code == 404
    assert Transfer.objects.count() == 0


def _partner():
    from payments.models import Partner

    return Partner.objects.create(name="acme")


# 3–5. Pay and status pages -----------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/t/{token}", "/t/{token}/pay", "/r/{token}", "/t/{token}?fragment=1"])
def test_status_and_pay_pages_are_404_for_unknown_tokens(client, quote, path):
    """Tokens are the only key to a transfer's pages: an unknown one (even another transfer's id) is not found."""
    transfer = make_transfer(quote)
    assert client.get(path.format(token="nope")).status_code == 404
    assert client.get(path.format(token=transfer.id)).status_code == 404


def test_recipient_page_shows_the_money_but_not_the_senders_contacts(client, quote):
    """The recipient sees the som, the sender's first name and the wallet; never the sender's email, phone or
    surname, nor a link to the sender's pages."""
    transfer = make_transfer(quote)
    response = client.get(f"/r/{transfer.recipient_token}")
    assert response.status_code == 200
    content = response.content.decode()
    assert "10,575.46" in content
    assert "Aibek" in content
    assert WALLET in content
    for secret in ("aibek@example.com", "+79161234567", "Temirov", transfer.sender_token):
        assert secret not in content
    assert response["Referrer-Policy"] == "no-referrer"


@pytest.mark.parametrize("prefix", ["t", "r"])
def test_status_pages_poll_until_the_transfer_is_terminal(client, quote, prefix):
    """Both status pages carry #transfer-status with data-status; it polls every 2 s while the transfer can move
    and renders without a trigger once it is completed, which stops htmx polling."""
    transfer = make_transfer(quote)
    token = transfer.sender_token if prefix == "t" else transfer.recipient_token
    page = client.get(f"/{prefix}/{token}")
    status = element(page, "transfer-status")
    assert 'data-status="awaiting_funding"' in status
    assert 'hx-trigger="every 2s"' in page.content.decode()
    assert f'hx-get="/{prefix}/{token}?fragment=1"' in page.content.decode()

    force_status(Transfer.objects.filter(pk=transfer.pk), Transfer.Status.COMPLETED, completed_at=timezone.now(),
                                                   funded_at=timezone.now())
    fragment = client.get(f"/{prefix}/{token}", {"fragment": "1"})
    content = fragment.content.decode()
    assert content.lstrip().startswith('<section id="transfer-status"')
    assert 'data-status="completed"' in content
    assert "hx-trigger" not in content
    assert "<html" not in content


def test_sender_page_links_to_payment_and_shares_the_recipient_link(client, quote):
    """An unpaid transfer's page offers the pay page, and gives the sender the recipient's link to pass on."""
    transfer = make_transfer(quote)
    content = client.get(f"/t/{transfer.sender_token}").content.decode()
    assert f'href="/t/{transfer.sender_token}/pay"' in content
    assert f"/r/{transfer.recipient_token}" in content


def test_sender_page_shows_why_a_transfer_was_refunded(client, quote):
    """A refunded transfer shows its reason and the refund on the sender's page, with the timeline stopped."""
    transfer = make_transfer(quote, status=Transfer.Status.REFUNDED, funded_at=timezone.now(),
                             failure_reason="recipient wallet is on a denylist", refund_id="re_123")
    content = client.get(f"/t/{transfer.sender_token}").content.decode()
    assert 'data-status="refunded"' in content
    assert "recipient wallet is on a denylist" in content
    assert "re_123" in content
    assert 'data-state="failed"' in content
    recipient = client.get(f"/r/{transfer.recipient_token}").content.decode()
    assert "denylist" not in recipient


def test_held_transfer_does_not_reveal_the_screening_reason(client, quote):
    """A held transfer's screening reason stays with compliance: neither page shows it."""
    transfer = make_transfer(quote, status=Transfer.Status.HELD, funded_at=timezone.now(),
                             failure_reason="sender name matches a sanctions list entry")
    for path in (f"/t/{transfer.sender_token}", f"/r/{transfer.recipient_token}"):
        content = client.get(path).content.decode()
        assert 'data-status="held"' in content
        assert "sanctions" not in content


def test_pay_page_of_a_paid_transfer_goes_to_the_status_page(client, quote):
    """Once a transfer is no longer waiting for money its pay page redirects to the status page (no Stripe call)."""
    transfer = make_transfer(quote, status=Transfer.Status.FUNDED, funded_at=timezone.now())
    response = client.get(f"/t/{transfer.sender_token}/pay")
    assert response.status_code == 302
    assert response["Location"] == f"/t/{transfer.sender_token}"


# Headers and language --------------------------------------------------------------------------

def test_form_pages_send_same_origin_referrers_and_status_pages_none(client, quote):
    """Under `no-referrer` browsers post forms with `Origin: null`, which the CSRF check refuses, so the form pages
    use `same-origin` (nothing leaves the site either way); the status pages, whose URL is their key, stay
    `no-referrer`."""
    transfer = make_transfer(quote)
    assert client.get("/")["Referrer-Policy"] == "same-origin"
    assert client.get(f"/send/{quote.id}/details")["Referrer-Policy"] == "same-origin"
    for path in (f"/t/{transfer.sender_token}", f"/r/{transfer.recipient_token}",
                 f"/t/{transfer.sender_token}?fragment=1"):
        assert client.get(path)["Referrer-Policy"] == "no-referrer"


def test_language_links_set_the_language_and_return_to_the_page(client, corridors):
    """The header's language links set Django's language cookie and come back to the page; a foreign `next` goes
    home and an unknown language is not found."""
    response = client.get("/language/ky", {"next": "/quote-preview?source_currency=RUB"})
    assert response.status_code == 302
    assert response["Location"] == "/quote-preview?source_currency=RUB"
    assert response.cookies["django_language"].value == "ky"
    assert client.get("/").content.decode().count('lang="ky"') >= 2  # <html lang> and the link
    assert client.get("/language/ru", {"next": "https://evil.example/"})["Location"] == "/"
    assert client.get("/language/de").status_code == 404


# What the recipient receives: som or dollars (issue 13) -------------------------------------------------------------

@pytest.fixture
def dollar_corridors(corridors):
    """The corridors above plus RUB→USD (the cross 1.09 ÷ 87.50) and USD→USD (fee only, no margin)."""
    Corridor.objects.create(source_currency="RUB", target_currency="USD", margin_bps=150, fixed_fee=Decimal("50.00"),
                            percent_fee_bps=100, min_amount=Decimal("500"), max_amount=Decimal("500000"))
    Corridor.objects.create(source_currency="USD", target_currency="USD", margin_bps=0, fixed_fee=Decimal("1.99"),
                            percent_fee_bps=100, min_amount=Decimal("10"), max_amount=Decimal("5000"))


def test_the_sender_chooses_som_or_dollars_and_the_preview_names_the_asset(client, dollar_corridors):
    """The start page offers som (KGST on BNB Chain) and dollars (USDKG on Ethereum), som chosen; each choice asks the
    preview again. 100 USD to dollars: fee 2.99, the recipient gets 97.01 USD as USDKG on Ethereum."""
    page = client.get("/")
    assert 'value="KGS"' in element(page, "id_target_currency_0") and "checked" in element(page, "id_target_currency_0")
    assert 'hx-trigger="change"' in element(page, "id_target_currency_1")
    preview = client.get("/quote-preview", {"source_currency": "USD", "source_amount": "100", "target_currency": "USD"})
    content = preview.content.decode()
    assert "Recipient gets 97.01 USD (as USDKG on Ethereum)" in content
    assert "2.99" in content and error_next_to(preview, "target_currency") == ""
    som = client.get("/quote-preview", {"source_currency": "RUB", "source_amount": "10000"}).content.decode()
    assert "KGST on BNB Chain" in som  # no choice sent (older links): som, as before


def test_a_dollar_quote_from_the_form_asks_for_an_ethereum_wallet(client, dollar_corridors):
    """Posting dollars creates a USD-target quote; its details page asks for an Ethereum address for USDKG."""
    response = client.post("/", {"source_currency": "RUB", "source_amount": "10000", "target_currency": "USD"})
    quote = Quote.objects.get()
    assert response.status_code == 302 and quote.target_currency == "USD"
    assert quote.official_rate == Decimal("0.01245715")  # 1.09 / 87.50 = 0.0124571428…, up to 8 places
    details = client.get(f"/send/{quote.id}/details").content.decode()
    assert "An Ethereum (ERC-20) address" in details and "USDKG" in details


@pytest.mark.parametrize("target", ["EUR", "KGST", "usd"])
def test_an_unsupported_target_is_refused_next_to_its_field_and_stores_nothing(client, dollar_corridors, target):
    """A target we do not pay out is a clear error beside the choice, on the post and in the preview."""
    response = client.post("/", {"source_currency": "RUB", "source_amount": "10000", "target_currency": target})
    assert response.status_code == 200
    assert error_next_to(response, "target_currency") == ("Choose what the recipient receives: som (KGS) or US "
                                                           "dollars (USD).")
    preview = client.get("/quote-preview", {"source_currency": "RUB", "source_amount": "10000",
                                            "target_currency": target})
    assert "Choose what the recipient receives" in error_next_to(preview, "target_currency")
    assert Quote.objects.count() == 0


def test_a_switched_off_dollar_corridor_is_refused_beside_the_choice(client, dollar_corridors):
    """RUB→USD off while RUB→KGS is on: the refusal sits beside what the recipient receives."""
    Corridor.objects.filter(source_currency="RUB", target_currency="USD").update(is_active=False)
    response = client.post("/", {"source_currency": "RUB", "source_amount": "10000", "target_currency": "USD"})
    assert error_next_to(response, "target_currency") == "Sending RUB to USD is not offered."
    assert Quote.objects.count() == 0


def test_status_pages_name_the_asset_and_network(client, dollar_corridors):
    """A som transfer says KGST on BNB Chain; a dollar transfer USDKG on Ethereum and that Ethereum's finality takes
    minutes, on the sender's receipt and the recipient's page."""
    som = make_transfer(quote_create(source_currency="RUB", source_amount=Decimal("10000.00"), partner=None))
    dollars = make_transfer(quote_create(source_currency="USD", target_currency="USD",
                                         source_amount=Decimal("100.00"), partner=None))
    for transfer, label in ((som, "KGST on BNB Chain"), (dollars, "USDKG on Ethereum")):
        for path in (f"/t/{transfer.sender_token}", f"/r/{transfer.recipient_token}"):
            page = client.get(path).content.decode()
            assert label in page, path
            assert ("Ethereum makes a payment final only after several minutes" in page) == (transfer is dollars)
