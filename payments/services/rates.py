"""Official rates: where they come from (a RateSource), how each is recorded, and which one a quote may use.

A source's `fetch()` returns OfficialRate(currency, value, value_date) rows. `rates_refresh` (the beat task) records
every new one with its source, value date and fetch time; a failed or malformed fetch records nothing, keeps the
last good rate and raises an operator alert. `rate_current` gives the latest rate in effect and refuses one whose
value date is more than RATE_MAX_AGE_HOURS old (RateUnavailable; quotes apply the same rule in the one statement
that reads a corridor with its rate, payments.services.quotes, and a test keeps the two in agreement). NBKR sets
rates on working days only, so the default (96 h from the start of the value date) carries a Friday rate through a
weekend and one holiday; a longer outage needs a manual rate, which an operator types in admin
(`rate_record_manual`)."""

import logging
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Protocol

from django.conf import settings
from django.db import transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from onchain.api import operator_alert_raise
from payments import pricing
from payments.errors import ManualRateRefused, RateSourceError, RateUnavailable
from payments.models import BISHKEK, SOURCE_CURRENCIES, Corridor, Rate
from payments.providers.nbkr import NbkrRecordedSource, NbkrSource, OfficialRate

log = logging.getLogger(__name__)
ALERT_KIND = "rates"
MANUAL = "manual"
QUOTED = [code for code, _name in SOURCE_CURRENCIES]


class RateSource(Protocol):
    name: str

    def fetch(self) -> list[OfficialRate]: ...


class ManualSource:
    """Rates an operator typed (admin): in effect from now, value date today in Bishkek, recorded with who."""

    name = MANUAL

    def __init__(self, *, rates, by):
        self.rates, self.by = rates, by

    def fetch(self):
        today = timezone.localtime(timezone.now(), BISHKEK).date()
        return [OfficialRate(currency, value, today) for currency, value in self.rates.items()]


def day_start(value_date):
    return datetime.combine(value_date, time.min, tzinfo=BISHKEK)


def rate_source_configured():
    """The source RATES_SOURCE names: `nbkr` (NBKR_RATES_URL), `recorded` (the bundled file as today's, make run),
    `manual` (no automatic fetch)."""
    kind = settings.RATES_SOURCE
    if kind == "nbkr":
        return NbkrSource(url=settings.NBKR_RATES_URL, timeout=settings.NBKR_TIMEOUT_SECONDS)
    if kind == "recorded":
        return NbkrRecordedSource(path=settings.NBKR_RECORDED_FILE,
                                  today=timezone.localtime(timezone.now(), BISHKEK).date())
    return None


def rates_record(*, rates, source, by="", now=None):
    """Record each rate not recorded yet (same source, currency, value date and value): returns the new rows.

    A rate takes effect at the start of its value date, or now if that has passed (so a fetched rate replaces a
    manual one typed earlier that day, and a correction replaces the rate it corrects)."""
    now = now or timezone.now()
    created = []
    with transaction.atomic():
        for r in rates:
            if r.currency not in QUOTED:
                continue
            last = (Rate.objects.filter(source_currency=r.currency, target_currency="KGS", source=source,
                                        value_date=r.value_date).order_by("-id").first())
            if last is not None and last.rate == r.value and source != MANUAL:
                continue
            created.append(Rate.objects.create(
                source_currency=r.currency, target_currency="KGS", rate=r.value, source=source,
                value_date=r.value_date, effective_at=max(day_start(r.value_date), now), fetched_at=now,
                recorded_by=by))
    for rate in created:
        log.info("rate_recorded currency=%s rate=%s source=%s value_date=%s by=%s", rate.source_currency, rate.rate,
                 source, rate.value_date, by or "-")
    return created


def rates_refresh(*, source=None, now=None):
    """Fetch the configured source (or `source`) and record what is new, as fetched `now`. Never raises for the
    source's failures: the last good rate stays in effect and operators get an alert (one open alert per message)."""
    try:
        source = source or rate_source_configured()
        if source is None:
            return []
        rates = source.fetch()
    except RateSourceError as exc:
        name = getattr(source, "name", settings.RATES_SOURCE)
        log.error("rates_refresh_failed source=%s detail=%s", name, exc.detail)
        operator_alert_raise(kind=ALERT_KIND, message=f"{name} rates not refreshed: {exc.detail}")
        return []
    found = {r.currency for r in rates}
    for currency in QUOTED:
        if currency not in found:
            dates = sorted({r.value_date for r in rates})
            operator_alert_raise(kind=ALERT_KIND, message=f"{source.name} rates of {dates[-1]:%d.%m.%Y} have no "
                                                          f"{currency}: the last {currency} rate stays in effect")
    return rates_record(rates=rates, source=source.name, now=now)


def manual_rate_check(*, currency, value):
    """A manual rate must be above zero and within MANUAL_RATE_MAX_DEVIATION of the last rate NBKR itself set (a
    typed 874.5 for 87.45 is refused, whatever the operator confirms). Without an NBKR rate there is nothing to
    compare with, so only the sign is checked."""
    if value is None or value <= 0:
        raise ManualRateRefused(_("A rate must be above zero."), field="rate")
    official = (Rate.objects.filter(source_currency=currency, target_currency="KGS").exclude(source=MANUAL)
                .order_by("-effective_at", "-id").first())
    limit = settings.MANUAL_RATE_MAX_DEVIATION
    if official and abs(value - official.rate) / official.rate > limit:
        raise ManualRateRefused(
            _("%(value)s is more than %(limit)s away from the last official NBKR rate (%(official)s of %(date)s): a "
              "manual rate may differ from it by %(limit)s at most (MANUAL_RATE_MAX_DEVIATION).")
            % {"value": value, "limit": f"{limit:.0%}", "official": official.rate,
               "date": date_format(official.value_date)}, field="rate")


