"""Prometheus metrics at /metrics, computed when scraped.

Why at scrape time: gunicorn runs several web processes and Celery runs apart from them; counters kept in one
process's memory would each see a slice (and vanish on restart), and prometheus-client's multiprocess mode needs a
shared directory on every host, cleaned at each start. The tables already know the truth, so one scrape reads them:
a grouped count of transfers by state (the (status, created_at) index), distributions over the recent window
(METRICS_WINDOW_MINUTES) as gauge histograms, the treasury snapshot, pending webhook deliveries (a partial index).
The only event not in a table, a task that failed for good, is counted in Redis by the worker (common/ops_state.py).

Access: `Authorization: Bearer <METRICS_TOKEN>` (compared in constant time) or a staff member's verified admin
session. No credentials at all: 404 (the endpoint is not advertised); wrong ones: 401."""

import hmac
from datetime import timedelta

import requests
from django.conf import settings
from django.contrib import admin
from django.db.models import Count, F
from django.http import Http404, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeHistogramMetricFamily, GaugeMetricFamily

from common import ops_state
from gateway.health import queue_depths

LATENCY_BUCKETS = (5, 15, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 24 * 3600)
BATCH_SIZE_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200)
GAS_BUCKETS = (30_000, 40_000, 50_000, 60_000, 80_000, 100_000, 150_000)
RPC_TIMEOUT_SECONDS = 1.5


def gauge_histogram(name, doc, values, buckets):
    counts = [sum(1 for v in values if v <= le) for le in buckets]
    return GaugeHistogramMetricFamily(
        name, doc, buckets=[(str(le), c) for le, c in zip(buckets, counts, strict=True)] + [("+Inf", len(values))],
        gsum_value=float(sum(values)))


def _gas_balance(address):
    for url in settings.CHAIN_RPC_URLS or [settings.CHAIN_RPC_URL]:
        try:
            response = requests.post(url, timeout=RPC_TIMEOUT_SECONDS, json={
                "jsonrpc": "2.0", "id": 1, "method": "eth_getBalance", "params": [address, "latest"]})
            return int(response.json()["result"], 16)
        except Exception:  # noqa: BLE001,S112 - the next URL may answer
            continue
    return None


class TulparCollector:
    def collect(self):
        from onchain.models import Batch, HotWallet, TreasurySnapshot
        from payments.models import Transfer, WebhookDelivery

        now = timezone.now()
        since = now - timedelta(minutes=settings.METRICS_WINDOW_MINUTES)

        by_state = GaugeMetricFamily("tulpar_transfers", "Transfers by state.", labels=["state"])
        counts = dict(Transfer.objects.order_by().values_list("status").annotate(n=Count("id")))
        for state in Transfer.Status.values:
            by_state.add_metric([state], counts.get(state, 0))
        yield by_state

        # created_at bounds the scan to the (status, created_at) index; a transfer taking longer than a day from
        # creation to completion is left out of the window's distribution (it shows in the state gauge anyway).
        latencies = [d.total_seconds() for d in Transfer.objects.filter(
            status=Transfer.Status.COMPLETED, created_at__gte=since - timedelta(days=1), completed_at__gte=since,
            funded_at__isnull=False).annotate(d=F("completed_at") - F("funded_at")).values_list("d", flat=True)]
        yield gauge_histogram("tulpar_transfer_funded_to_completed_seconds",
                              "Funded to completed, transfers completed in the window.", latencies, LATENCY_BUCKETS)

        batches = list(Batch.objects.filter(created_at__gte=since).values_list("count", "mined_tx__gas_used"))
        yield gauge_histogram("tulpar_batch_size_payouts", "Payouts per batch, batches created in the window.",
                              [c for c, _ in batches], BATCH_SIZE_BUCKETS)
        yield gauge_histogram("tulpar_gas_per_payout", "Gas used per payout, mined batches created in the window.",
                              [gas / c for c, gas in batches if gas and c], GAS_BUCKETS)

        token_float = GaugeMetricFamily("tulpar_hot_wallet_token_base_units",
                                        "Last measured token float (base units) per token.", labels=["chain", "token"])
        for snap in TreasurySnapshot.objects.select_related("token__chain"):
            token_float.add_metric([str(snap.token.chain.chain_id), snap.token.symbol], float(snap.float_base_units))
        yield token_float
        gas = GaugeMetricFamily("tulpar_hot_wallet_gas_wei", "Gas balance (wei) per active hot wallet, read now.",
                                labels=["chain", "wallet"])
        for wallet in HotWallet.objects.filter(is_active=True).select_related("chain"):
            balance = _gas_balance(wallet.address)
            if balance is not None:
                gas.add_metric([str(wallet.chain.chain_id), wallet.address], float(balance))
        yield gas

        yield GaugeMetricFamily("tulpar_webhook_backlog", "Webhook deliveries pending.",
                                value=WebhookDelivery.objects.filter(state=WebhookDelivery.State.PENDING).count())

        conn = ops_state.client()
        failures = CounterMetricFamily("tulpar_task_failures", "Celery tasks that failed for good, by task.",
                                       labels=["task"])
        depth = GaugeMetricFamily("tulpar_queue_depth", "Messages waiting per Celery queue.", labels=["queue"])
        try:
            for task, n in sorted(ops_state.task_failures(conn).items()):
                failures.add_metric([task], n)
            for kind, n in queue_depths(conn).items():
                depth.add_metric([kind], n)
        except Exception:  # noqa: BLE001,S110 - Redis down: the rest of the scrape is still worth having
            pass
        yield failures
        yield depth


def _authorized(request):
    """True, or the response refusing the request."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header:
        scheme, _, token = header.partition(" ")
        expected = settings.METRICS_TOKEN
        if expected and scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), expected.encode()):
            return True
    if admin.site.has_permission(request):
        return True
    if header:
        response = HttpResponse("unauthorized\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    raise Http404


@require_GET
def metrics_view(request):
    verdict = _authorized(request)
    if verdict is not True:
        return verdict
    registry = CollectorRegistry(auto_describe=False)
    registry.register(TulparCollector())
    response = HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
    response["Cache-Control"] = "no-store"
    return response
