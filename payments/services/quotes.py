"""Pricing: official rate less the corridor margin, fixed + percent fee, firm until expiry."""

from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

from django.conf import settings
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.translation import gettext as _

from onchain.api import float_covers
from payments.errors import AmountOutOfRange, CorridorUnavailable, FloatUnavailable, QuoteExpired, QuoteNotFound, RateUnavailable
from payments.models import Corridor, Quote, Rate

CENT = Decimal("0.01")
BPS = Decimal(10000)


@dataclass(frozen=True)
class Price:
    source_currency: str
    source_amount: Decimal
    target_currency: str
    official_rate: Decimal
    rate: Decimal
    fee: Decimal
    target_amount: Decimal


def rate_latest(*, source_currency, target_currency="KGS"):
    rate = (Rate.objects.filter(source_currency=source_currency, target_currency=target_currency)
            .order_by("-effective_at", "-id").first())
    if rate is None:
        raise RateUnavailable(_("No %(source)s/%(target)s rate has been loaded.")
                              % {"source": source_currency, "target": target_currency})
    return rate


def quote_price(*, source_currency, source_amount, target_currency="KGS"):
    """The price a quote would carry now; nothing is stored."""
    corridor = Corridor.objects.filter(source_currency=source_currency, target_currency=target_currency,
                                       is_active=True).first()
    if corridor is None:
        raise CorridorUnavailable(_("Sending %(source)s to %(target)s is not offered.")
                                  % {"source": source_currency, "target": target_currency},
                                  field="source_currency")
    if not corridor.min_amount <= source_amount <= corridor.max_amount:
        raise AmountOutOfRange(
            _("Send between %(min)s and %(max)s %(currency)s.")
            % {"min": number_format(corridor.min_amount, 2), "max": number_format(corridor.max_amount, 2),
               "currency": source_currency},
            field="source_amount")
    official = rate_latest(source_currency=source_currency, target_currency=target_currency).rate
    rate = (official * (BPS - corridor.margin_bps) / BPS).quantize(Decimal("0.00000001"), ROUND_DOWN)
    fee = (corridor.fixed_fee + source_amount * corridor.percent_fee_bps / BPS).quantize(CENT, ROUND_HALF_UP)
    if fee >= source_amount:
        raise AmountOutOfRange(_("The amount does not cover the fee."), field="source_amount")
    # Rounded down: we never promise a tyiyn we have not priced.
    target = ((source_amount - fee) * rate).quantize(CENT, ROUND_DOWN)
    return Price(source_currency, source_amount, target_currency, official, rate, fee, target)


def quote_create(*, source_currency, source_amount, target_currency="KGS", partner=None):
    price = quote_price(source_currency=source_currency, source_amount=source_amount, target_currency=target_currency)
    # A firm quote is a promise to deliver: refuse it when the settlement float cannot cover it.
    if not float_covers(amount=price.target_amount):
        raise FloatUnavailable(_("We cannot deliver this amount right now: please try a smaller amount or "
                                       "try again later."), field="source_amount")
    return Quote.objects.create(
        partner=partner,
        source_currency=price.source_currency,
        source_amount=price.source_amount,
        target_currency=price.target_currency,
        target_amount=price.target_amount,
        official_rate=price.official_rate,
        rate=price.rate,
        fee=price.fee,
        expires_at=timezone.now() + timedelta(seconds=settings.QUOTE_TTL_SECONDS),
    )


def quote_get_usable(*, quote_id, partner=None, lock=False):
    """The partner's own unexpired quote; another partner's quote is reported as not found."""
    qs = Quote.objects.select_for_update() if lock else Quote.objects
    quote = qs.filter(pk=quote_id, partner=partner).first()
    if quote is None:
        raise QuoteNotFound(_("No such quote."), field="quote_id")
    if quote.expires_at <= timezone.now():
        raise QuoteExpired(_("The quote has expired: ask for a new one."), field="quote_id")
    return quote
