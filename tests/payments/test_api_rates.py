"""GET /api/v1/rates (docs/api.md "Rates"): every active corridor with our rate after margin, the official rate and
its date, and the fee structure; a missing or stale official rate shows the corridor as unavailable with the
reason quotes give, never a 500; the numbers are the ones a quote made at the same moment carries."""

from datetime import timedelta
from decimal import ROUND_UP, Decimal

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from payments import pricing as price_math
from payments.api.rates import RatesApi
from payments.models import Corridor, Rate
from payments.services.quotes import quote_create
from tests.payments.test_api import assert_problem

pytestmark = pytest.mark.django_db


def rates_by_corridor(api):
    response = api.get("/api/v1/rates")
    assert response.status_code == 200, response.content
    return {r["corridor"]: r for r in response.json()["rates"]}


def test_each_active_corridor_with_our_rate_the_official_one_and_the_fee_structure(api, pricing):
    """RUB-KGS and USD-KGS: our rate is official × (1 − margin) rounded down to 8 places, as a quote's; the official
    rate and its value date; limits and fees as the corridor has them, amounts as 2-decimal strings."""
    rates = rates_by_corridor(api)
    assert set(rates) == {"RUB-KGS", "USD-KGS", "RUB-USD", "USD-USD"}
    rub, corridor = rates["RUB-KGS"], Corridor.objects.get(source_currency="RUB", target_currency="KGS")
    official = Rate.objects.get(source_currency="RUB")
    assert rub["available"] is True and rub["unavailable_reason"] is None
    assert Decimal(rub["official_rate"]) == official.rate
    assert rub["official_rate_date"] == official.value_date.isoformat()
    assert Decimal(rub["rate"]) == price_math.our_rate(official=official.rate, margin_bps=corridor.margin_bps)
    assert Decimal(rub["rate"]) < official.rate
    assert (rub["source_currency"], rub["target_currency"]) == ("RUB", "KGS")
    assert rub["min_amount"] == "500.00" and rub["max_amount"] == "500000.00"
    assert rub["fixed_fee"] == "50.00" and rub["percent_fee_bps"] == 100
    assert rub["min_fee"] == "0.00" and rub["max_fee"] is None
    assert rates["USD-KGS"]["fixed_fee"] == "1.99"


def test_the_rate_shown_is_the_rate_a_quote_gets(api, partner, pricing):
    Corridor.objects.filter(source_currency="USD", target_currency="KGS").update(min_fee=Decimal("2.50"), max_fee=Decimal("40.00"))
    quote = quote_create(partner=partner, source_currency="USD", source_amount=Decimal("100.00"))
    usd = rates_by_corridor(api)["USD-KGS"]
    assert Decimal(usd["rate"]) == quote.rate and Decimal(usd["official_rate"]) == quote.official_rate
    assert usd["official_rate_date"] == quote.official_rate_date.isoformat()
    assert (usd["min_fee"], usd["max_fee"]) == ("2.50", "40.00")
    terms = price_math.Terms(0, Decimal(usd["fixed_fee"]), usd["percent_fee_bps"], Decimal(usd["min_fee"]),
                          Decimal(usd["max_fee"]))
    assert price_math.fee_for(amount=Decimal("100.00"), terms=terms) == quote.fee


def test_an_inactive_corridor_is_not_listed(api, pricing):
    Corridor.objects.filter(source_currency="USD", target_currency="KGS").update(is_active=False)
    assert set(rates_by_corridor(api)) == {"RUB-KGS", "RUB-USD", "USD-USD"}


