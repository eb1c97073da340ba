"""What the operations dashboard shows of settlement (admin home, payments/selectors_dashboard.py): the float per
token and the gas per hot wallet against their floors, open alerts by kind, batches not final past a threshold,
payouts waiting, payout halts. A constant number of indexed queries whatever the history holds, and never a call to
the node: the float and gas are the last measurements treasury_check stored."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import Count, Min, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from common.counts import bounded_count
from onchain.fields import Uint256Field
from onchain.models import Batch, HotWallet, OperatorAlert, Payout, PayoutHalt, Token

NOT_FINAL = [Batch.Status.SIGNED, Batch.Status.BROADCAST, Batch.Status.MINED]
OWED = [Payout.Status.QUEUED, Payout.Status.BATCHED]


@dataclass(frozen=True)
class TokenFloat:
    id: int
    label: str
    float_units: Decimal | None  # token units (not base units); None: never measured
    measured_at: datetime | None
    floor_units: Decimal | None
    owed_units: Decimal

    @property
    def below_floor(self):
        return None not in (self.float_units, self.floor_units) and self.float_units < self.floor_units


@dataclass(frozen=True)
class WalletGas:
    id: int
    address: str
    chain: str
    is_active: bool
    halted: bool
    halt_reason: str
    gas: Decimal | None  # native units (ether-like); None: never measured
    measured_at: datetime | None
    floor: Decimal | None

    @property
    def below_floor(self):
        return None not in (self.gas, self.floor) and self.gas < self.floor


def _units(base_units, decimals):
    return None if base_units is None else Decimal(int(base_units)).scaleb(-decimals)


def token_floats():
    owed = (Payout.objects.filter(token=OuterRef("pk"), status__in=OWED).order_by().values("token")
            .annotate(s=Sum("amount_base_units")).values("s"))
    rows = (Token.objects.select_related("chain", "snapshot")
            .annotate(owed=Coalesce(Subquery(owed), Value(0), output_field=Uint256Field()))
            .order_by("chain__name", "symbol"))
    result = []
    for t in rows:
        snapshot = getattr(t, "snapshot", None)
        result.append(TokenFloat(
            id=t.pk, label=str(t), float_units=_units(snapshot and snapshot.float_base_units, t.decimals),
            measured_at=snapshot and snapshot.measured_at, floor_units=_units(t.low_float_base_units, t.decimals),
            owed_units=_units(t.owed, t.decimals)))
    return result


def wallet_gas():
    return [WalletGas(id=w.pk, address=w.address, chain=w.chain.name, is_active=w.is_active, halted=w.halted,
                      halt_reason=w.halt_reason, gas=_units(w.gas_wei, 18), measured_at=w.gas_measured_at,
                      floor=_units(w.low_gas_wei, 18))
            for w in HotWallet.objects.select_related("chain").order_by("-is_active", "chain__name", "address")]


def open_alerts():
    """[(kind, label, count, oldest created_at)] of unresolved alerts (the (resolved_at, kind) index)."""
    labels = dict(OperatorAlert.Kind.choices)
    rows = (OperatorAlert.objects.filter(resolved_at__isnull=True).values("kind")
            .annotate(n=Count("pk"), oldest=Min("created_at")).order_by("kind"))
    return [(r["kind"], labels.get(r["kind"], r["kind"]), r["n"], r["oldest"]) for r in rows]


def settlement_overview(*, now, batch_stuck_after):
    """Everything above, read now. `batch_stuck_after`: a batch not final after this long counts as stuck."""
    stuck = Batch.objects.filter(status__in=NOT_FINAL, created_at__lt=now - batch_stuck_after)
    waiting = Payout.objects.filter(status=Payout.Status.QUEUED).aggregate(oldest=Min("created_at"))
    return {
        "tokens": token_floats(),
        "wallets": wallet_gas(),
        "alerts": open_alerts(),
        "stuck_batches": bounded_count(stuck),
        "stuck_batches_before": now - batch_stuck_after,
        "queued_payouts": bounded_count(Payout.objects.filter(status=Payout.Status.QUEUED)),
        "oldest_queued_payout": waiting["oldest"],
        "halts": list(PayoutHalt.objects.order_by("created_at").values_list("key", "reason")),
    }

