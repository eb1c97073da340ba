"""/metrics (gateway/metrics.py): refused without a token or a verified staff session (404 without credentials, 401
with wrong ones); with either, the Prometheus text of figures read from the tables and Redis at scrape time."""

import os
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from common import ops_state
from tests.conftest import new_recipient
from tests.helpers import force_status, staff_login

pytestmark = pytest.mark.django_db

TOKEN = "metrics-token-for-tests-0123456789"


@pytest.fixture
def token(settings):
    settings.METRICS_TOKEN = TOKEN
    return TOKEN


def scrape(client, token=TOKEN):
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200, response.content
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def test_metrics_refused_without_credentials_or_with_wrong_ones(client, token, settings):
    """No credentials: 404 (nothing advertised); a wrong bearer token or scheme: 401; no token configured: even
    an empty bearer is refused; a staff session without its second factor: 404."""
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Basic {TOKEN}").status_code == 401
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 401
    user = get_user_model().objects.create_user("ops", password="x" * 12, is_staff=True, is_superuser=True)
    client.force_login(user)
    assert client.get("/metrics").status_code == 404


def test_metrics_open_to_the_token_and_to_a_verified_staff_session(client, token):
    """The bearer token (constant-time compare) or a two-factor staff session get the Prometheus text format."""
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain; version=")
    user = get_user_model().objects.create_user("ops", password="x" * 12, is_staff=True, is_superuser=True)
    assert staff_login(client, user).get("/metrics").status_code == 200


def _transfer():
    from payments.services.quotes import quote_create
    from payments.services.transfers import transfer_create

    quote = quote_create(source_currency="USD", source_amount=Decimal("100.00"))
    created, _ = transfer_create(
        partner=None, idempotency_key=str(quote.id), fingerprint="f", quote_id=quote.id,
        sender={"name": "John Smith", "phone": "+12125551234", "email": "john@example.com"},
        recipient={"name": "Aida Bekova", "phone": "+996555123456", "wallet_address": new_recipient()})
    return created


def _batch(chain, count, gas_used, nonce):
    from onchain.models import Batch, ChainTransaction

    batch = Batch.objects.create(token=chain["token"], wallet=chain["wallet"], nonce=nonce, mode="contract",
                                 count=count, total_base_units=count)
    tx = ChainTransaction.objects.create(
        batch=batch, wallet=chain["wallet"], nonce=nonce, tx_hash="0x" + f"{nonce:064x}", raw_tx=b"", data=b"",
        to_address=chain["wallet"].address, gas_limit=gas_used * 2, max_fee_per_gas=1, max_priority_fee_per_gas=1,
        gas_used=gas_used)
    Batch.objects.filter(pk=batch.pk).update(mined_tx=tx)


def test_metrics_report_transfers_latency_batches_balances_backlog_and_failures(client, token, pricing, chain):
    """Transfers by state from a grouped count; funded→completed latency and batch sizes and gas per payout over
    the window; the treasury snapshot's float and the wallet's live gas; pending webhooks; task failures counted
    in Redis by the worker's signal; queue depths."""
    from onchain.models import TreasurySnapshot
    from payments.models import Transfer

    _waiting, done = _transfer(), _transfer()
    now = timezone.now()
    force_status(Transfer.objects.filter(pk=done.pk), Transfer.Status.COMPLETED,
                 funded_at=now - timedelta(seconds=40), completed_at=now)
    _batch(chain, count=4, gas_used=160_000, nonce=10_001)
    _batch(chain, count=1, gas_used=70_000, nonce=10_002)
    TreasurySnapshot.objects.update_or_create(token=chain["token"], defaults={
        "float_base_units": 5 * 10**18, "measured_at": now})
    before = scrape(client).get(("tulpar_task_failures_total", (("task", "tests.metrics_probe"),)), 0)
    ops_state.task_failure_record("tests.metrics_probe")

    samples = scrape(client)
    assert samples[("tulpar_transfers", (("state", "awaiting_funding"),))] >= 1
    assert samples[("tulpar_transfers", (("state", "completed"),))] >= 1
    assert samples[("tulpar_transfer_funded_to_completed_seconds_bucket", (("le", "30"),))] == 0
    assert samples[("tulpar_transfer_funded_to_completed_seconds_bucket", (("le", "60"),))] == 1
    assert samples[("tulpar_transfer_funded_to_completed_seconds_gcount", ())] == 1
    assert samples[("tulpar_batch_size_payouts_bucket", (("le", "1"),))] == 1
    assert samples[("tulpar_batch_size_payouts_bucket", (("le", "5"),))] == 2
    assert samples[("tulpar_batch_size_payouts_gsum", ())] == 5
    assert samples[("tulpar_gas_per_payout_bucket", (("le", "40000"),))] == 1  # 160,000 / 4
    assert samples[("tulpar_gas_per_payout_gsum", ())] == 110_000
    chain_id = str(chain["chain"].chain_id)
    assert samples[("tulpar_hot_wallet_token_base_units", (("chain", chain_id), ("token", chain["token"].symbol)))] \
        == 5 * 10**18
    assert samples[("tulpar_hot_wallet_gas_wei", (("chain", chain_id), ("wallet", chain["wallet"].address)))] > 0
    assert samples[("tulpar_webhook_backlog", ())] >= 0
    assert samples[("tulpar_task_failures_total", (("task", "tests.metrics_probe"),))] == before + 1
    assert ("tulpar_queue_depth", (("queue", "settlement"),)) in samples
    assert os.environ["HOT_WALLET_PRIVATE_KEY"][2:] not in str(samples)
