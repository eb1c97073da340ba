"""Official rates: NBKR's daily XML (recorded files in the real format, served by a real local HTTP server), manual
rates from admin, what is recorded, and which rate quotes may use (none too old)."""

import threading
from datetime import date, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from onchain.models import OperatorAlert
from payments.errors import RateSourceError, RateUnavailable
from payments.models import Quote, Rate
from payments.providers.nbkr import NbkrRecordedSource, NbkrSource, OfficialRate, nbkr_parse
from payments.services.rates import day_start, rate_current, rate_record_manual, rates_record, rates_refresh
from tests.helpers import staff_login

pytestmark = pytest.mark.django_db

DATA = Path(__file__).parent / "data"
DAILY = DATA / "nbkr_daily.xml"
DAILY_DATE = date(2026, 11, 27)


class _Handler(BaseHTTPRequestHandler):
    routes = {}  # path -> (status, body)

    def do_GET(self):
        status, body = self.routes.get(self.path, (404, b"not found"))
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def nbkr_server():
    """A real HTTP server on 127.0.0.1 answering the recorded files: /daily.xml, /malformed.xml, /no-usd.xml, and
    /down.xml with a 503 page. Yields its base URL."""
    _Handler.routes = {
        "/daily.xml": (200, DAILY.read_bytes()),
        "/malformed.xml": (200, (DATA / "nbkr_daily_malformed.xml").read_bytes()),
        "/no-usd.xml": (200, (DATA / "nbkr_daily_no_usd.xml").read_bytes()),
        "/down.xml": (503, b"<html><body>Service temporarily unavailable</body></html>"),
    }
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def at(value_date, hours=10):
    """A moment `hours` into `value_date` in Bishkek."""
    return day_start(value_date) + timedelta(hours=hours)


def alerts():
    return list(OperatorAlert.objects.filter(kind="rates", resolved_at__isnull=True).values_list("message", flat=True))


# Parsing the real format ---------------------------------------------------------------------------------------

def test_recorded_daily_file_parses_to_som_per_unit_with_its_value_date():
    """The recorded daily file (windows-1251, CRLF, comma decimals) gives USD 87.45, RUB 1.0785, EUR and KZT, all
    dated 27.11.2026."""
    rates = {r.currency: r for r in nbkr_parse(DAILY.read_bytes())}
    assert set(rates) == {"USD", "EUR", "KZT", "RUB"}
    assert rates["USD"].value == Decimal("87.4500") and rates["RUB"].value == Decimal("1.0785")
    assert rates["KZT"].value == Decimal("0.1690")
    assert {r.value_date for r in rates.values()} == {DAILY_DATE}


def test_value_is_divided_by_nominal_and_windows_1251_text_is_read():
    """A currency quoted per 100 units gives Value/Nominal per unit; a Cyrillic name in windows-1251 does not stop
    the parser."""
    body = ('<?xml version="1.0" encoding="windows-1251"?>\r\n<CurrencyRates Name="Официальные курсы" '
            'Date="01.12.2026">\r\n<Currency ISOCode="RUB">\r\n<Nominal>100</Nominal>\r\n<Value>107,8500</Value>'
            '\r\n</Currency>\r\n</CurrencyRates>\r\n').encode("windows-1251")
    [rub] = nbkr_parse(body)
    assert rub == OfficialRate("RUB", Decimal("1.0785"), date(2026, 12, 1))


@pytest.mark.parametrize("body", [
    (DATA / "nbkr_daily_malformed.xml").read_bytes(),
    b"<html><body>maintenance</body></html>",
    b'<?xml version="1.0"?><CurrencyRates Date="2026-11-27"><Currency ISOCode="USD"><Nominal>1</Nominal>'
    b"<Value>87,45</Value></Currency></CurrencyRates>",
    b'<?xml version="1.0"?><CurrencyRates Date="27.11.2026"><Currency ISOCode="USD"><Nominal>1</Nominal>'
    b"<Value>87.45,00</Value></Currency></CurrencyRates>",
    b'<?xml version="1.0"?><CurrencyRates Date="27.11.2026"><Currency ISOCode="USD"><Nominal>0</Nominal>'
    b"<Value>87,45</Value></Currency></CurrencyRates>",
    b'<?xml version="1.0"?><CurrencyRates Date="27.11.2026"><Currency ISOCode="USD"><Nominal>1</Nominal>'
    b"<Value>-87,45</Value></Currency></CurrencyRates>",
    b'<?xml version="1.0"?><CurrencyRates Date="27.11.2026"></CurrencyRates>',
    b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><CurrencyRates Date="27.11.2026"/>',
], ids=["truncated", "html", "iso-date", "bad-number", "zero-nominal", "negative", "empty", "dtd"])
def test_anything_but_a_rate_file_is_refused(body):
    """A cut-off file, an HTML page, a wrong date format, an unreadable or non-positive value, a zero nominal, an
    empty list and a DTD are each a RateSourceError, never a rate."""
    with pytest.raises(RateSourceError):
        nbkr_parse(body)


