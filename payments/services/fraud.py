"""Card fraud controls: frozen identities, velocity limits and payout delays (docs/architecture.md, "Card funding").

An identity is a (kind, value) pair, normalised here: the sender's email (lower-case) and phone (E.164, as stored),
the recipient wallet (lower-case), the card (Stripe's fingerprint) and, at the pay page, the client's IP address.
"""

import hashlib
import ipaddress
import logging
import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, Q, Value
from django.utils import timezone
from django.utils.translation import gettext as _

from payments.errors import RateUnavailable, VelocityLimited
from payments.models import Freeze, PayoutPartner, Transfer, VelocityCounter
from payments.services.rates import kgs_equivalent

log = logging.getLogger(__name__)


GMAIL = {"gmail.com", "googlemail.com"}


def normalise(kind, value):
    """One spelling per identity, so a variant does not slip past a freeze or a counter: an email without its
    `+tag` (and, at Gmail, without dots in the local part), lower-case; a wallet lower-case; an IPv6 client by its
    /64 (one subscriber's block); phones are already E.164."""
    value = (value or "").strip()
    if kind == "email":
        local, _, domain = value.lower().rpartition("@")
        local = local.split("+", 1)[0]
        if domain in GMAIL:
            local, domain = local.replace(".", ""), "gmail.com"
        return f"{local}@{domain}" if local else value.lower()
    if kind == "wallet":
        return value.lower()
    if kind == "ip":
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            return value
        return str(ipaddress.ip_network(f"{address}/64", strict=False)) if address.version == 6 else str(address)
    return value


def is_settlement_address(address):
    """True for a payout partner's settlement address (payments/services/payout_partners.py)."""
    return PayoutPartner.objects.filter(settlement_address__iexact=address).exists()


def settlement_addresses_among(addresses):
    """Those of `addresses` that are a payout partner's settlement address, upper-cased (one query for many)."""
    wanted = {a for a in addresses if a}
    if not wanted:
        return set()
    match = Q()
    for address in wanted:
        match |= Q(settlement_address__iexact=address)
    found = {a.upper() for a in PayoutPartner.objects.filter(match).values_list("settlement_address", flat=True)}
    return {a.upper() for a in wanted} & found


def transfer_identities(transfer, *, card_fingerprint=None, settlement=None):
    """The sender's, the recipient wallet's and (when known) the card's identities of a transfer. `settlement`: the
    settlement addresses among a batch's wallets (settlement_addresses_among), read once for all of them."""
    wallet = transfer.recipient_wallet
    if wallet and (wallet.upper() in settlement if settlement is not None else is_settlement_address(wallet)):
        wallet = ""  # a payout partner's address pays many people: never frozen or counted as one recipient's
    pairs = [("email", transfer.sender_email), ("phone", transfer.sender_phone), ("wallet", wallet),
             ("card", card_fingerprint or transfer.card_fingerprint)]
    return [(kind, normalise(kind, value)) for kind, value in pairs if value]


# Freezes -----------------------------------------------------------------------------------------

def _freeze_match(pairs):
    match = Q()
    for kind, value in pairs:
        if kind in Freeze.Kind.values and value:
            match |= Q(kind=kind, value=normalise(kind, value))
    return match


def identities_frozen(pairs):
    """The active freezes among `pairs` (empty if none is frozen)."""
    match = _freeze_match(pairs)
    return list(Freeze.objects.filter(match, lifted_at__isnull=True).order_by("pk")) if match else []


def frozen_exists(pairs):
    """Whether any of `pairs` is frozen, as an expression read with another statement (identities_frozen then names
    them, only when one is)."""
    match = _freeze_match(pairs)
    return Exists(Freeze.objects.filter(match, lifted_at__isnull=True)) if match else Value(False)


def settlement_address_exists(address):
    """is_settlement_address as an expression read with another statement."""
    return Exists(PayoutPartner.objects.filter(settlement_address__iexact=address))


def identities_frozen_many(pair_lists):
    """identities_frozen of each list of pairs, in order, with one query for all of them."""
    wanted = [{(kind, normalise(kind, value)) for kind, value in pairs if kind in Freeze.Kind.values and value}
              for pairs in pair_lists]
    by_kind = {}
    for kind, value in set().union(*wanted):
        by_kind.setdefault(kind, set()).add(value)
    if not by_kind:
        return [[] for _ in wanted]
    match = Q()
    for kind, values in by_kind.items():
        match |= Q(kind=kind, value__in=sorted(values))
    freezes = list(Freeze.objects.filter(match, lifted_at__isnull=True).order_by("pk"))
    return [[f for f in freezes if (f.kind, f.value) in pairs] for pairs in wanted]


def frozen_reason(freezes):
    """For the transfer's failure reason, which the sender may see: says that, not which identity (no tipping off)."""
    return "refused by our risk checks (frozen identity)" if freezes else ""


def frozen_detail(freezes):
    """For logs and operator alerts: which identities, and what froze them."""
    return "; ".join(f"{f.get_kind_display()} frozen by {f.source or 'operator'}" for f in freezes)


