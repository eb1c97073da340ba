"""Quotes: send-fixed (the sender chooses what they pay) or receive-fixed (the recipient gets exactly N som), at the
official rate less the corridor's margin, with its fee; firm until a server-set expiry, used by one transfer.
The arithmetic is payments/pricing.py (docs/ledger.md "Rounding")."""

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from functools import cache

from django.conf import settings
from django.db import connection
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.translation import gettext as _

from onchain.api import float_covers
from payments import pricing
from payments.assets import asset_for
from payments.errors import (
    AmountOutOfRange,
    CorridorUnavailable,
    FloatUnavailable,
    QuoteExpired,
    QuoteNotFound,
    QuoteRequestInvalid,
)
from payments.models import Corridor, Quote, Rate
from payments.services.rates import rate_ensure_usable

SEND, RECEIVE = "send", "receive"


@dataclass(frozen=True)
class Price:
    source_currency: str
    source_amount: Decimal
    target_currency: str
    official_rate: Decimal
    rate: Decimal
    fee: Decimal
    target_amount: Decimal
    direction: str = SEND
    official_rate_date: date | None = None

    @property
    def total_charged(self):
        return self.source_amount

    @property
    def asset(self):
        return asset_for(self.target_currency)

    @property
    def cost_percent(self):
        return pricing.cost_percent(source_amount=self.source_amount, target_amount=self.target_amount,
                                    official_rate=self.official_rate)


@dataclass(frozen=True)
class PricedCorridor:
    """An active corridor's prices with the official rate in effect (None when no rate has been recorded)."""

    source_currency: str
    target_currency: str
    terms: pricing.Terms
    min_amount: Decimal
    max_amount: Decimal
    official_rate: Decimal | None
    official_rate_date: date | None


def _dec(text, places):
    return None if text is None else Decimal(text).quantize(Decimal(1).scaleb(-places))


@cache
def _corridor_sql():
    corridor, rate = Corridor._meta.db_table, Rate._meta.db_table  # our own table names, never input

    def latest(currency):  # the NBKR rate (against the som) of `currency` in effect at the parameter
        return (f"FROM {rate} r WHERE r.source_currency = {currency} AND r.target_currency = 'KGS' "
                f"AND r.effective_at <= %s ORDER BY r.effective_at DESC, r.id DESC LIMIT 1")

    # The target's own rate is read only for a cross (a target other than the som and the source): a KGS corridor
    # pays nothing for it.
    cross = "c.target_currency <> 'KGS' AND c.target_currency <> c.source_currency"
    return (f"SELECT c.margin_bps, CAST(c.fixed_fee AS TEXT), c.percent_fee_bps, CAST(c.min_fee AS TEXT), "  # noqa: S608
            f"CAST(c.max_fee AS TEXT), CAST(c.min_amount AS TEXT), CAST(c.max_amount AS TEXT), "
            f"(SELECT CAST(r.rate AS TEXT) {latest('c.source_currency')}), "
            f"(SELECT CAST(r.value_date AS TEXT) {latest('c.source_currency')}), "
            f"CASE WHEN {cross} THEN (SELECT CAST(r.rate AS TEXT) {latest('c.target_currency')}) END, "
            f"CASE WHEN {cross} THEN (SELECT CAST(r.value_date AS TEXT) {latest('c.target_currency')}) END "
            f"FROM {corridor} c WHERE c.source_currency = %s AND c.target_currency = %s AND c.is_active")


def _iso_date(text):
    return date.fromisoformat(text[:10]) if text else None


def _corridor_with_rate(source_currency, target_currency, now):
    """The active corridor with the official rate in effect and its value date, in one statement. Every quote reads
    them, so this is SQL written once rather than an ORM query with subqueries compiled per quote (three times
    the CPU; `make bench-quotes`). The same statement runs on PostgreSQL and SQLite: decimals and dates are read as
    text, so no float ever carries money.

    Into KGS the official rate is the source's NBKR rate; into USD from RUB it is the cross of the two NBKR rates
    (pricing.official_cross), usable only while both are (the older value date is the quote's); USD into USD needs
    no rate at all (exactly 1, value date None)."""
    at = connection.ops.adapt_datetimefield_value(now)
    with connection.cursor() as cursor:
        cursor.execute(_corridor_sql(), [at, at, at, at, source_currency, target_currency])
        row = cursor.fetchone()
    if row is None:
        raise CorridorUnavailable(_("Sending %(source)s to %(target)s is not offered.")
                                  % {"source": source_currency, "target": target_currency},
                                  field="target_currency" if _source_offered(source_currency) else "source_currency")
    margin, fixed, percent, min_fee, max_fee, min_amount, max_amount, official, value_date, leg, leg_date = row
    value_date, leg_date = _iso_date(value_date), _iso_date(leg_date)
    if source_currency == target_currency:
        official, value_date = pricing.ONE, None
    else:
        rate_ensure_usable(source_currency=source_currency, value_date=value_date, now=now)
        official = _dec(official, 8)
        if target_currency != "KGS":
            rate_ensure_usable(source_currency=target_currency, value_date=leg_date, now=now)
            official = pricing.official_cross(source_currency=source_currency, target_currency=target_currency,
                                              source_kgs=official, target_kgs=_dec(leg, 8))
            value_date = min(value_date, leg_date)
    return PricedCorridor(
        source_currency, target_currency,
        pricing.Terms(int(margin), _dec(fixed, 2), int(percent), _dec(min_fee, 2), _dec(max_fee, 2)),
        _dec(min_amount, 2), _dec(max_amount, 2), official, value_date)


