"""onchain's one door (onchain/api.py): the listener contract payments implements, and settlement reads that
never wait on the node (confirmations count from the head the tracker records)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from gateway.dev.services import free_port
from onchain import api as onchain_api
from onchain.errors import SettlementNotConfigured
from onchain.listener import payout_listener, payout_listener_override
from onchain.models import Batch, Chain
from onchain.rpc import web3 as rpc_web3
from onchain.services import tracking
from payments.models import Transfer
from payments.pipeline import TransferPayoutListener
from tests.helpers import force_status
from tests.onchain.helpers import build, send, track_until
from tests.payments.test_api import new_quote, transfer_body

pytestmark = pytest.mark.django_db


def test_payments_registers_its_listener_at_start_up():
    """No dotted path in settings: payments' AppConfig registers the object that implements the Protocol."""
    assert isinstance(payout_listener(), TransferPayoutListener)
    assert isinstance(payout_listener(), onchain_api.PayoutListener)


def test_a_listener_that_does_not_implement_the_protocol_is_refused():
    class HalfListener:
        def payouts_final(self, *, references, tx_hash):
            pass

    with pytest.raises(TypeError, match="PayoutListener"):
        onchain_api.payout_listener_register(HalfListener())
    assert isinstance(payout_listener(), TransferPayoutListener)  # the registered one is untouched


def test_without_a_listener_the_engine_refuses_to_report(monkeypatch):
    monkeypatch.setattr("onchain.listener._registered", [])
    with pytest.raises(SettlementNotConfigured):
        payout_listener()


def test_override_reports_elsewhere_inside_the_block_only():
    class Recorder:
        def payouts_final(self, *, references, tx_hash):
            pass

        def payouts_failed(self, *, references, reason):
            pass

    recorder = Recorder()
    with payout_listener_override(recorder):
        assert payout_listener() is recorder
    assert isinstance(payout_listener(), TransferPayoutListener)


@pytest.fixture
def settling(api, pricing, stripe_server, chain):
    """Make n partner transfers settling, their payouts signed, sent and mined, and kept from finality: the dev
    chain's `finalized` block trails the head by only two blocks, so without this an earlier batch could turn final
    while a later one is being mined (and the wait below would never end)."""
    Chain.objects.filter(pk=chain["chain"].pk).update(use_finalized_tag=False, confirmations=10_000)

    def make(n):
        transfers = []
        for i in range(n):
            response = api.post("/api/v1/transfers", transfer_body(new_quote(api)["id"]), format="json",
                                HTTP_IDEMPOTENCY_KEY=f"settling-{n}-{i}")
            transfer = Transfer.objects.get(pk=response.json()["id"])
            force_status(Transfer.objects.filter(pk=transfer.pk), Transfer.Status.SETTLING,
                         payout_reference=str(transfer.pk))
            onchain_api.payout_request(reference=str(transfer.pk), to_address=transfer.recipient_wallet,
                           amount=transfer.quote.target_amount)
            transfers.append(transfer)
        send(build(chain["token"]))
        track_until(chain["chain"], lambda: not Batch.objects.exclude(status=Batch.Status.MINED).exists(),
                    what="the batch to be mined")
        return transfers
    return make


def test_confirmations_come_from_the_recorded_head_with_the_node_unreachable(api, settling, chain, settings):
    """The tracker records the head; the API then shows confirmations from it even when no RPC answers (the old
    read asked the node per transfer and showed 0 when it did not answer)."""
    (transfer,) = settling(1)
    tracking.chain_track(chain_id=chain["chain"].pk)
    head = Chain.objects.get(pk=chain["chain"].pk).head_block
    batch = Batch.objects.get()
    dead = f"http://127.0.0.1:{free_port()}"
    settings.CHAIN_RPC_URL, settings.CHAIN_RPC_URLS = dead, [dead]
    rpc_web3.cache_clear()
    try:
        settlement = api.get(f"/api/v1/transfers/{transfer.pk}").json()["settlement"]
    finally:
        rpc_web3.cache_clear()
    assert settlement["block_number"] == batch.block_number
    assert settlement["confirmations"] == head - batch.block_number + 1 >= 1
    assert settlement["tx_hash"] == batch.mined_tx.tx_hash


def test_transfer_list_reads_settlements_in_a_constant_number_of_queries(api, settling):
    """One page of settling transfers costs the same number of queries for 1 transfer as for 4 (no N+1)."""
    settling(1)
    with CaptureQueriesContext(connection) as one:
        assert len(api.get("/api/v1/transfers").json()["results"]) == 1
    settling(3)
    with CaptureQueriesContext(connection) as four:
        page = api.get("/api/v1/transfers").json()["results"]
    assert len(page) == 4 and all(t["settlement"]["tx_hash"] for t in page)
    assert len(four.captured_queries) == len(one.captured_queries)
