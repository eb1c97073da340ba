"""Local time in a real browser (headless Chromium, its time zone pinned by Playwright): the sender's status page
shows every time in the browser's zone, named, in the page's language, also after htmx swaps in a live update;
the recipient's page stays in Bishkek time whatever the browser's zone."""

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from payments.models import Transfer
from payments.services.quotes import quote_create
from tests.browser import requires_chromium
from tests.helpers import force_status

pytestmark = [
    pytest.mark.django_db(transaction=True),
    requires_chromium,
]

WALLET = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
PAID = datetime(2026, 11, 29, 15, 54, tzinfo=UTC)


@pytest.fixture
def zoned(browser):
    """A page in a browser context with the given locale and time zone; fails the test on any JavaScript error."""
    contexts, errors = [], []

    def open_page(locale, zone):
        context = browser.new_context(locale=locale, timezone_id=zone)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        return page

    yield open_page
    for context in contexts:
        context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


def funded_transfer():
    quote = quote_create(source_currency="RUB", source_amount=Decimal("10000.00"), partner=None)
    transfer = Transfer.objects.create(
        quote=quote, idempotency_key=str(uuid.uuid4()), request_fingerprint="0" * 64, sender_name="Aibek Usenov",
        sender_phone="+79161234567", sender_email="a@example.com", recipient_name="Gulnara",
        recipient_phone="+996555123456", recipient_wallet=WALLET)
    force_status(Transfer.objects.filter(pk=transfer.pk), Transfer.Status.FUNDED, funded_at=PAID)
    return transfer


def local_times(page):
    return page.eval_on_selector_all("#transfer-status time", "els => els.map(e => [e.dateTime, e.textContent])")


@pytest.mark.parametrize(("lang", "zone", "paid", "delivered", "zone_name"), [
    ("ru", "Europe/Moscow", "18:54", "19:54", "Москва"),
    # Chromium has no Kyrgyz date data: local-time.js falls back to Russian, which Kyrgyz readers read.
    ("ky", "Asia/Bishkek", "21:54", "22:54", "Киргизия"),
])
def test_sender_sees_the_browsers_zone_named_and_keeps_it_through_live_updates(
        zoned, live_server, pricing, lang, zone, paid, delivered, zone_name):
    """Times on the sender's page are rewritten from UTC into the browser's zone with the zone's name, in the page's
    language; when the transfer completes, the polled status block arrives in UTC from the server and is
    rewritten again, the delivery time included."""
    transfer = funded_transfer()
    page = zoned(f"{lang}-{'US' if lang == 'en' else 'KG' if lang == 'ky' else 'RU'}", zone)
    page.goto(f"{live_server.url}/language/{lang}?next=/t/{transfer.sender_token}")
    page.wait_for_selector("time[data-local-time=done]")
    paid_text = next(text for iso, text in local_times(page) if iso.startswith("2026-11-29T15:54"))
    assert paid in paid_text and zone_name in paid_text and "UTC)" not in paid_text

    force_status(Transfer.objects.filter(pk=transfer.pk), Transfer.Status.COMPLETED,
                 completed_at=PAID + timedelta(hours=1))
    page.wait_for_selector("#transfer-status[data-status=completed]", timeout=20_000)
    page.wait_for_function("() => [...document.querySelectorAll('#transfer-status time')].every("
                           "t => t.dataset.localTime === 'done')", timeout=5_000)
    texts = [text for _iso, text in local_times(page)]
    assert texts and not [t for t in texts if "UTC)" in t]
    assert any(delivered in t and zone_name in t for t in texts), texts


def test_recipient_page_stays_in_bishkek_time_in_a_moscow_browser(zoned, live_server, pricing):
    """The recipient's page is in Bishkek time, named, even in a browser set to Moscow: no script rewrites it."""
    transfer = funded_transfer()
    force_status(Transfer.objects.filter(pk=transfer.pk), Transfer.Status.COMPLETED, completed_at=PAID)
    page = zoned("ru-RU", "Europe/Moscow")
    page.goto(f"{live_server.url}/language/ru?next=/r/{transfer.recipient_token}")
    texts = [text for _iso, text in local_times(page)]
    assert len(texts) >= 2 and set(texts) == {"29 ноября 2026 г. 21:54 (время Бишкека, UTC+6)"}
