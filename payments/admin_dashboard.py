"""Admin home as an operations dashboard (templates/admin/index.html, `{% operations_dashboard %}`): every figure is a
link to the admin list behind it, its filters in the query string, so a click shows exactly the rows counted.

The reads are payments/selectors_dashboard.py and onchain's settlement_overview: a constant number of indexed queries
(tests/payments/test_admin_dashboard.py pins the count; `make bench-dashboard` times it on a million transfers)."""

from datetime import timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from common.admin import compact
from common.counts import Bounded
from onchain.api import settlement_overview
from payments import selectors_dashboard as figures
from payments.models import Transfer

STATUS_LABELS = dict(Transfer.Status.choices)
AGE_LABELS = {"under_1h": "< 1 h", "1h_24h": "1–24 h", "1d_7d": "1–7 days", "over_7d": "> 7 days"}


def changelist(model, **params):
    """The admin list of `model` ("app.model") filtered by `params` (lookups as the list's query string takes them)."""
    app, name = model.split(".")
    url = reverse(f"admin:{app}_{name}_changelist")
    params = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in params.items() if v is not None}
    return f"{url}?{urlencode(params)}" if params else url


def change(model, pk):
    app, name = model.split(".")
    return reverse(f"admin:{app}_{name}_change", args=[pk])


def _states(now, states):
    rows = []
    for status in figures.OPEN:
        row = states.get(status)
        if row is None:
            continue
        cells = []
        for name, low, high in figures.AGES:
            cells.append((row.by_age[name], changelist(
                "payments.transfer", status__exact=status, created_at__lte=now - low,
                created_at__gt=now - high if high is not None else None)))
        rows.append({"label": STATUS_LABELS[status], "status": status, "cells": cells, "total": row.total,
                     "url": changelist("payments.transfer", status__exact=status), "oldest": row.oldest})
    return rows


def _stuck(stuck, onchain):
    funded_minutes, settling_minutes = settings.DASHBOARD_FUNDED_STUCK_MINUTES, settings.DASHBOARD_SETTLING_ETA_MINUTES
    before = stuck["funded_before"]
    return [
        {"label": f"funded, not settling {funded_minutes} min after funding", "count": Bounded(stuck["funded"], False),
         "url": changelist("payments.transfer", status__exact="funded", funded_at__lt=before,
                           release_after__isnull="True")},
        {"label": f"funded, payout delay ended over {funded_minutes} min ago", "count": Bounded(stuck["delayed"], False),
         "url": changelist("payments.transfer", status__exact="funded", release_after__lt=before)},
        {"label": f"settling past its ETA ({settling_minutes} min)", "count": Bounded(stuck["settling"], False),
         "url": changelist("payments.transfer", status__exact="settling", updated_at__lt=stuck["settling_before"])},
        {"label": f"batches not final after {settings.DASHBOARD_BATCH_STUCK_MINUTES} min",
         "count": onchain["stuck_batches"],
         "url": changelist("onchain.batch", status__in="signed,broadcast,mined",
                           created_at__lt=onchain["stuck_batches_before"])},
        {"label": "payouts queued (oldest first)", "count": onchain["queued_payouts"],
         "oldest": onchain["oldest_queued_payout"], "url": changelist("onchain.payout", status__exact="queued")},
    ]


def _treasury(onchain):
    tokens = [{"label": t.label, "float": compact(t.float_units), "floor": compact(t.floor_units),
               "owed": compact(t.owed_units), "measured_at": t.measured_at, "below": t.below_floor,
               "url": change("onchain.token", t.id),
               "owed_url": changelist("onchain.payout", status__in="queued,batched", token__id__exact=t.id)}
              for t in onchain["tokens"]]
    wallets = [{"label": f"{w.address[:8]}…{w.address[-4:]}", "address": w.address, "chain": w.chain,
                "gas": compact(w.gas), "floor": compact(w.floor), "measured_at": w.measured_at, "below": w.below_floor,
                "halted": w.halted, "halt_reason": w.halt_reason, "active": w.is_active,
                "url": change("onchain.hotwallet", w.id)}
               for w in onchain["wallets"]]
    return tokens, wallets


def dashboard(*, now=None):
    """The dashboard's sections, read now: figures with the list URL behind each."""
    now = now or timezone.now()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    since_day = now - timedelta(days=1)
    states, stuck = figures.transfers_open(
        now=now, funded_stuck_after=timedelta(minutes=settings.DASHBOARD_FUNDED_STUCK_MINUTES),
        settling_eta=timedelta(minutes=settings.DASHBOARD_SETTLING_ETA_MINUTES))
    onchain = settlement_overview(now=now, batch_stuck_after=timedelta(minutes=settings.DASHBOARD_BATCH_STUCK_MINUTES))
    tokens, wallets = _treasury(onchain)
    held = states.get(Transfer.Status.HELD)
    return {
        "now": now,
        "ages": list(AGE_LABELS.values()),
        "states": _states(now, states),
        "finished": [{"label": STATUS_LABELS[s], "count": n,
                      "url": changelist("payments.transfer", status__exact=s, created_at__gte=since_day)}
                     for s, n in sorted(figures.transfers_finished(since=since_day).items())],
        "stuck": _stuck(stuck, onchain),
        "review": {"count": held.total if held else 0, "oldest": held.oldest if held else None,
                   "url": changelist("payments.heldtransfer")},
        "tokens": tokens,
        "wallets": wallets,
        "halts": [{"key": k, "reason": r} for k, r in onchain["halts"]],
        "halts_url": changelist("onchain.payouthalt"),
        "corridors": [{"label": f"{c.source_currency} → {c.target_currency}", "count": c.count,
                       "volume": compact(c.volume), "fees": compact(c.fees), "margin": compact(c.margin),
                       "revenue": compact(c.revenue),
                       "url": changelist("payments.transfer", status__in=",".join(figures.PAID), livemode__exact=1,
                                         created_at__gte=midnight, quote__source_currency__exact=c.source_currency)}
                      for c in figures.corridors_today(since=midnight)],
        "today": midnight,
        "reconciliation": [{"label": label, "count": n, "halting": halting, "oldest": oldest,
                            "url": changelist("payments.reconciliationitem", status__exact="open", kind__exact=kind)}
                           for kind, label, n, halting, oldest in figures.reconciliation_open()],
        "alerts": [{"label": label, "kind": kind, "count": n, "oldest": oldest,
                    "url": changelist("onchain.operatoralert", resolved_at__isempty=1, kind__exact=kind)}
                   for kind, label, n, oldest in onchain["alerts"]],
        "alerts_url": changelist("onchain.operatoralert", resolved_at__isempty=1),
    }
