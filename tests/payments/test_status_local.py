"""Status pages and receipts in the reader's time and numbers: the recipient's page in Bishkek time, the sender's
rendered in UTC (named) for local-time.js to turn into the browser's zone; amounts with the locale's separators;
the recipient link as a QR code with a name; the explorer link only for a settled payout on a chain that has one."""

import re
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import segno
from django.core.exceptions import ValidationError
from django.utils import translation
from django.utils.formats import number_format
from eth_utils import to_checksum_address

from onchain.models import Batch, Chain, ChainTransaction, HotWallet, Payout, Token, validate_explorer_tx_url
from payments.models import Transfer
from payments.services.quotes import quote_create
from tests.helpers import force_status

pytestmark = pytest.mark.django_db

WALLET = to_checksum_address("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed")
COMPLETED_AT = datetime(2026, 11, 29, 15, 54, tzinfo=UTC)  # 21:54 in Bishkek (UTC+6, no daylight saving)
TX_HASH = "0x" + "ab" * 32


@pytest.fixture
def quote(pricing):
    return quote_create(source_currency="RUB", source_amount=Decimal("10000.00"), partner=None)


def make_transfer(quote, **fields):
    values = {"quote": quote, "idempotency_key": str(uuid.uuid4()), "request_fingerprint": "0" * 64,
              "sender_name": "Aibek Temirov", "sender_phone": "+79161234567", "sender_email": "aibek@example.com",
              "recipient_name": "Gulnara Usenova", "recipient_phone": "+996555123456", "recipient_wallet": WALLET}
    values.update(fields)
    return Transfer.objects.create(**values)


def completed(quote, **fields):
    transfer = make_transfer(quote, **fields)
    force_status(Transfer.objects.filter(pk=transfer.pk), Transfer.Status.COMPLETED, completed_at=COMPLETED_AT,
                 funded_at=COMPLETED_AT)
    transfer.refresh_from_db()
    return transfer


def get(client, path, lang, **params):
    client.cookies["django_language"] = lang
    response = client.get(path, params)
    assert response.status_code == 200
    return response.content.decode()


def times(content):
    """[(datetime attribute, data-local-time?, text)] of the page's <time> elements."""
    return [(m[0], bool(m[1]), m[2]) for m in
            re.findall(r'<time datetime="([^"]+)"( data-local-time)?>([^<]*)</time>', content)]


# Times -------------------------------------------------------------------------------------------

RECIPIENT_ARRIVED = {
    "en": "Nov. 29, 2026, 9:54 p.m. (Bishkek time, UTC+6)",
    "ru": "29 ноября 2026 г. 21:54 (время Бишкека, UTC+6)",
    "ky": "29.11.2026 21:54 (Бишкек убактысы, UTC+6)",
}


@pytest.mark.parametrize("lang", ["en", "ru", "ky"])
def test_recipient_page_shows_bishkek_time_with_the_zone_named(client, quote, lang):
    """The recipient's page and its polled fragment (the live update) render every time in Bishkek time, named, in
    the page's language, whatever zone the server runs in; the machine-readable datetime stays UTC. The recipient's
    page never hands its times to the browser's zone."""
    transfer = completed(quote)
    for params in ({}, {"fragment": "1"}):
        content = get(client, f"/r/{transfer.recipient_token}", lang, **params)
        found = times(content)
        assert found, "no <time> on the page"
        assert set(found) == {("2026-11-29T15:54:00Z", False, RECIPIENT_ARRIVED[lang])}
        assert "local-time.js" not in content


SENDER_PAID = {
    "en": "Nov. 29, 2026, 3:54 p.m. (UTC)",
    "ru": "29 ноября 2026 г. 15:54 (UTC)",
    "ky": "29.11.2026 15:54 (UTC)",
}


@pytest.mark.parametrize("lang", ["en", "ru", "ky"])
def test_sender_page_renders_utc_named_for_the_browser_to_localise(client, quote, lang):
    """Without JavaScript the sender reads a correct time with its zone named (UTC); each <time> carries
    data-local-time and its UTC instant so local-time.js can rewrite it into the browser's zone, on the page and in
    the polled fragment alike."""
    transfer = completed(quote)
    page = get(client, f"/t/{transfer.sender_token}", lang)
    assert 'src="/static/js/local-time.js"' in page
    for content in (page, get(client, f"/t/{transfer.sender_token}", lang, fragment="1")):
        found = times(content)
        assert len(found) >= 3  # timeline, paid, delivered (and created)
        assert {f for f in found if f[0] == "2026-11-29T15:54:00Z"} == {("2026-11-29T15:54:00Z", True, SENDER_PAID[lang])}
        assert all(local for _iso, local, _text in found)
        assert " UTC</dd>" not in content


# Numbers -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("lang", "amount", "big"), [("en", "10,463.88", "1,234,567.50"),
                                                    ("ru", "10\xa0463,88", "1\xa0234\xa0567,50"),
                                                    ("ky", "10\xa0463,88", "1\xa0234\xa0567,50")])
def test_amounts_follow_the_locale(client, quote, lang, amount, big):
    """Russian and Kyrgyz write a decimal comma and group thousands with a no-break space (Django's Kyrgyz formats
    have a decimal point: gateway/formats/ky corrects it); English a point and commas. On both pages."""
    assert quote.target_amount == Decimal("10463.88")
    transfer = make_transfer(quote)
    for path in (f"/t/{transfer.sender_token}", f"/r/{transfer.recipient_token}"):
        assert f"{amount} KGS" in get(client, path, lang)
    with translation.override(lang):
        assert number_format(Decimal("1234567.5"), 2, force_grouping=True) == big
        assert number_format(Decimal("1.0785"), 4) == ("1.0785" if lang == "en" else "1,0785")