def _source_offered(source_currency):
    """Whether any active corridor takes this source currency (so a refusal names the target as the wrong part)."""
    return Corridor.objects.filter(source_currency=source_currency, is_active=True).exists()


def _out_of_range(corridor, *, rate, terms, field):
    if field == "target_amount":
        low = pricing.send_fixed(amount=corridor.min_amount, rate=rate, terms=terms)[1]
        high = pricing.send_fixed(amount=corridor.max_amount, rate=rate, terms=terms)[1]
        return AmountOutOfRange(_("The recipient can receive between %(min)s and %(max)s %(currency)s.")
                                % {"min": number_format(low, 2), "max": number_format(high, 2),
                                   "currency": corridor.target_currency}, field=field)
    return AmountOutOfRange(
        _("Send between %(min)s and %(max)s %(currency)s.")
        % {"min": number_format(corridor.min_amount, 2), "max": number_format(corridor.max_amount, 2),
           "currency": corridor.source_currency}, field=field)


def quote_price(*, source_currency, source_amount=None, target_amount=None, target_currency="KGS"):
    """The price a quote would carry now, for exactly one of `source_amount` (send-fixed) and `target_amount`
    (receive-fixed); nothing is stored."""
    if (source_amount is None) == (target_amount is None):
        raise QuoteRequestInvalid(_("Give either the amount you send or the amount the recipient receives, not both."),
                                  field="source_amount")
    corridor = _corridor_with_rate(source_currency, target_currency, timezone.now())
    terms = corridor.terms
    rate = pricing.our_rate(official=corridor.official_rate, margin_bps=terms.margin_bps)
    if source_amount is not None:
        direction, field = SEND, "source_amount"
        if not corridor.min_amount <= source_amount <= corridor.max_amount:
            raise _out_of_range(corridor, rate=rate, terms=terms, field=field)
        fee, target = pricing.send_fixed(amount=source_amount, rate=rate, terms=terms)
    else:
        # The som the limits give bound what may be received; the amount is the smallest that gives the som, and
        # never below the corridor's minimum (the fee's rounding can let an amount just under it give the same som).
        direction, field, target = RECEIVE, "target_amount", target_amount
        low = pricing.send_fixed(amount=corridor.min_amount, rate=rate, terms=terms)[1]
        high = pricing.send_fixed(amount=corridor.max_amount, rate=rate, terms=terms)[1]
        if not low <= target_amount <= high:
            raise _out_of_range(corridor, rate=rate, terms=terms, field=field)
        source_amount, fee = pricing.receive_fixed(target=target_amount, rate=rate, terms=terms)
        if source_amount < corridor.min_amount:
            source_amount = corridor.min_amount
            fee = pricing.fee_for(amount=source_amount, terms=terms)
    if fee >= source_amount or target <= 0:
        raise AmountOutOfRange(_("The amount does not cover the fee."), field=field)
    return Price(source_currency, source_amount, target_currency, corridor.official_rate, rate, fee, target,
                 direction, corridor.official_rate_date)


def quote_create(*, source_currency, source_amount=None, target_amount=None, target_currency="KGS", partner=None,
                 livemode=True):
    """`livemode` False: a sandbox quote (test key), priced as a live one but never checked against the float."""
    price = quote_price(source_currency=source_currency, source_amount=source_amount, target_amount=target_amount,
                        target_currency=target_currency)
    # A firm quote is a promise to deliver: refuse it when the settlement float cannot cover it.
    if livemode and not float_covers(amount=price.target_amount, symbol=asset_for(price.target_currency).symbol):
        raise FloatUnavailable(_("We cannot deliver this amount right now: please try a smaller amount or "
                                 "try again later."),
                               field="source_amount" if price.direction == SEND else "target_amount")
    return Quote.objects.create(
        partner=partner,
        source_currency=price.source_currency,
        source_amount=price.source_amount,
        target_currency=price.target_currency,
        target_amount=price.target_amount,
        official_rate=price.official_rate,
        official_rate_date=price.official_rate_date,
        rate=price.rate,
        fee=price.fee,
        direction=price.direction,
        livemode=livemode,
        expires_at=timezone.now() + timedelta(seconds=settings.QUOTE_TTL_SECONDS),
    )


def quote_get_usable(*, quote_id, partner=None, lock=False, livemode=True, annotate=None):
    """The partner's own unexpired quote in the same mode; another partner's quote, or a test quote for a live
    transfer (and the reverse), is reported as not found. `lock`: its row locked until the transaction ends;
    `annotate`: expressions read with it (in the same statement)."""
    qs = Quote.objects.select_for_update(of=("self",)) if lock else Quote.objects
    quote = qs.filter(pk=quote_id, partner=partner, livemode=livemode).annotate(**(annotate or {})).first()
    if quote is None:
        raise QuoteNotFound(_("No such quote."), field="quote_id")
    if quote.expires_at <= timezone.now():
        raise QuoteExpired(_("The quote has expired: ask for a new one."), field="quote_id")
    return quote


def quote_target_currency(*, quote_id, partner=None):
    """What a quote pays the recipient in (KGS or USD), or KGS for a quote that does not exist (the page says that)."""
    return (Quote.objects.filter(pk=quote_id, partner=partner).values_list("target_currency", flat=True).first()
            or "KGS")