def test_a_stale_official_rate_shows_the_corridor_unavailable_with_the_reason(api, pricing, settings):
    """A USD rate set five days ago (past RATE_MAX_AGE_HOURS): 200, USD unavailable with the reason quotes give and
    no rate of ours, its last official rate and date still shown; RUB unaffected. A quote is refused alike."""
    old = timezone.now() - timedelta(days=5)
    Rate.objects.filter(source_currency="USD").update(effective_at=old, value_date=old.date())
    rates = rates_by_corridor(api)
    usd = rates["USD-KGS"]
    assert usd["available"] is False and usd["rate"] is None
    assert "out of date" in usd["unavailable_reason"]
    assert usd["official_rate_date"] == old.date().isoformat() and usd["official_rate"] == "87.45000000"
    assert rates["RUB-KGS"]["available"] is True
    refused = api.post("/api/v1/quotes", {"source_currency": "USD", "source_amount": "100.00", "target_currency": "KGS"},
                       format="json")
    body = assert_problem(refused, 503, "rate-unavailable")
    assert body["detail"] == usd["unavailable_reason"]


def test_a_corridor_with_no_rate_yet_is_unavailable_not_an_error(api, pricing):
    Rate.objects.filter(source_currency="RUB").delete()
    rub = rates_by_corridor(api)["RUB-KGS"]
    assert rub["available"] is False and rub["rate"] is None and rub["official_rate"] is None
    assert rub["official_rate_date"] is None
    assert "No RUB/KGS rate" in rub["unavailable_reason"]


def test_a_rate_that_takes_effect_later_is_not_shown_yet(api, pricing):
    """A rate recorded for tomorrow (NBKR publishes ahead) is not the one in effect now."""
    now = timezone.now()
    Rate.objects.create(source_currency="RUB", rate=Decimal("2.0"), effective_at=now + timedelta(hours=3),
                        value_date=(now + timedelta(days=1)).date())
    assert rates_by_corridor(api)["RUB-KGS"]["official_rate"] == "1.07850000"


def test_rates_need_an_api_key_and_name_the_quotes_scope(pricing):
    assert_problem(APIClient().get("/api/v1/rates"), 401)
    assert RatesApi.required_scopes == ["quotes"]


def test_rates_are_one_query_whatever_the_number_of_corridors(api, pricing):
    """Corridors with their rates in effect in one statement (plus the key's own look-up)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    rates_by_corridor(api)  # the key's last use is written once a minute: not in the counts below
    with CaptureQueriesContext(connection) as two:
        rates_by_corridor(api)
    Corridor.objects.filter(source_currency="USD", target_currency="KGS").update(is_active=False)
    with CaptureQueriesContext(connection) as one:
        rates_by_corridor(api)
    assert len(one.captured_queries) == len(two.captured_queries)
    assert sum("payments_rate" in q["sql"] for q in two.captured_queries) == 1


def test_dollar_corridors_show_the_cross_rate_and_exactly_one(api, pricing):
    """RUB-USD's official rate is the cross of the NBKR RUB and USD rates (RUB/KGS ÷ USD/KGS) rounded up to 8 places,
    dated the older of the two; USD-USD is exactly 1 with no date and no margin: the fee alone."""
    rates = rates_by_corridor(api)
    rub = Rate.objects.get(source_currency="RUB").rate
    usd = Rate.objects.get(source_currency="USD").rate
    cross = rates["RUB-USD"]
    assert Decimal(cross["official_rate"]) == (rub / usd).quantize(Decimal("0.00000001"), ROUND_UP)
    assert Decimal(cross["official_rate"]) >= rub / usd
    assert cross["available"] is True and cross["official_rate_date"] is not None
    same = rates["USD-USD"]
    assert Decimal(same["official_rate"]) == Decimal(same["rate"]) == 1
    assert same["official_rate_date"] is None and same["available"] is True


def test_a_stale_usd_rate_pauses_the_cross_but_not_dollars_to_dollars(api, pricing):
    """RUB-USD needs both NBKR rates current; USD-USD needs none."""
    old = timezone.now() - timedelta(days=5)
    Rate.objects.filter(source_currency="USD").update(effective_at=old, value_date=old.date())
    rates = rates_by_corridor(api)
    assert rates["RUB-USD"]["available"] is False and rates["RUB-USD"]["unavailable_reason"]
    assert rates["USD-USD"]["available"] is True
    assert rates["RUB-KGS"]["available"] is True
