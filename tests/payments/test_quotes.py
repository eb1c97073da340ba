"""Quotes in both directions (send-fixed, receive-fixed) for both currencies: the API, the web form, the corridor's
limits and fees, refusals that store nothing, and the rounding rules of docs/ledger.md as properties."""

from datetime import timedelta
from decimal import ROUND_CEILING, ROUND_UP, Decimal

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from payments import pricing
from payments import pricing as price_math
from payments.errors import AmountOutOfRange, CorridorUnavailable
from payments.models import Corridor, Quote, Rate, bishkek_today
from payments.providers.nbkr import OfficialRate
from payments.services.quotes import quote_create, quote_price
from payments.services.rates import rate_current, rate_record_manual, rates_record
from tests.payments.test_api import assert_problem, stripe_intents, transfer_body

pytestmark = pytest.mark.django_db

CENT = Decimal("0.01")
# The seeded corridors (settings.CORRIDOR_DEFAULTS) and rates (payments.services.setup.SEED_RATES).
LIMITS = {"RUB": (Decimal("500.00"), Decimal("500000.00")), "USD": (Decimal("10.00"), Decimal("5000.00"))}


def post_quote(api, currency, **amount):
    body = {"source_currency": currency, "target_currency": "KGS", **{k: str(v) for k, v in amount.items()}}
    return api.post("/api/v1/quotes", body, format="json")


def send_target(currency, amount):
    """Som a send-fixed quote for `amount` gives now (no quote stored)."""
    return quote_price(source_currency=currency, source_amount=amount).target_amount


# The API, both directions -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("currency", "som"), [("RUB", "10000.00"), ("USD", "8700.00"), ("USD", "12345.67"),
                                               ("RUB", "600.01")])
def test_receive_fixed_quote_gives_exactly_the_som_for_the_smallest_amount(api, pricing, currency, som):
    """POST /quotes with target_amount: the recipient gets exactly that many som; the source amount, re-priced
    send-fixed, gives at least them, and one minor unit less would not; the response carries the direction, the
    official rate, the total charged and the total cost."""
    response = post_quote(api, currency, target_amount=som)
    assert response.status_code == 201, response.content
    quote = response.json()
    source = Decimal(quote["source_amount"])
    assert quote["direction"] == "receive" and quote["target_amount"] == som
    assert send_target(currency, source) >= Decimal(som)
    assert send_target(currency, source - CENT) < Decimal(som)
    assert quote["total_charged"] == quote["source_amount"]
    official = Decimal(quote["official_rate"])
    assert Decimal(quote["cost_percent"]) == ((1 - Decimal(som) / (source * official)) * 100).quantize(
        CENT, ROUND_CEILING)
    stored = Quote.objects.get(pk=quote["id"])
    assert (stored.direction, stored.target_amount, stored.source_amount) == ("receive", Decimal(som), source)
    assert stored.official_rate_date == Rate.objects.get(source_currency=currency).value_date


@pytest.mark.parametrize("currency", ["RUB", "USD"])
def test_send_fixed_quote_shows_everything_a_sender_compares(api, pricing, currency):
    """POST /quotes with source_amount: rate below the official one, fee, total charged (= the amount, fee
    included), som received and the total cost in percent, as 2-decimal strings."""
    amount = {"RUB": "15000.00", "USD": "250.00"}[currency]
    quote = post_quote(api, currency, source_amount=amount).json()
    assert quote["direction"] == "send" and quote["total_charged"] == amount
    assert Decimal(quote["rate"]) < Decimal(quote["official_rate"])
    fee, target = Decimal(quote["fee"]), Decimal(quote["target_amount"])
    assert target == ((Decimal(amount) - fee) * Decimal(quote["rate"])).quantize(CENT, "ROUND_UP")
    assert 0 < Decimal(quote["cost_percent"]) < 10