def test_plain_http_is_refused_except_to_this_machine():
    """The live source only takes https (plain http only to 127.0.0.1, for tests)."""
    with pytest.raises(RateSourceError):
        NbkrSource(url="http://www.nbkr.kg/XML/daily.xml")
    NbkrSource(url="https://www.nbkr.kg/XML/daily.xml")
    NbkrSource(url="http://127.0.0.1:9/daily.xml")


# Refreshing and recording ---------------------------------------------------------------------------------------

def test_refresh_records_rub_and_usd_with_source_value_date_and_fetch_time(nbkr_server):
    """A refresh from the feed records RUB and USD (not EUR or KZT) with source NBKR, the file's value date and the
    fetch time, in effect from then; a second refresh of the same file records nothing."""
    before = timezone.now()
    created = rates_refresh(source=NbkrSource(url=f"{nbkr_server}/daily.xml", timeout=5))
    assert {(r.source_currency, r.rate) for r in created} == {("USD", Decimal("87.45")), ("RUB", Decimal("1.0785"))}
    for rate in Rate.objects.all():
        assert rate.source == "NBKR" and rate.value_date == DAILY_DATE and rate.target_currency == "KGS"
        assert before <= rate.fetched_at <= timezone.now()
        assert rate.effective_at == max(day_start(DAILY_DATE), rate.fetched_at)
    assert rates_refresh(source=NbkrSource(url=f"{nbkr_server}/daily.xml", timeout=5)) == []
    assert Rate.objects.count() == 2
    assert alerts() == []


@pytest.mark.parametrize("path", ["/malformed.xml", "/down.xml", "/missing.xml"])
def test_failed_or_malformed_fetch_keeps_the_last_good_rate_and_alerts(nbkr_server, path):
    """After a good fetch, a truncated file, a 503 or a 404 records nothing, keeps the good rates in effect and
    raises one operator alert (not repeated by the next failing pass)."""
    rates_refresh(source=NbkrSource(url=f"{nbkr_server}/daily.xml", timeout=5), now=at(DAILY_DATE, 9))
    good = {r.pk for r in Rate.objects.all()}
    for _ in range(2):
        assert rates_refresh(source=NbkrSource(url=f"{nbkr_server}{path}", timeout=5)) == []
    assert {r.pk for r in Rate.objects.all()} == good
    assert rate_current(source_currency="USD", now=at(DAILY_DATE + timedelta(days=1))).rate == Decimal("87.45")
    [message] = alerts()
    assert message.startswith("NBKR rates not refreshed")


def test_unreachable_source_alerts_and_records_nothing():
    """A feed nobody answers (a closed port) is an alert, not an exception out of the beat task."""
    assert rates_refresh(source=NbkrSource(url="http://127.0.0.1:9/daily.xml", timeout=2)) == []
    assert Rate.objects.count() == 0
    [message] = alerts()
    assert "could not be reached" in message


def test_file_without_usd_records_rub_keeps_the_last_usd_and_alerts(nbkr_server):
    """A daily file missing USD records its RUB rate, leaves the previous USD rate in effect and alerts about USD."""
    rates_refresh(source=NbkrSource(url=f"{nbkr_server}/daily.xml", timeout=5), now=at(DAILY_DATE, 9))
    created = rates_refresh(source=NbkrSource(url=f"{nbkr_server}/no-usd.xml", timeout=5),
                            now=at(date(2026, 11, 27), 17))
    assert [(r.source_currency, r.rate, r.value_date) for r in created] == [("RUB", Decimal("1.0812"),
                                                                            date(2026, 11, 28))]
    later = at(date(2026, 11, 28))
    assert rate_current(source_currency="RUB", now=later).rate == Decimal("1.0812")
    assert rate_current(source_currency="USD", now=later).rate == Decimal("87.45")
    [message] = alerts()
    assert "no USD" in message