def rate_record_manual(*, currency, value, by):
    """An operator's rate (admin, through the guarded action in payments/guarded_rates.py), in effect from now until
    a newer one is recorded; checked by manual_rate_check."""
    manual_rate_check(currency=currency, value=value)
    return rates_record(rates=ManualSource(rates={currency: value}, by=by).fetch(), source=MANUAL, by=by)[0]


def rates_in_effect(*, source_currency, target_currency="KGS", now):
    """The rates of a pair in effect at `now`, latest first (the currency may be an OuterRef: the rates list reads
    the corridors and their rates in one query)."""
    return (Rate.objects.filter(source_currency=source_currency, target_currency=target_currency, effective_at__lte=now)
            .order_by("-effective_at", "-id"))


def rate_ensure_usable(*, source_currency, target_currency="KGS", value_date, now):
    """RateUnavailable when there is no rate in effect (`value_date` None) or its value date began more than
    RATE_MAX_AGE_HOURS before `now`."""
    if value_date is None:
        raise RateUnavailable(_("No %(source)s/%(target)s rate has been loaded.")
                              % {"source": source_currency, "target": target_currency})
    if now - day_start(value_date) > timedelta(hours=settings.RATE_MAX_AGE_HOURS):
        raise RateUnavailable(
            _("The official %(source)s/%(target)s rate is out of date (last set for %(date)s): new quotes are paused "
              "until a current rate is loaded. Please try again later.")
            % {"source": source_currency, "target": target_currency, "date": date_format(value_date)})


def rate_current(*, source_currency, target_currency="KGS", now=None):
    """The rate in effect now; RateUnavailable when there is none or it is older than RATE_MAX_AGE_HOURS."""
    now = now or timezone.now()
    rate = rates_in_effect(source_currency=source_currency, target_currency=target_currency, now=now).first()
    rate_ensure_usable(source_currency=source_currency, target_currency=target_currency,
                       value_date=rate and rate.value_date, now=now)
    return rate


@dataclass(frozen=True)
class CorridorRate:
    """What `GET /api/v1/rates` shows for one active corridor: our rate (None when the official one is missing or
    stale, with the reason), the official rate in effect and its value date, and the corridor's fee structure."""

    corridor: Corridor
    official_rate: Decimal | None
    official_rate_date: date | None
    effective_at: datetime | None
    rate: Decimal | None
    unavailable_reason: str


def corridor_rates(*, now=None):
    """Every active corridor with its rate in effect `now`, in one query. A corridor whose official rate is missing or
    older than RATE_MAX_AGE_HOURS is listed with no rate of ours and the reason quotes give (rate_ensure_usable), so
    a partner sees why quotes are paused instead of an error for the whole list."""
    now = now or timezone.now()
    # Official rates are against the som: a corridor's source leg, and for a USD target the target's own leg.
    latest = rates_in_effect(source_currency=OuterRef("source_currency"), now=now)
    leg = rates_in_effect(source_currency=OuterRef("target_currency"), now=now)
    corridors = (Corridor.objects.filter(is_active=True).order_by("source_currency", "target_currency")
                 .annotate(official=Subquery(latest.values("rate")[:1]),
                           value_date=Subquery(latest.values("value_date")[:1]),
                           effective_at=Subquery(latest.values("effective_at")[:1]),
                           leg=Subquery(leg.values("rate")[:1]), leg_date=Subquery(leg.values("value_date")[:1]),
                           leg_effective_at=Subquery(leg.values("effective_at")[:1])))
    out = []
    for corridor in corridors:
        rate, reason = None, ""
        official, value_date, effective_at = corridor.official, corridor.value_date, corridor.effective_at
        source, target = corridor.source_currency, corridor.target_currency
        try:
            if source == target:  # no conversion: exactly 1, no rate to be stale
                official, value_date, effective_at = pricing.ONE, None, None
            else:
                rate_ensure_usable(source_currency=source, value_date=value_date, now=now)
                if target != "KGS":
                    rate_ensure_usable(source_currency=target, value_date=corridor.leg_date, now=now)
                    official = pricing.official_cross(source_currency=source, target_currency=target,
                                                      source_kgs=official, target_kgs=corridor.leg)
                    value_date = min(value_date, corridor.leg_date)
                    effective_at = max(effective_at, corridor.leg_effective_at)
            rate = pricing.our_rate(official=official, margin_bps=corridor.margin_bps)
        except RateUnavailable as exc:
            reason = exc.detail
            if target != "KGS" and source != target:
                official = value_date = effective_at = None  # no cross without both legs
        out.append(CorridorRate(corridor, official, value_date, effective_at, rate, reason))
    return out


def kgs_equivalent(*, amount, currency, now=None):
    """`amount` of `currency` in som at the official rate in effect, unrounded (limits and AML thresholds are set in
    som); RateUnavailable when that rate is missing or stale."""
    if currency == "KGS":
        return amount
    return amount * rate_current(source_currency=currency, now=now).rate