@pytest.mark.parametrize(("body", "field"), [
    ({"source_amount": "100.00", "target_amount": "8000.00"}, "target_amount"),
    ({}, "source_amount"),
    ({"target_amount": "0.00"}, "target_amount"),
    ({"target_amount": "1.001"}, "target_amount"),
    ({"target_amount": "-5"}, "target_amount"),
], ids=["both", "neither", "zero", "three-decimals", "negative"])
def test_quote_needs_exactly_one_valid_amount(api, pricing, body, field):
    """Both amounts, neither, or a bad som amount: a 400 problem naming the field, nothing stored."""
    assert_problem(post_quote(api, "USD", **body), 400, "validation-error", field)
    assert Quote.objects.count() == 0


# Limits and edge amounts -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("currency", ["RUB", "USD"])
def test_send_fixed_limits_to_the_minor_unit(api, pricing, currency):
    """The minimum and maximum are quoted; one minor unit below the minimum or above the maximum is a 422
    amount-out-of-range naming source_amount, and stores nothing."""
    low, high = LIMITS[currency]
    for amount in (low, high):
        assert post_quote(api, currency, source_amount=amount).status_code == 201
    for amount in (low - CENT, high + CENT):
        assert_problem(post_quote(api, currency, source_amount=amount), 422, "amount-out-of-range", "source_amount")
    assert Quote.objects.count() == 2


@pytest.mark.parametrize("currency", ["RUB", "USD"])
def test_receive_fixed_limits_follow_the_amount_limits(api, pricing, currency):
    """Receive-fixed: the som the minimum and the maximum amount give are quoted (their source amounts within the
    limits); a tyiyn less than the minimum gives, or more than the maximum gives, is refused with the range in som,
    naming target_amount."""
    low, high = LIMITS[currency]
    at_low, at_high = send_target(currency, low), send_target(currency, high)
    for som in (at_low, at_high):
        response = post_quote(api, currency, target_amount=som)
        assert response.status_code == 201, response.content
        assert low <= Decimal(response.json()["source_amount"]) <= high
    for som in (at_low - CENT, at_high + CENT):
        body = assert_problem(post_quote(api, currency, target_amount=som), 422, "amount-out-of-range",
                              "target_amount")
        assert "receive between" in body["detail"]
    assert Quote.objects.count() == 2


def test_min_and_max_fee_bound_the_fee(pricing):
    """With a minimum fee of 100 RUB and a maximum of 1000 RUB, the 50 + 1 % fee is lifted to 100 on small amounts
    and capped at 1000 on large ones, in both directions."""
    Corridor.objects.filter(source_currency="RUB", target_currency="KGS").update(min_fee=Decimal("100.00"),
                                                                                 max_fee=Decimal("1000.00"))
    assert quote_price(source_currency="RUB", source_amount=Decimal("1000.00")).fee == Decimal("100.00")
    assert quote_price(source_currency="RUB", source_amount=Decimal("10000.00")).fee == Decimal("150.00")
    assert quote_price(source_currency="RUB", source_amount=Decimal("200000.00")).fee == Decimal("1000.00")
    big = quote_price(source_currency="RUB", target_amount=Decimal("200000.00"))
    assert big.fee == Decimal("1000.00") and big.direction == "receive"
    assert quote_price(source_currency="RUB", source_amount=big.source_amount).target_amount >= Decimal("200000.00")


def test_unknown_or_disabled_corridor_is_refused(api, pricing):
    """A currency we do not offer is a 400; a switched-off corridor a 422 corridor-unavailable (both directions);
    nothing stored."""
    assert_problem(post_quote(api, "EUR", source_amount="100.00"), 400, "validation-error", "source_currency")
    Corridor.objects.filter(source_currency="USD", target_currency="KGS").update(is_active=False)
    # USD→USD is still offered: the refusal points at what the recipient receives, not at the dollars sent.
    for amount in ({"source_amount": "100.00"}, {"target_amount": "8000.00"}):
        assert_problem(post_quote(api, "USD", **amount), 422, "corridor-unavailable", "target_currency")
    Corridor.objects.filter(source_currency="USD").update(is_active=False)
    assert_problem(post_quote(api, "USD", source_amount="100.00"), 422, "corridor-unavailable", "source_currency")
    with pytest.raises(CorridorUnavailable):
        quote_price(source_currency="USD", target_amount=Decimal("8000.00"))
    assert Quote.objects.count() == 0


