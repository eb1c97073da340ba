"""Limits and KYC tiers (docs/compliance.md, "Limits and KYC tiers").

Every transfer reserves its amount against each of its sender's identities (phone, email, ID document once given,
and the card once known) at creation, in its corridor's currency. Limits are per transfer, per day (the last 24 hours)
and per 30 days (the last 30 × 24 hours), set per corridor and KYC tier in `LimitTier` (admin). The highest tier's
limits are the hard maximum: a transfer over them is refused and nothing is created. A transfer within the maximum
but above the sender's own tier is created, and held at screening (`limits_check`) saying what the sender must provide.

Race-free: the identity rows are locked (an upsert that takes the row lock, in a fixed order) before the sums are
read and the reservation is inserted, in the creating transaction; concurrent transfers of one identity count one
after the other. A reservation counts while its transfer is live; cancelled, expired, refunded and charged-back
transfers release it (derived from the status, so no path can forget).
"""

import hashlib
import logging
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import Q, Sum
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.formats import number_format
from django.utils.translation import gettext as _

from common.db import insert_unless_taken
from payments.errors import KycIncomplete, LimitExceeded
from payments.models import MINOR_DIGITS, LimitReservation, LimitTier, SenderProfile, Transfer, from_minor
from payments.services.fraud import normalise

log = logging.getLogger(__name__)
S = Transfer.Status
CLEAR, HOLD = "clear", "hold"  # screening's decisions (payments/services/screening.py)
DAY, MONTH = timedelta(days=1), timedelta(days=30)
# A reservation stops counting once its transfer ends without the money having gone out (nor being owed back).
RELEASED = (S.CANCELLED, S.EXPIRED, S.REFUNDED, S.CHARGED_BACK)
# What a sender provides to reach each tier (hold reasons; operators read them, docs/compliance.md).
REQUIREMENT = {LimitTier.Tier.ID_DOCUMENT: "ID document", LimitTier.Tier.PROOF_OF_FUNDS: "proof of funds"}
WINDOW_WORDS = {"per_transfer": "per transfer", "per_day": "per day", "per_30_days": "per 30 days"}

# KYC tiers' limits per corridor: (per transfer, per day, per 30 days) in the corridor's currency; the highest tier is
# the hard maximum. The 0011_limits_kyc migration seeds the same into LimitTier, where operators change them (admin);
# a corridor with no LimitTier rows at all uses these (never unlimited by accident). docs/compliance.md.
LIMIT_TIER_DEFAULTS = {
    "RUB": {0: ("75000.00", "100000.00", "150000.00"), 1: ("300000.00", "600000.00", "1500000.00"),
            2: ("500000.00", "1000000.00", "5000000.00")},
    "USD": {0: ("850.00", "850.00", "1700.00"), 1: ("3500.00", "7000.00", "17000.00"),
            2: ("5000.00", "12000.00", "60000.00")},
}

LOCK = ('INSERT INTO "payments_limitidentity" ("kind", "key") VALUES %s ON CONFLICT ("kind", "key") '
        'DO UPDATE SET "kind" = EXCLUDED."kind"')


@dataclass(frozen=True)
class Outcome:
    decision: str
    reason: str = ""


# Identities -------------------------------------------------------------------------------------------------------

def identity_key(kind, value):
    """sha256 of the normalised identity (the reservations never hold a phone, an email or a card in clear)."""
    return hashlib.sha256(f"{kind}:{normalise(kind, value)}".encode()).hexdigest()


def document_hash(*, id_type, country, number):
    """A keyed hash of type + issuing country + number (spaces and dashes dropped, upper-case): the same document
    typed twice counts as one; the number itself is never stored."""
    plain = "".join(ch for ch in number.upper() if ch.isalnum())
    return salted_hmac("payments.limits.document", f"{id_type}:{country.upper()}:{plain}",
                       algorithm="sha256").hexdigest()


def sender_profile_get(*, phone, email):
    """The sender's profile (created at tier 0 the first time they send)."""
    phone, email = normalise("phone", phone), normalise("email", email)
    profile = SenderProfile.objects.filter(phone=phone, email=email).first()
    if profile is None:
        # Most creations are a first-time sender: one INSERT … ON CONFLICT DO NOTHING (get_or_create also wraps it in
        # a savepoint). A concurrent first transfer of the same sender inserted it meanwhile: read theirs.
        profile = SenderProfile(phone=phone, email=email)
        if not insert_unless_taken(profile):
            profile = SenderProfile.objects.get(phone=phone, email=email)
    return profile


