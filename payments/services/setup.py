"""Reference data and accounts that every installation needs (rates, corridors, partners)."""

from datetime import datetime, time
from decimal import Decimal

from django.conf import settings
from django.utils import timezone

from payments.models import Corridor, LimitTier, Partner, Rate
from payments.scopes import scopes_clean
from payments.services.api_keys import api_key_create
from payments.services.limits import LIMIT_TIER_DEFAULTS

# Close to NBKR's official rates in late 2026 (tests; the FX feed is payments/services/rates.py).
SEED_RATES = {"RUB": Decimal("1.0785"), "USD": Decimal("87.4500")}


def corridors_seed():
    for (source, target), defaults in settings.CORRIDOR_DEFAULTS.items():
        Corridor.objects.get_or_create(source_currency=source, target_currency=target, defaults=defaults)
    limit_tiers_seed()


def limit_tiers_seed():
    for currency, tiers in LIMIT_TIER_DEFAULTS.items():
        for tier, (per_transfer, per_day, per_30_days) in tiers.items():
            LimitTier.objects.get_or_create(source_currency=currency, tier=tier, defaults={
                "per_transfer": Decimal(per_transfer), "per_day": Decimal(per_day),
                "per_30_days": Decimal(per_30_days)})


def rates_seed(*, rates=None, source="seed"):
    today = timezone.make_aware(datetime.combine(timezone.localdate(), time.min))
    for currency, rate in (rates or SEED_RATES).items():
        Rate.objects.get_or_create(source_currency=currency, effective_at=today, source=source,
                                   defaults={"rate": rate, "value_date": today.date(), "fetched_at": timezone.now()})


def partner_create(*, name, scopes=None, livemode=True):
    """Returns (partner, raw API key). The key is shown once; only its hash is stored. `scopes` None: the defaults
    (payments/scopes.py); an unknown scope is refused before anything is stored."""
    scopes = scopes_clean(scopes)  # raises UnknownScopes before the partner is created
    partner, _ = Partner.objects.get_or_create(name=name)
    _, key = api_key_create(partner=partner, scopes=scopes, livemode=livemode)
    return partner, key