def test_quotes_use_the_same_rate_as_rate_current(pricing):
    """The quote's one-statement read of the corridor and its rate picks the rate rate_current picks: a manual rate
    typed after today's NBKR rate wins; NBKR's rate for tomorrow does not count yet."""
    today = bishkek_today()
    rates_record(rates=[OfficialRate("USD", Decimal("88.00"), today)], source="NBKR",
                 now=timezone.now() - timedelta(minutes=5))
    rate_record_manual(currency="USD", value=Decimal("88.10"), by="treasurer")
    rates_record(rates=[OfficialRate("USD", Decimal("99.00"), today + timedelta(days=1))], source="NBKR")
    price = quote_price(source_currency="USD", source_amount=Decimal("100.00"))
    assert price.official_rate == rate_current(source_currency="USD").rate == Decimal("88.10")
    assert price.official_rate_date == today


def test_stale_rate_stops_both_directions(api, pricing, settings):
    """With RATE_MAX_AGE_HOURS shorter than the rate's age, both directions answer 503 rate-unavailable."""
    settings.RATE_MAX_AGE_HOURS = 0
    Rate.objects.update(value_date=timezone.localdate() - timedelta(days=1))
    for amount in ({"source_amount": "100.00"}, {"target_amount": "8000.00"}):
        assert_problem(post_quote(api, "USD", **amount), 503, "rate-unavailable")
    assert Quote.objects.count() == 0


# A quote is used once and expires -------------------------------------------------------------------------------

def test_receive_fixed_quote_backs_one_transfer_with_its_exact_amount(api, pricing, stripe_server):
    """A receive-fixed quote funds at its source amount; a second transfer on it is a 409 quote-already-used, and
    after expiry a 422 quote-expired; neither stores anything nor calls Stripe again."""
    quote = post_quote(api, "USD", target_amount="10000.00").json()
    first = api.post("/api/v1/transfers", transfer_body(quote["id"]), format="json", HTTP_IDEMPOTENCY_KEY="a")
    assert first.status_code == 201, first.content
    assert first.json()["funding"]["amount"] == quote["source_amount"]
    second = api.post("/api/v1/transfers", transfer_body(quote["id"]), format="json", HTTP_IDEMPOTENCY_KEY="b")
    assert_problem(second, 409, "quote-already-used", "quote_id")
    other = post_quote(api, "USD", target_amount="10000.00").json()
    Quote.objects.filter(pk=other["id"]).update(expires_at=timezone.now() - timedelta(seconds=1))
    late = api.post("/api/v1/transfers", transfer_body(other["id"]), format="json", HTTP_IDEMPOTENCY_KEY="c")
    assert_problem(late, 422, "quote-expired", "quote_id")
    assert len(stripe_intents()) == 1


def test_expiry_is_server_set_and_bounded(api, pricing, settings):
    """The client cannot choose the expiry: an `expires_at` in the body is ignored; the quote lives
    QUOTE_TTL_SECONDS (bounded 60–3600 s by settings)."""
    before = timezone.now()
    body = {"source_currency": "USD", "target_currency": "KGS", "source_amount": "100.00",
            "expires_at": (before + timedelta(days=30)).isoformat()}
    quote = Quote.objects.get(pk=api.post("/api/v1/quotes", body, format="json").json()["id"])
    ttl = timedelta(seconds=settings.QUOTE_TTL_SECONDS)
    assert before + ttl <= quote.expires_at <= timezone.now() + ttl
    assert 60 <= settings.QUOTE_TTL_SECONDS <= 3600


# The web form ---------------------------------------------------------------------------------------------------