def test_misconfigured_feed_url_alerts(settings):
    """RATES_SOURCE=nbkr with a plain-http URL is refused with an alert by the beat task, not a crash."""
    settings.RATES_SOURCE, settings.NBKR_RATES_URL = "nbkr", "http://www.nbkr.kg/XML/daily.xml"
    assert rates_refresh() == []
    [message] = alerts()
    assert "https" in message


def test_recorded_source_gives_the_bundled_file_as_todays(settings):
    """`make run` without NBKR_RATES_URL (RATES_SOURCE=recorded) records the bundled NBKR file's values dated today,
    source NBKR-recorded, so local quotes use NBKR-style rates."""
    settings.RATES_SOURCE = "recorded"
    created = rates_refresh()
    today = timezone.localtime(timezone.now(), day_start(DAILY_DATE).tzinfo).date()
    assert {(r.source_currency, r.rate, r.value_date, r.source) for r in created} == {
        ("USD", Decimal("87.45"), today, "NBKR-recorded"), ("RUB", Decimal("1.0785"), today, "NBKR-recorded")}
    assert rate_current(source_currency="USD").source == "NBKR-recorded"
    assert NbkrRecordedSource(path=settings.NBKR_RECORDED_FILE, today=today).fetch()[0].value_date == today


def test_beat_refreshes_rates():
    """Beat runs the payments task that refreshes rates, and it is a registered Celery task."""
    from gateway.celery import app

    entry = settings.CELERY_BEAT_SCHEDULE["rates-refresh"]
    assert entry["task"] == "payments.tasks.rates_refresh"
    app.loader.import_default_modules()
    assert entry["task"] in app.tasks


# Which rate a quote uses ----------------------------------------------------------------------------------------

def test_latest_rate_in_effect_wins_and_a_future_one_waits():
    """rate_current takes the latest rate already in effect; NBKR's rate for tomorrow waits until tomorrow."""
    today = date(2026, 12, 1)
    rates_record(rates=[OfficialRate("USD", Decimal("87.40"), today)], source="NBKR", now=at(today, 1))
    rates_record(rates=[OfficialRate("USD", Decimal("87.90"), today + timedelta(days=1))], source="NBKR",
                 now=at(today, 15))
    assert rate_current(source_currency="USD", now=at(today, 16)).rate == Decimal("87.40")
    assert rate_current(source_currency="USD", now=at(today + timedelta(days=1), 0.5)).rate == Decimal("87.90")


def test_rate_older_than_the_max_age_stops_quotes(settings, api):
    """A rate set for a date that began more than RATE_MAX_AGE_HOURS ago is refused: RateUnavailable from the
    service, a 503 rate-unavailable problem from the API, no quote stored."""
    from payments.services.setup import corridors_seed

    corridors_seed()
    old = timezone.localdate() - timedelta(days=10)
    Rate.objects.create(source_currency="USD", rate=Decimal("87.45"), value_date=old, effective_at=day_start(old),
                        fetched_at=day_start(old))
    with pytest.raises(RateUnavailable, match="out of date"):
        rate_current(source_currency="USD")
    just_in = day_start(old) + timedelta(hours=settings.RATE_MAX_AGE_HOURS)
    assert rate_current(source_currency="USD", now=just_in).rate == Decimal("87.45")
    with pytest.raises(RateUnavailable):
        rate_current(source_currency="USD", now=just_in + timedelta(seconds=1))
    response = api.post("/api/v1/quotes", {"source_currency": "USD", "source_amount": "100.00",
                                           "target_currency": "KGS"}, format="json")
    assert response.status_code == 503
    assert response.json()["type"].endswith("/rate-unavailable")
    assert "out of date" in response.json()["detail"]
    assert Quote.objects.count() == 0


def test_no_rate_at_all_is_refused():
    """Without any rate for the pair, a clear RateUnavailable."""
    with pytest.raises(RateUnavailable, match="No USD/KGS rate"):
        rate_current(source_currency="USD")


# Manual rates in admin ------------------------------------------------------------------------------------------

@pytest.fixture
def treasurer(client):
    user = get_user_model().objects.create_superuser("treasurer", "t@example.com", "a-long-password-123")
    return staff_login(client, user)


