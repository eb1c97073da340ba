"""What the operations dashboard (admin home) shows of transfers: open states by age, stuck transfers, the last day's
finished ones, today's volume and revenue per corridor, open reconciliation differences.

Fast with millions of transfers: every query reads an index range of (status, created_at), restricted to the
states that are not final (few rows in a healthy system) or to a recent window; nothing counts the whole table.
A constant number of queries (five), whatever the history holds."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Count, F, Min, Q, Sum

from payments.models import ReconciliationItem, Transfer

S = Transfer.Status
# Not final, or final but waiting for an operator: counted in full (their rows are few), by age.
OPEN = [S.AWAITING_FUNDING, S.FUNDED, S.AWAITING_CLAIM, S.HELD, S.SETTLING, S.AWAITING_PAYOUT_CONFIRMATION, S.REFUNDING,
        S.SETTLEMENT_FAILED, S.PAYOUT_FAILED, S.REFUND_FAILED]
# Final: they grow without bound, so only the last day's are counted.
FINAL = [S.COMPLETED, S.EXPIRED, S.REJECTED, S.REFUNDED, S.CHARGED_BACK, S.CANCELLED]
# Paid and not given back: what today's volume and revenue count.
PAID = [S.FUNDED, S.AWAITING_CLAIM, S.HELD, S.SETTLING, S.AWAITING_PAYOUT_CONFIRMATION, S.COMPLETED, S.SETTLEMENT_FAILED,
        S.PAYOUT_FAILED]
AGES = [("under_1h", timedelta(0), timedelta(hours=1)), ("1h_24h", timedelta(hours=1), timedelta(days=1)),
        ("1d_7d", timedelta(days=1), timedelta(days=7)), ("over_7d", timedelta(days=7), None)]


@dataclass
class StateRow:
    status: str
    by_age: dict = field(default_factory=dict)  # AGES name → count
    oldest: datetime | None = None

    @property
    def total(self):
        return sum(self.by_age.values())


@dataclass(frozen=True)
class CorridorDay:
    source_currency: str
    target_currency: str
    count: int
    volume: Decimal  # source currency, what senders paid
    fees: Decimal
    margin: Decimal  # the rate's margin, in source currency at the official rate (to the cent)

    @property
    def revenue(self):
        return self.fees + self.margin


def _age_filter(now, low, high):
    q = Q(created_at__lte=now - low)
    if high is not None:
        q &= Q(created_at__gt=now - high)
    return q


def transfers_open(*, now, funded_stuck_after, settling_eta):
    """({status: StateRow}, stuck counts) in one query over the open states."""
    funded_before, settling_before = now - funded_stuck_after, now - settling_eta
    aggregates = {name: Count("pk", filter=_age_filter(now, low, high)) for name, low, high in AGES}
    # Funded and not moving: no payout delay, or a delay that ended; settling past its ETA: its row last changed
    # when it entered `settling` (the payout's progress is on the payout and its batch, not here).
    aggregates["stuck_funded"] = Count("pk", filter=Q(status=S.FUNDED, funded_at__lt=funded_before,
                                                      release_after__isnull=True))
    aggregates["stuck_delayed"] = Count("pk", filter=Q(status=S.FUNDED, release_after__lt=funded_before))
    aggregates["stuck_settling"] = Count("pk", filter=Q(status=S.SETTLING, updated_at__lt=settling_before))
    rows = (Transfer.objects.filter(status__in=OPEN).values("status")
            .annotate(oldest=Min("created_at"), **aggregates).order_by())
    states, stuck = {}, {"funded": 0, "delayed": 0, "settling": 0}
    for r in rows:
        states[r["status"]] = StateRow(r["status"], {name: r[name] for name, _, _ in AGES}, r["oldest"])
        stuck["funded"] += r["stuck_funded"]
        stuck["delayed"] += r["stuck_delayed"]
        stuck["settling"] += r["stuck_settling"]
    stuck.update(funded_before=funded_before, settling_before=settling_before)
    return states, stuck


def transfers_finished(*, since):
    """{status: count} of final transfers created since `since` (one index range per final state)."""
    rows = (Transfer.objects.filter(status__in=FINAL, created_at__gte=since).values("status")
            .annotate(n=Count("pk")).order_by())
    return {r["status"]: r["n"] for r in rows}


def corridors_today(*, since):
    """Live transfers created since `since` that were paid and not given back, per corridor."""
    rows = (Transfer.objects.filter(status__in=PAID, created_at__gte=since, livemode=True)
            .values(source=F("quote__source_currency"), target=F("quote__target_currency"))
            .annotate(n=Count("pk"), volume=Sum("quote__source_amount"), fees=Sum("quote__fee"),
                      margin=Sum(F("quote__source_amount") - F("quote__fee")
                                 - F("quote__target_amount") / F("quote__official_rate")))
            .order_by("source", "target"))
    cent = Decimal("0.01")
    return [CorridorDay(r["source"], r["target"], r["n"], r["volume"], r["fees"],
                        Decimal(r["margin"]).quantize(cent)) for r in rows]


def reconciliation_open():
    """[(kind, label, count, halting count, oldest detected_at)] of open differences (the (status, kind) index)."""
    labels = dict(ReconciliationItem.Kind.choices)
    rows = (ReconciliationItem.objects.open().values("kind")
            .annotate(n=Count("pk"), halting=Count("pk", filter=Q(halts_payouts=True)), oldest=Min("detected_at"))
            .order_by("kind"))
    return [(r["kind"], labels.get(r["kind"], r["kind"]), r["n"], r["halting"], r["oldest"]) for r in rows]