def _identities(transfer, profile, *, card_fingerprint=None):
    pairs = [("phone", identity_key("phone", transfer.sender_phone)),
             ("email", identity_key("email", transfer.sender_email))]
    if profile.id_number_hash:
        pairs.append(("document", profile.id_number_hash))
    card = card_fingerprint or transfer.card_fingerprint
    if card:
        pairs.append(("card", identity_key("card", card)))
    return pairs


# Configuration ----------------------------------------------------------------------------------------------------

def tier_limits(currency):
    """{tier: {"per_transfer": …, "per_day": …, "per_30_days": …}} of one corridor, in minor units: its LimitTier
    rows, or LIMIT_TIER_DEFAULTS when it has none."""
    digits = MINOR_DIGITS[currency]
    rows = {row.tier: [getattr(row, name) for name in WINDOW_WORDS]
            for row in LimitTier.objects.filter(source_currency=currency)}
    if not rows:
        rows = {tier: [Decimal(v) for v in values] for tier, values in LIMIT_TIER_DEFAULTS.get(currency, {}).items()}
    return {tier: {name: int(value.scaleb(digits)) for name, value in zip(WINDOW_WORDS, values, strict=True)}
            for tier, values in sorted(rows.items())}


def _money(minor, currency, *, localised=True):
    """For the sender in their language (`75 000,00 RUB`); for operators' hold reasons, one spelling
    (`75,000.00 RUB`)."""
    amount = from_minor(minor, currency)
    if not localised:
        return f"{amount:,.{MINOR_DIGITS[currency]}f} {currency}"
    return f"{number_format(amount, decimal_pos=MINOR_DIGITS[currency], force_grouping=True)} {currency}"


# Usage ------------------------------------------------------------------------------------------------------------

def _usage(pairs, *, currency, now, exclude_transfer=None):
    """{(kind, key): (last 24 h, last 30 days)} of live reservations, in minor units (not counting
    `exclude_transfer`'s own)."""
    match = Q()
    for kind, key in pairs:
        match |= Q(kind=kind, key=key)
    rows = (LimitReservation.objects.filter(match, currency=currency, created_at__gt=now - MONTH)
            .exclude(transfer__status__in=RELEASED).exclude(transfer_id=exclude_transfer).values("kind", "key")
            .annotate(day=Sum("amount_minor", filter=Q(created_at__gt=now - DAY)), month=Sum("amount_minor")))
    usage = {pair: (0, 0) for pair in pairs}
    for row in rows:
        usage[(row["kind"], row["key"])] = (row["day"] or 0, row["month"] or 0)
    return usage


def _lock(pairs):
    """Take each identity's row lock (created on first use) in one statement, rows in a fixed order so two transfers
    never deadlock."""
    rows = sorted(set(pairs))
    with connection.cursor() as cursor:
        cursor.execute(LOCK % ", ".join(["(%s, %s)"] * len(rows)), [v for row in rows for v in row])


def _first_exceeded(limits, *, amount, usage):
    """The first limit `amount` would exceed on top of `usage` (per transfer, per day, per 30 days), or None."""
    day = max((d for d, _m in usage.values()), default=0)
    month = max((m for _d, m in usage.values()), default=0)
    for name, used in (("per_transfer", 0), ("per_day", day), ("per_30_days", month)):
        if used + amount > limits[name]:
            return name, used
    return None


# Reservation at creation -----------------------------------------------------------------------------------------

def limits_reserve(*, transfer, now=None):
    """Count a new transfer against its sender's identities, or refuse it (LimitExceeded, 422) when it would go over
    the corridor's hard maximum (its highest tier's limits). Runs inside the creating transaction: a refusal rolls the
    transfer back. A corridor with no limits configured counts but limits nothing."""
    now = now or timezone.now()
    currency = transfer.quote.source_currency
    amount = transfer.source_minor
    with transaction.atomic(savepoint=False):  # the creating transaction: a refusal rolls it all back
        profile = sender_profile_get(phone=transfer.sender_phone, email=transfer.sender_email)
        pairs = _identities(transfer, profile)
        _lock(pairs)
        tiers = tier_limits(currency)
        if tiers:
            hard = tiers[max(tiers)]
            exceeded = _first_exceeded(hard, amount=amount, usage=_usage(pairs, currency=currency, now=now))
            if exceeded:
                _refuse(exceeded, limits=hard, currency=currency, transfer=transfer)
        LimitReservation.objects.bulk_create([
            LimitReservation(transfer=transfer, kind=kind, key=key, currency=currency, amount_minor=amount,
                             created_at=now) for kind, key in pairs])