def test_web_form_receive_choice_quotes_the_som_exactly(client, pricing):
    """"They receive" on the sender form: the typed amount is the som the recipient gets; the preview shows the
    total charged and the total cost; continuing stores a receive-fixed quote for exactly that."""
    preview = client.get("/quote-preview", {"direction": "receive", "source_currency": "USD", "source_amount": "8 700"})
    content = preview.content.decode()
    assert "8,700.00" in content and "Total cost to you" in content and "You pay in total" in content
    response = client.post("/", {"direction": "receive", "source_currency": "USD", "source_amount": "8700"})
    assert response.status_code == 302
    quote = Quote.objects.get()
    assert (quote.direction, quote.target_amount) == ("receive", Decimal("8700.00"))
    assert send_target("USD", quote.source_amount) >= Decimal("8700.00") > send_target("USD", quote.source_amount - CENT)


def test_web_form_receive_out_of_range_is_a_message_next_to_the_amount(client, pricing):
    """Too many som for the corridor: the form shows the som range next to the amount and stores nothing."""
    response = client.post("/", {"direction": "receive", "source_currency": "USD", "source_amount": "9000000"})
    assert response.status_code == 200
    assert "receive between" in " ".join(response.context["form"].errors["source_amount"])
    assert Quote.objects.count() == 0


def test_web_form_with_a_stale_rate_says_so_and_stores_nothing(client, pricing, settings):
    """When the rate is too old, the sender form shows why no price can be given (above the form) and stores
    nothing."""
    settings.RATE_MAX_AGE_HOURS = 0
    Rate.objects.update(value_date=timezone.localdate() - timedelta(days=1))
    response = client.post("/", {"direction": "send", "source_currency": "USD", "source_amount": "100"})
    assert response.status_code == 200
    assert "out of date" in " ".join(response.context["form"].non_field_errors())
    assert "out of date" in response.content.decode()
    assert Quote.objects.count() == 0


def test_web_form_send_is_the_default(client, pricing):
    """Without a direction (an old link) the amount is what the sender pays."""
    client.post("/", {"source_currency": "USD", "source_amount": "100"})
    assert Quote.objects.get().direction == "send"


# Rounding properties (docs/ledger.md "Rounding") ------------------------------------------------------------------

cents = st.integers(min_value=1, max_value=10**9).map(lambda n: Decimal(n) / 100)
terms_st = st.builds(
    pricing.Terms,
    margin_bps=st.integers(0, 999),
    fixed_fee=st.integers(0, 50_000).map(lambda n: Decimal(n) / 100),
    percent_fee_bps=st.integers(0, 999),
    min_fee=st.integers(0, 10_000).map(lambda n: Decimal(n) / 100),
    max_fee=st.one_of(st.none(), st.integers(10_000, 1_000_000).map(lambda n: Decimal(n) / 100)),
)
# Official rates of the shape NBKR publishes (4 decimals), from a weak ruble to a strong dollar.
officials = st.integers(min_value=5_000, max_value=2_000_000).map(lambda n: Decimal(n) / 10_000)
PROPERTY = settings(derandomize=True, max_examples=400, deadline=None)


@PROPERTY
@given(amount=cents, official=officials, terms=terms_st)
def test_send_fixed_never_rounds_in_our_favour(amount, official, terms):
    """The fee is never above the published formula (fixed + percent within min/max) and within a minor unit of it;
    the som are never below (amount − fee) × our rate and within a tyiyn of it; the disclosed cost is never below
    the true cost."""
    rate = pricing.our_rate(official=official, margin_bps=terms.margin_bps)
    fee, target = pricing.send_fixed(amount=amount, rate=rate, terms=terms)
    raw = max(terms.fixed_fee + amount * terms.percent_fee_bps / 10000, terms.min_fee)
    if terms.max_fee is not None:
        raw = min(raw, terms.max_fee)
    assert raw - CENT < fee <= raw
    assume(fee < amount)
    exact = (amount - fee) * rate
    assert exact <= target < exact + CENT
    true_cost = (1 - target / (amount * official)) * 100
    assert true_cost <= pricing.cost_percent(source_amount=amount, target_amount=target, official_rate=official) \
        < true_cost + CENT


