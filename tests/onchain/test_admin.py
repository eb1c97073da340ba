"""Operator admin for settlement: every page renders with live data; halting needs a reason; resume works."""

import pytest
from django.contrib.auth import get_user_model

from onchain.models import Batch, HotWallet, OperatorAlert
from tests.helpers import staff_login
from tests.onchain.helpers import build, queue, recording_listener

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(client):
    staff_login(client, get_user_model().objects.create_superuser("ops", "ops@example.com", "a-long-password-123"))
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
    """Halting without a reason is refused next to the field; with one, the wallet is halted with that reason; the
    resume action (with a reason) clears the halt."""
    wallet = chain["wallet"]
    action = {"action": "halt", "_selected_action": [wallet.pk], "post": "yes"}
    response = operator.post("/admin/onchain/hotwallet/", {**action, "reason": ""})
    assert response.status_code == 200 and "Give a reason" in response.content.decode()
    assert not HotWallet.objects.get(pk=wallet.pk).halted
    operator.post("/admin/onchain/hotwallet/", {**action, "reason": "investigating"})
    assert HotWallet.objects.get(pk=wallet.pk).halt_reason == "investigating"
    operator.post("/admin/onchain/hotwallet/", {**action, "action": "resume", "reason": "all clear"})
    assert not HotWallet.objects.get(pk=wallet.pk).halted


def test_batches_cannot_be_edited(operator, chain):
    """Money rows are read-only in admin: a POST to a batch's page changes nothing."""
    queue("adm-2")
    (batch,) = build(chain["token"])
    operator.post(f"/admin/onchain/batch/{batch.pk}/change/", {"status": "final"})
    assert Batch.objects.get(pk=batch.pk).status == Batch.Status.SIGNED