def limits_reserve_card(*, transfer, card_fingerprint, now=None):
    """At the pay page, once the card is known: count the transfer against the card too (the card's reservation moves
    to the new card when another card is tried), or refuse the card (LimitExceeded beside the card field)."""
    now = now or timezone.now()
    currency = transfer.quote.source_currency
    key = identity_key("card", card_fingerprint)
    with transaction.atomic():  # the pay page runs outside a transaction: this one holds the card's lock
        _lock([("card", key)])
        LimitReservation.objects.filter(transfer=transfer, kind="card").exclude(key=key).delete()
        if LimitReservation.objects.filter(transfer=transfer, kind="card", key=key).exists():
            return
        tiers = tier_limits(currency)
        if tiers:
            hard = tiers[max(tiers)]
            exceeded = _first_exceeded(hard, amount=transfer.source_minor,
                                       usage=_usage([("card", key)], currency=currency, now=now))
            if exceeded:
                _refuse(exceeded, limits=hard, currency=currency, transfer=transfer, field="card")
        LimitReservation.objects.create(transfer=transfer, kind="card", key=key, currency=currency,
                                        amount_minor=transfer.source_minor, created_at=now)


def _refuse(exceeded, *, limits, currency, transfer, field="amount"):
    name, used = exceeded
    log.warning("transfer_limit_exceeded transfer_id=%s window=%s currency=%s", transfer.id, name, currency)
    limit = _money(limits[name], currency)
    if name == "per_transfer":
        detail = _("The most one transfer can send is %(limit)s.") % {"limit": limit}
    else:
        room = _money(max(limits[name] - used, 0), currency)
        detail = (_("This amount would go over the limit of %(limit)s per day: you can send up to %(room)s more "
                    "today.") if name == "per_day" else
                  _("This amount would go over the limit of %(limit)s per 30 days: you can send up to %(room)s more "
                    "now.")) % {"limit": limit, "room": room}
    raise LimitExceeded(detail, field=field)


# The tier check at screening --------------------------------------------------------------------------------------

def limits_check(*, transfer, now=None):
    """CLEAR when the sender's KYC tier covers this transfer (its own amount, and the sender's live reservations of
    the last day and 30 days, this one included, by each identity); otherwise HOLD saying exactly what is needed,
    e.g. "ID document required above 75,000.00 RUB per transfer (sender is at tier 0)". Read-only."""
    return limits_check_many(transfers=[transfer], now=now)[0]


def limits_check_many(*, transfers, now=None):
    """limits_check of each transfer, in order, with one read of each table for all of them (screening a batch):
    the same tiers, profiles and live reservations each one would read alone."""
    now = now or timezone.now()
    tiers_of = {currency: tier_limits(currency) for currency in {t.quote.source_currency for t in transfers}}
    checked = [t for t in transfers if tiers_of[t.quote.source_currency]]
    senders = {(normalise("phone", t.sender_phone), normalise("email", t.sender_email)) for t in checked}
    # phone × email covers every pair asked for; the dict keeps exactly those pairs' rows (one per sender: unique)
    found = SenderProfile.objects.filter(phone__in=sorted({p for p, _e in senders}),
                                         email__in=sorted({e for _p, e in senders})) if senders else ()
    profiles = {(p.phone, p.email): p for p in found}
    pairs_of = {}
    for t in checked:
        phone, email = normalise("phone", t.sender_phone), normalise("email", t.sender_email)
        # read only: a sender never profiled is at tier 0
        profile = profiles.get((phone, email)) or SenderProfile(phone=phone, email=email)
        pairs_of[t.pk] = (profile, _identities(t, profile))
    usage_of = _usage_many([(t.pk, t.quote.source_currency, pairs_of[t.pk][1]) for t in checked], now=now)
    outcomes = []
    for t in transfers:
        tiers = tiers_of[t.quote.source_currency]
        if not tiers:
            outcomes.append(Outcome(CLEAR))
            continue
        outcomes.append(_tier_outcome(t, tiers=tiers, profile=pairs_of[t.pk][0], own=usage_of[t.pk]))
    return outcomes