def identities_freeze(*, pairs, reason, source, transfer=None):
    """Freeze each identity not frozen already (one active freeze per identity, a unique constraint); returns the
    new freezes. Runs inside the caller's transaction."""
    created = []
    for kind, value in pairs:
        if kind not in Freeze.Kind.values or not value:
            continue
        try:
            with transaction.atomic():
                created.append(Freeze.objects.create(kind=kind, value=normalise(kind, value), reason=reason[:300],
                                                     source=source[:255], transfer=transfer))
        except IntegrityError:
            pass  # already frozen
    if created:
        log.warning("identities_frozen source=%s kinds=%s transfer_id=%s", source,
                    ",".join(f.kind for f in created), getattr(transfer, "pk", None))
    return created


def freeze_lift(*, freeze_id, by, reason):
    """An operator lifts a freeze (who and why are kept; the row stays)."""
    with transaction.atomic():
        freeze = Freeze.objects.select_for_update().get(pk=freeze_id)
        if freeze.lifted_at is None:
            freeze.lifted_at = timezone.now()
            freeze.lifted_by = by[:150]
            freeze.lift_reason = reason[:300]
            freeze.save(update_fields=["lifted_at", "lifted_by", "lift_reason"])
            log.warning("freeze_lifted freeze_id=%s kind=%s by=%s", freeze.pk, freeze.kind, by)
    return freeze


# Velocity ----------------------------------------------------------------------------------------

# One statement per counter: insert it at 1 or add 1, and say where it stands (PostgreSQL, and SQLite ≥ 3.35).
UPSERT = ('INSERT INTO "payments_velocitycounter" ("kind", "key", "window_seconds", "window_start", "expires_at", '
          '"count") VALUES (%s, %s, %s, %s, %s, 1) ON CONFLICT ("kind", "key", "window_seconds", "window_start") '
          'DO UPDATE SET "count" = "payments_velocitycounter"."count" + 1 RETURNING "count"')


def velocity_consume(pairs, *, now=None):
    """Count one card attempt for each identity in every window configured for its kind (VELOCITY_LIMITS), or refuse
    it. All counters move in one transaction with atomic upserts (each row stays locked until the commit, taken in
    a fixed order), so concurrent attempts in any process never overrun a limit; a refused attempt counts nowhere."""
    now = now or timezone.now()
    rows = []
    for kind, value in pairs:
        key = hashlib.sha256(f"{kind}:{normalise(kind, value)}".encode()).hexdigest()
        for limit, seconds in settings.VELOCITY_LIMITS.get(kind, ()):
            start = datetime.fromtimestamp(math.floor(now.timestamp() / seconds) * seconds, tz=UTC)
            rows.append((kind, key, seconds, start, limit))
    rows.sort(key=lambda row: row[:3])
    with transaction.atomic(), connection.cursor() as cursor:
        for kind, key, seconds, start, limit in rows:
            end = start + timedelta(seconds=seconds)
            cursor.execute(UPSERT, [kind, key, seconds, start, end])
            (count,) = cursor.fetchone()
            if count > limit:
                retry_after = max(1, math.ceil((end - now).total_seconds()))
                log.warning("velocity_limited kind=%s window=%s limit=%s retry_after=%s", kind, seconds, limit,
                            retry_after)
                raise VelocityLimited(_("Too many payment attempts. Please try again later."), retry_after=retry_after)


def velocity_prune(*, now=None):
    """Counters whose window ended a day ago tell nothing any more."""
    return VelocityCounter.objects.filter(expires_at__lt=(now or timezone.now()) - timedelta(days=1)).delete()[0]


# Payout delay ------------------------------------------------------------------------------------

def target_amount_kgs(quote):
    """What the recipient receives, in som: as is for KGS; a dollar amount at the NBKR USD rate in effect. Without a
    usable rate the amount counts as large (a threshold is never skipped by accident)."""
    try:
        return kgs_equivalent(amount=quote.target_amount, currency=quote.target_currency)
    except RateUnavailable:
        return Decimal("Infinity")


def payout_release_after(transfer, *, funded_at):
    """When a funded card transfer may be paid out: at once (None) for a known sender's ordinary amount; after
    LARGE_AMOUNT_PAYOUT_DELAY_SECONDS for a som amount at or above LARGE_AMOUNT_KGS; after
    FIRST_TRANSFERS_PAYOUT_DELAY_SECONDS while this sender has fewer than FIRST_TRANSFERS_COUNT completed transfers
    paid with this card (a stolen card is new to us, whatever email comes with it). The longest delay applies."""
    delays = [0]
    if target_amount_kgs(transfer.quote) >= settings.LARGE_AMOUNT_KGS:
        delays.append(settings.LARGE_AMOUNT_PAYOUT_DELAY_SECONDS)
    if settings.FIRST_TRANSFERS_PAYOUT_DELAY_SECONDS > 0:
        history = Transfer.objects.filter(status=Transfer.Status.COMPLETED,
                                          sender_email__iexact=transfer.sender_email).exclude(pk=transfer.pk)
        if transfer.card_fingerprint:
            history = history.filter(card_fingerprint=transfer.card_fingerprint)
        if history.count() < settings.FIRST_TRANSFERS_COUNT:
            delays.append(settings.FIRST_TRANSFERS_PAYOUT_DELAY_SECONDS)
    delay = max(delays)
    return funded_at + timedelta(seconds=delay) if delay > 0 else None
