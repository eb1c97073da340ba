"""When the money arrives: an estimate for the status pages, from the pipeline as it is now.

Two sources. History: the median time from "free to pay out" (funded, or the end of a payout hold) to completed of
the corridor's last ETA_HISTORY on-chain transfers; it carries screening, batching and the chain's real pace.
The pipeline (onchain.api.payout_eta): the payouts queued ahead, the batcher's wait and the chain's finality rule.
A payout already on its way is estimated from where it is on chain alone. No estimate for transfers that wait on a
person (held, unpaid, a payout partner's confirmation) or that have stopped.
"""

import math
import statistics
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from onchain.api import payout_eta
from payments.assets import asset_for
from payments.models import Transfer

S = Transfer.Status
ETA_HISTORY = 50  # the last N completed transfers of the corridor
ETA_MIN_SAMPLES = 3  # fewer than this: the pipeline's own estimate


@dataclass(frozen=True)
class Eta:
    seconds: int
    basis: str  # "history" (median of recent transfers plus today's queue) or "pipeline" (configuration alone)


def corridor_completion_seconds(*, source_currency, target_currency="KGS"):
    """Median seconds from free-to-pay-out to completed of the corridor's recent on-chain transfers, or None with too
    few. One query on the (status, created_at) index, newest first, at most ETA_HISTORY rows. Per target currency
    too: dollars go out as USDKG on Ethereum, whose finality takes minutes where BNB Chain's takes seconds."""
    rows = (Transfer.objects.filter(status=S.COMPLETED, livemode=True, quote__source_currency=source_currency,
                                    quote__target_currency=target_currency,
                                    funded_at__isnull=False, completed_at__isnull=False,
                                    partner_payout__isnull=True)  # a partner's confirmation is on its own clock
            .order_by("-created_at").values_list("funded_at", "release_after", "completed_at")[:ETA_HISTORY])
    durations = [(done - max(funded, hold or funded)).total_seconds() for funded, hold, done in rows]
    durations = [d for d in durations if d >= 0]
    return statistics.median(durations) if len(durations) >= ETA_MIN_SAMPLES else None


def corridor_completion_cached(*, source_currency, target_currency="KGS"):
    """corridor_completion_seconds, shared for ETA_CACHE_SECONDS: every open status page polls every 2 s, and a
    minority corridor's median walks far down the index to find its rows."""
    if settings.ETA_CACHE_SECONDS <= 0:
        return corridor_completion_seconds(source_currency=source_currency, target_currency=target_currency)
    key = f"eta:completion:{source_currency}:{target_currency}"
    found = cache.get(key, _MISSING)
    if found is _MISSING:
        found = corridor_completion_seconds(source_currency=source_currency, target_currency=target_currency)
        cache.set(key, found, settings.ETA_CACHE_SECONDS)
    return found


_MISSING = object()


def transfer_eta(*, transfer, now=None):
    """An Eta for the money reaching the recipient's wallet, or None where there is nothing honest to say."""
    now = now or timezone.now()
    if transfer.status == S.SETTLING:
        onchain = payout_eta(reference=transfer.payout_reference)
        return Eta(seconds=math.ceil(onchain.seconds), basis="pipeline") if onchain else None
    if transfer.status != S.FUNDED or transfer.funded_at is None:
        return None
    free_at = max(transfer.funded_at, transfer.release_after or transfer.funded_at)
    wait = max((free_at - now).total_seconds(), 0)
    elapsed = max((now - free_at).total_seconds(), 0)
    # Not queued yet: the pipeline of the token this transfer will be paid in, on that token's own chain (its block
    # time and finality depth: seconds on BNB Chain, minutes on Ethereum).
    pipeline = payout_eta(symbol=asset_for(transfer.quote.target_currency).symbol)
    history = corridor_completion_cached(source_currency=transfer.quote.source_currency,
                                         target_currency=transfer.quote.target_currency)
    if history is None:
        if pipeline is None:
            return None
        return Eta(seconds=math.ceil(wait + pipeline.seconds), basis="pipeline")
    # History already holds an ordinary queue; today's backlog adds its own blocks. Never faster than the pipeline.
    remaining = max(history - elapsed, 0) + (pipeline.queue_seconds if pipeline else 0)
    if pipeline:
        remaining = max(remaining, pipeline.seconds)
    return Eta(seconds=math.ceil(wait + remaining), basis="history")