@PROPERTY
@given(som=cents, official=officials, terms=terms_st)
def test_receive_fixed_agrees_with_send_fixed_to_the_minor_unit(som, official, terms):
    """For any som amount N: the receive-fixed amount S, re-priced send-fixed, gives at least N, and S − one minor
    unit gives less (S is the smallest); the fee is the send-fixed fee of S."""
    rate = pricing.our_rate(official=official, margin_bps=terms.margin_bps)
    assume(rate > 0)
    amount, fee = pricing.receive_fixed(target=som, rate=rate, terms=terms)
    assert fee == pricing.fee_for(amount=amount, terms=terms)
    assert pricing.send_fixed(amount=amount, rate=rate, terms=terms)[1] >= som
    if amount > CENT:
        assert pricing.send_fixed(amount=amount - CENT, rate=rate, terms=terms)[1] < som


@PROPERTY
@given(amount=cents, official=officials, terms=terms_st)
def test_som_never_fall_as_the_amount_rises(amount, official, terms):
    """One more minor unit paid never gives fewer som (what makes the smallest receive-fixed amount well defined)."""
    rate = pricing.our_rate(official=official, margin_bps=terms.margin_bps)
    assert (pricing.send_fixed(amount=amount + CENT, rate=rate, terms=terms)[1]
            >= pricing.send_fixed(amount=amount, rate=rate, terms=terms)[1])


@settings(derandomize=True, max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), currency=st.sampled_from(["RUB", "USD"]))
def test_quotes_agree_both_ways_at_and_around_the_limits(pricing, data, currency):
    """Through quote_price with the seeded corridors: amounts at the limits, one minor unit inside them and anywhere
    between; the receive-fixed quote of a send-fixed quote's som costs at most the same amount, gives exactly the som,
    and its amount re-priced gives at least them; amounts one minor unit outside the limits are refused."""
    low, high = LIMITS[currency]
    amount = data.draw(st.one_of(st.sampled_from([low, low + CENT, high - CENT, high]),
                                 st.integers(int(low * 100), int(high * 100)).map(lambda n: Decimal(n) / 100)))
    send = quote_price(source_currency=currency, source_amount=amount)
    receive = quote_price(source_currency=currency, target_amount=send.target_amount)
    assert receive.target_amount == send.target_amount
    assert low <= receive.source_amount
    assert receive.source_amount <= amount
    assert quote_price(source_currency=currency, source_amount=receive.source_amount).target_amount >= send.target_amount
    for outside in (low - CENT, high + CENT):
        with pytest.raises(AmountOutOfRange):
            quote_price(source_currency=currency, source_amount=outside)


def test_rounding_examples_pinned():
    """Worked examples of docs/ledger.md "Rounding": USD 123.47 at 87.45 less 1 %, fee 1.99 + 1 % = 3.2247 → 3.22;
    som (123.47 − 3.22) × 86.5755 = 10410.70… → 10410.71; 10410.71 som received-fixed cost exactly 123.47 USD."""
    terms = pricing.Terms(100, Decimal("1.99"), 100)
    rate = pricing.our_rate(official=Decimal("87.45"), margin_bps=100)
    assert rate == Decimal("86.57550000")
    fee, som = pricing.send_fixed(amount=Decimal("123.47"), rate=rate, terms=terms)
    assert (fee, som) == (Decimal("3.22"), Decimal("10410.71"))
    assert pricing.receive_fixed(target=som, rate=rate, terms=terms) == (Decimal("123.47"), Decimal("3.22"))
    assert pricing.cost_percent(source_amount=Decimal("123.47"), target_amount=som,
                                official_rate=Decimal("87.45")) == Decimal("3.59")


def test_quote_create_stores_what_quote_price_shows(pricing):
    """quote_create stores the price quote_price shows, for both directions."""
    for kwargs in ({"source_amount": Decimal("250.00")}, {"target_amount": Decimal("20000.00")}):
        price = quote_price(source_currency="USD", **kwargs)
        quote = quote_create(source_currency="USD", **kwargs)
        assert (quote.source_amount, quote.target_amount, quote.fee, quote.rate, quote.direction) == (
            price.source_amount, price.target_amount, price.fee, price.rate, price.direction)
        assert quote.cost_percent == price.cost_percent