# QR code -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("lang", "name"), [("en", "QR code of the recipient link"),
                                            ("ru", "QR-код ссылки для получателя"),
                                            ("ky", "Алуучунун шилтемесинин QR-коду")])
def test_sender_page_has_a_named_qr_code_of_the_recipient_link(client, quote, settings, lang, name):
    """The sender's page carries the recipient link as an inline SVG QR code, named for screen readers in the page's
    language; its modules are exactly segno's for that link (so a phone scans the right page). The recipient's page
    has none."""
    settings.PUBLIC_BASE_URL = "https://tulpar.example"
    transfer = make_transfer(quote)
    content = get(client, f"/t/{transfer.sender_token}", lang)
    svg = re.search(r"<svg [^>]*>.*?</svg>", content, re.S).group(0)
    assert f'role="img" aria-label="{name}"' in svg
    assert f"<title>{name}</title>" in svg
    expected = segno.make(f"https://tulpar.example/r/{transfer.recipient_token}", error="m").svg_inline(scale=4)
    assert re.search(r' d="([^"]+)"', expected.split("<path", 1)[1]).group(1) in svg
    assert "style=" not in svg  # the CSP allows no inline styles
    assert "<svg" not in get(client, f"/r/{transfer.recipient_token}", lang)


# Explorer link -----------------------------------------------------------------------------------

def settled(transfer, *, explorer, batch_status, payout_status):
    """Put `transfer` on chain: a payout in a batch mined at block 10 by one attempt, in the given states."""
    chain = Chain.objects.create(chain_id=97, name="t", confirmations=2, explorer_tx_url=explorer)
    token = Token.objects.create(chain=chain, symbol="KGST", address=WALLET, decimals=18)
    wallet = HotWallet.objects.create(chain=chain, address=to_checksum_address("0x" + "11" * 20))
    batch = Batch.objects.create(token=token, wallet=wallet, nonce=0, mode=Batch.Mode.SINGLE, count=1,
                                 total_base_units=10**18)
    tx = ChainTransaction.objects.create(batch=batch, wallet=wallet, nonce=0, tx_hash=TX_HASH, raw_tx=b"\x01",
                                         to_address=WALLET, data=b"", gas_limit=100_000, max_fee_per_gas=1,
                                         max_priority_fee_per_gas=1)
    force_status(Batch.objects.filter(pk=batch.pk), batch_status, block_number=10,
                 mined_tx=tx if batch_status != Batch.Status.BROADCAST else None)
    payout = Payout.objects.create(reference=str(transfer.pk), token=token, to_address=WALLET,
                                   amount_base_units=10**18, batch=batch)
    force_status(Payout.objects.filter(pk=payout.pk), payout_status)
    transfer_status = Transfer.Status.COMPLETED if payout_status == Payout.Status.CONFIRMED else Transfer.Status.SETTLING
    force_status(Transfer.objects.filter(pk=transfer.pk), transfer_status, payout_reference=str(transfer.pk),
                 funded_at=COMPLETED_AT, completed_at=COMPLETED_AT if transfer_status == "completed" else None)


@pytest.mark.parametrize(("explorer", "batch_status", "payout_status", "linked"), [
    ("https://testnet.bscscan.com/tx/{tx_hash}", Batch.Status.FINAL, Payout.Status.CONFIRMED, True),
    ("", Batch.Status.FINAL, Payout.Status.CONFIRMED, False),  # no explorer configured (a local chain)
    ("https://testnet.bscscan.com/tx/{tx_hash}", Batch.Status.MINED, Payout.Status.BATCHED, False),  # not final
    ("https://testnet.bscscan.com/tx/{tx_hash}", Batch.Status.BROADCAST, Payout.Status.BATCHED, False),
])
def test_explorer_link_only_once_settled_on_a_chain_with_an_explorer(client, quote, explorer, batch_status,
                                                                      payout_status, linked):
    """Both pages show the transaction hash once there is one, but link it to the chain's explorer only when the
    payout is final and the chain has an explorer URL: a link before finality could show a transaction a reorg
    undoes, and a chain without an explorer gets no dead link."""
    transfer = make_transfer(quote)
    settled(transfer, explorer=explorer, batch_status=batch_status, payout_status=payout_status)
    for path in (f"/t/{transfer.sender_token}", f"/r/{transfer.recipient_token}"):
        content = get(client, path, "en")
        assert TX_HASH in content
        link = f'id="explorer-link" href="https://testnet.bscscan.com/tx/{TX_HASH}"'
        assert (link in content) is linked
        assert ('id="explorer-link"' in content) is linked


@pytest.mark.parametrize("url", ["javascript:alert(1)//{tx_hash}", "https://x.example/tx/{tx_hash.__class__}",
                                 "https://x.example/tx/", "https://x.example/{tx_hash}/{tx_hash}"])
def test_explorer_url_must_be_http_with_one_tx_hash_placeholder(url):
    """An operator's explorer URL is linked from public pages and filled in with the hash: anything but an http(s)
    address with exactly one {tx_hash} is refused."""
    with pytest.raises(ValidationError):
        validate_explorer_tx_url(url)
    validate_explorer_tx_url("https://bscscan.com/tx/{tx_hash}")
    validate_explorer_tx_url("")
