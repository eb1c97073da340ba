"""Operator admin for settlement: every page renders with live data; halting needs a reason; resume works."""

import pytest
from django.contrib.auth import get_user_model

from onchain.models import Batch, HotWallet, OperatorAlert
from tests.onchain.helpers import build, queue, recording_listener

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(client):
    client.force_login(get_user_model().objects.create_superuser("ops", "ops@example.com", "a-long-password-123"))
    with recording_listener():
        yield client


def test_settlement_pages_render_with_batches_attempts_and_alerts(operator, chain):
    """Batches (with their attempts inline), payouts, transactions, alerts, wallets and chains all render."""
    queue("adm-1")
    (batch,) = build(chain["token"])
    OperatorAlert.objects.create(kind="low_gas", wallet=chain["wallet"], message="gas low")
    for url in ["/admin/onchain/batch/", f"/admin/onchain/batch/{batch.pk}/change/", "/admin/onchain/payout/",
                "/admin/onchain/chaintransaction/", "/admin/onchain/operatoralert/", "/admin/onchain/hotwallet/",
                f"/admin/onchain/hotwallet/{chain['wallet'].pk}/change/", "/admin/onchain/chain/", "/admin/onchain/token/"]:
        response = operator.get(url)
        assert response.status_code == 200, url
    page = operator.get(f"/admin/onchain/batch/{batch.pk}/change/").content.decode()
    assert batch.attempts.get().tx_hash in page


def test_halting_a_wallet_requires_a_reason_and_resume_clears_it(operator, chain):
    """Ticking `halted` without a reason is refused next to the field; the resume action clears the halt."""
    wallet = chain["wallet"]
    url = f"/admin/onchain/hotwallet/{wallet.pk}/change/"
    form = {"chain": wallet.chain_id, "address": wallet.address, "key_env": wallet.key_env, "is_active": "on",
            "halted": "on", "halt_reason": ""}
    response = operator.post(url, form)
    assert response.status_code == 200 and "Say why sending is halted" in response.content.decode()
    assert not HotWallet.objects.get(pk=wallet.pk).halted
    operator.post(url, {**form, "halt_reason": "investigating"})
    assert HotWallet.objects.get(pk=wallet.pk).halted
    operator.post("/admin/onchain/hotwallet/", {"action": "resume", "_selected_action": [wallet.pk]})
    assert not HotWallet.objects.get(pk=wallet.pk).halted


def test_batches_cannot_be_edited(operator, chain):
    """Money rows are read-only in admin: a POST to a batch's page changes nothing."""
    queue("adm-2")
    (batch,) = build(chain["token"])
    operator.post(f"/admin/onchain/batch/{batch.pk}/change/", {"status": "final"})
    assert Batch.objects.get(pk=batch.pk).status == Batch.Status.SIGNED