def _usage_many(items, *, now):
    """_usage of each (transfer id, currency, pairs), not counting the transfer's own reservations: one query per
    currency, grouped by transfer too so each one's own share is left out exactly."""
    out = {}
    for currency in {c for _pk, c, _pairs in items}:
        mine = [(pk, pairs) for pk, c, pairs in items if c == currency]
        keys = {}
        for kind, key in {p for _pk, pairs in mine for p in pairs}:
            keys.setdefault(kind, set()).add(key)
        match = Q()
        for kind, kind_keys in sorted(keys.items()):
            match |= Q(kind=kind, key__in=sorted(kind_keys))
        if not keys:  # no identity at all: nothing counts (an empty Q would match every row)
            out.update({pk: {} for pk, _pairs in mine})
            continue
        rows = (LimitReservation.objects.filter(match, currency=currency, created_at__gt=now - MONTH)
                .exclude(transfer__status__in=RELEASED).values("kind", "key", "transfer_id")
                .annotate(day=Sum("amount_minor", filter=Q(created_at__gt=now - DAY)), month=Sum("amount_minor")))
        by_pair = {}
        for row in rows:
            by_pair.setdefault((row["kind"], row["key"]), []).append((row["transfer_id"], row["day"] or 0,
                                                                      row["month"] or 0))
        for pk, pairs in mine:
            usage = {}
            for pair in pairs:
                counted = [(d, m) for transfer_id, d, m in by_pair.get(pair, ()) if transfer_id != pk]
                usage[pair] = (sum(d for d, _m in counted), sum(m for _d, m in counted))
            out[pk] = usage
    return out


def _tier_outcome(transfer, *, tiers, profile, own):
    currency = transfer.quote.source_currency
    current = profile.tier
    if current not in tiers or not _first_exceeded(tiers[current], amount=transfer.source_minor, usage=own):
        return Outcome(CLEAR)
    name, _used = _first_exceeded(tiers[current], amount=transfer.source_minor, usage=own)
    needed = next((t for t in sorted(tiers) if t > current
                   and not _first_exceeded(tiers[t], amount=transfer.source_minor, usage=own)), None)
    above = f"{_money(tiers[current][name], currency, localised=False)} {WINDOW_WORDS[name]}"
    if needed is None:
        reason = f"over the maximum limits: above {above} (sender is at tier {current})"
    else:
        steps = [REQUIREMENT[t] for t in sorted(tiers) if current < t <= needed and t in REQUIREMENT]
        reason = f"{' and '.join(steps)} required above {above} (sender is at tier {current})"
        reason = reason[0].upper() + reason[1:]
    log.info("transfer_limits_hold transfer_id=%s tier=%s needed=%s window=%s", transfer.id, current, needed, name)
    return Outcome(HOLD, reason)


# Operators record and verify documents ----------------------------------------------------------------------------

def sender_document_record(*, profile, id_type, country, number, expiry, by):
    """An operator types in the sender's ID document (from a scan the sender sent): kept as a keyed hash and the
    last four characters. Recording it does not verify it (sender_document_verify does, with a reason)."""
    digits = "".join(ch for ch in number.upper() if ch.isalnum())
    profile.id_type, profile.id_country, profile.id_expiry = id_type, country.upper(), expiry
    profile.id_number_hash = document_hash(id_type=id_type, country=country, number=number)
    profile.id_number_last4 = digits[-4:]
    profile.id_recorded_by, profile.id_recorded_at = by[:150], timezone.now()
    profile.id_verified_by, profile.id_verified_at = "", None  # a new document is verified afresh
    profile.save()
    return profile


def sender_document_verify(*, profile, by):
    if not profile.id_number_hash:
        raise KycIncomplete("No ID document is recorded for this sender.")
    if profile.id_expiry and profile.id_expiry < timezone.localdate():
        raise KycIncomplete("The recorded ID document has expired.")
    profile.id_verified_by, profile.id_verified_at = by[:150], timezone.now()
    profile.save(update_fields=["id_verified_by", "id_verified_at"])
    return profile


def sender_funds_verify(*, profile, by):
    if not profile.funds_reference:
        raise KycIncomplete("No proof of funds is recorded for this sender.")
    if not profile.id_valid:
        raise KycIncomplete("Verify a valid ID document first (tier 1 comes before tier 2).")
    profile.funds_verified_by, profile.funds_verified_at = by[:150], timezone.now()
    profile.save(update_fields=["funds_verified_by", "funds_verified_at"])
    return profile


def sender_funds_record(*, profile, reference, by):
    """An operator records where the sender's proof of funds is kept; verified afresh (sender_funds_verify)."""
    profile.funds_reference, profile.funds_recorded_by = reference[:200], by[:150]
    profile.funds_verified_by, profile.funds_verified_at = "", None
    profile.save()
    return profile