def test_operator_types_a_manual_rate_that_takes_effect_with_who(treasurer, pricing):
    """An operator adds a rate in admin, with a reason: it is recorded with source manual, their name, today's value
    date, and is the rate quotes use from now on; the audit trail has who, why and the rate recorded."""
    from staff.models import AuditEntry

    rates_record(rates=[OfficialRate("USD", Decimal("87.45"), timezone.localdate())], source="NBKR",
                 now=timezone.now() - timedelta(hours=1))
    response = treasurer.post("/admin/payments/rate/add/", {"source_currency": "USD", "rate": "87.6000",
                                                            "reason": "NBKR feed down since 09:00, rate from nbkr.kg"})
    assert response.status_code == 302, response.content.decode()[:2000]
    rate = rate_current(source_currency="USD")
    assert (rate.rate, rate.source, rate.recorded_by) == (Decimal("87.6"), "manual", "treasurer")
    entry = AuditEntry.objects.get(action="payments.add_rate")
    assert (entry.actor_username, entry.reason, entry.outcome) == (
        "treasurer", "NBKR feed down since 09:00, rate from nbkr.kg", AuditEntry.Outcome.DONE)
    assert "87.6" in entry.detail and f"#{rate.pk}" in entry.detail


def manual(treasurer, rate, **extra):
    return treasurer.post("/admin/payments/rate/add/", {"source_currency": "USD", "rate": rate,
                                                        "reason": "feed down", **extra})


def test_manual_rate_far_from_the_current_one_needs_confirmation(treasurer, pricing):
    """A manual rate more than 10 % away from the one in effect is refused next to the rate field until confirmed;
    nothing is recorded meanwhile. Zero and a missing reason are refused."""
    before = Rate.objects.count()
    response = manual(treasurer, "100.00")  # 14 % above the seed's 87.45
    assert response.status_code == 200
    assert "Confirm a large change" in response.context["adminform"].form.errors["rate"][0]
    response = manual(treasurer, "0")
    assert response.status_code == 200 and "rate" in response.context["adminform"].form.errors
    response = treasurer.post("/admin/payments/rate/add/", {"source_currency": "USD", "rate": "87.5"})
    assert response.status_code == 200 and "reason" in response.context["adminform"].form.errors
    assert Rate.objects.count() == before
    assert manual(treasurer, "100.00", confirm_large_change="on").status_code == 302
    assert rate_current(source_currency="USD").rate == Decimal("100.00")


@pytest.mark.parametrize("typed", ["874.5", "8.745", "109.40"], ids=["x10", "div10", "25%-plus"])
def test_a_manual_rate_past_the_cap_is_refused_even_when_confirmed(treasurer, pricing, typed):
    """A typo no confirmation makes right: a manual rate more than MANUAL_RATE_MAX_DEVIATION (25 %) from the last
    official rate is refused next to the field, confirmed or not, and nothing is recorded or audited as done; the
    service refuses it the same way (a caller that skips the form)."""
    from payments.errors import ManualRateRefused
    from staff.models import AuditEntry

    before = Rate.objects.count()
    response = manual(treasurer, typed, confirm_large_change="on")
    assert response.status_code == 200
    assert "MANUAL_RATE_MAX_DEVIATION" in response.context["adminform"].form.errors["rate"][0]
    assert Rate.objects.count() == before
    assert not AuditEntry.objects.filter(action="payments.add_rate", outcome=AuditEntry.Outcome.DONE).exists()
    with pytest.raises(ManualRateRefused):
        rate_record_manual(currency="USD", value=Decimal(typed), by="script")
    assert Rate.objects.count() == before


def test_a_manual_rate_for_a_currency_without_a_corridor_is_refused(treasurer):
    """No corridor, nothing to price: refused next to the currency, nothing recorded."""
    response = manual(treasurer, "87.45")
    assert response.status_code == 200 and "source_currency" in response.context["adminform"].form.errors
    assert not Rate.objects.exists()


def test_rates_are_history_not_edited(treasurer):
    """A recorded rate cannot be changed or deleted in admin."""
    rate = rate_record_manual(currency="RUB", value=Decimal("1.08"), by="someone")
    response = treasurer.post(f"/admin/payments/rate/{rate.pk}/change/", {"source_currency": "RUB", "rate": "2"})
    assert response.status_code == 403
    rate.refresh_from_db()
    assert rate.rate == Decimal("1.08")
    assert treasurer.post(f"/admin/payments/rate/{rate.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Rate.objects.filter(pk=rate.pk).exists()