# Dollars to the recipient (USDKG on Ethereum) ------------------------------------------------------------------------

def post_dollar_quote(api, currency, **amount):
    body = {"source_currency": currency, "target_currency": "USD", **{k: str(v) for k, v in amount.items()}}
    return api.post("/api/v1/quotes", body, format="json")


def test_rubles_to_dollars_are_priced_at_the_cross_of_the_official_rates(api, pricing):
    """RUB→USD: the official rate is RUB/KGS ÷ USD/KGS (seed 1.0785 ÷ 87.45) rounded up to 8 decimals, our rate that
    less the corridor's margin rounded down, the fee in rubles, the dollars rounded up to the cent; paid as USDKG on
    Ethereum."""
    response = post_dollar_quote(api, "RUB", source_amount="15000.00")
    assert response.status_code == 201, response.content
    body = response.json()
    official = (Decimal("1.0785") / Decimal("87.4500")).quantize(Decimal("0.00000001"), ROUND_UP)
    assert Decimal(body["official_rate"]) == official == Decimal("0.01233277")
    rate = price_math.our_rate(official=official, margin_bps=150)
    assert Decimal(body["rate"]) == rate
    fee = price_math.fee_for(amount=Decimal("15000.00"), terms=price_math.Terms(150, Decimal("50.00"), 100))
    assert Decimal(body["fee"]) == fee == Decimal("200.00")
    assert Decimal(body["target_amount"]) == ((Decimal("15000.00") - fee) * rate).quantize(CENT, ROUND_UP)
    assert (body["target_currency"], body["asset"], body["network"]) == ("USD", "USDKG", "Ethereum")
    assert body["official_rate_date"] is not None


def test_dollars_to_dollars_take_the_fee_only_at_exactly_one(api, pricing):
    """USD→USD: no conversion, rate and official rate exactly 1, no rate date; the recipient gets the amount less the
    fee, to the cent, both ways (receive-fixed finds the smallest amount that gives exactly the dollars asked)."""
    sent = post_dollar_quote(api, "USD", source_amount="100.00").json()
    assert Decimal(sent["rate"]) == Decimal(sent["official_rate"]) == 1
    assert sent["official_rate_date"] is None
    assert Decimal(sent["fee"]) == Decimal("2.99")  # 1.99 + 1 % of 100.00
    assert Decimal(sent["target_amount"]) == Decimal("97.01")
    assert Decimal(sent["cost_percent"]) == Decimal("2.99")
    received = post_dollar_quote(api, "USD", target_amount="97.01").json()
    # 99.99 pays a fee of 2.98 (1.99 + 0.9999 rounded down) and gives the same 97.01: the smallest such amount.
    assert (Decimal(received["source_amount"]), Decimal(received["fee"]), Decimal(received["target_amount"])) == (
        Decimal("99.99"), Decimal("2.98"), Decimal("97.01"))
    assert (received["asset"], received["network"]) == ("USDKG", "Ethereum")


def test_an_unknown_target_currency_is_a_validation_problem_and_stores_nothing(api, pricing):
    """EUR (or anything but KGS and USD) is a 400 naming target_currency; no quote is stored."""
    for target in ("EUR", "USDKG", ""):
        response = api.post("/api/v1/quotes", {"source_currency": "RUB", "source_amount": "1000.00",
                                               "target_currency": target}, format="json")
        assert_problem(response, 400, "validation-error", "target_currency")
    assert Quote.objects.count() == 0


def test_dollar_quotes_pause_with_a_stale_usd_rate_but_dollars_to_dollars_do_not(api, pricing):
    """The cross needs both official rates current; USD→USD needs none."""
    old = timezone.now() - timedelta(days=5)
    Rate.objects.filter(source_currency="USD").update(effective_at=old, value_date=old.date())
    assert_problem(post_dollar_quote(api, "RUB", source_amount="15000.00"), 503, "rate-unavailable")
    assert post_dollar_quote(api, "USD", source_amount="100.00").status_code == 201
