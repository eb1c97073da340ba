"""Settlement on two chains at once (issue 13): KGST on the session's anvil (chain 31337, BNB Chain's stand-in) and
USDKG on a second anvil (chain 31338, Ethereum's), each with its own RPC connection, hot wallets, nonces, float and
reconciliation, driven by one real Celery worker and beat. One chain's RPC going down leaves the other paying."""

import os
import uuid
from decimal import Decimal

import pytest
from django.conf import settings
from eth_account import Account

from onchain import client
from onchain.api import float_covers, payout_request, recipient_check
from onchain.errors import RecipientRefused
from onchain.models import Batch, HotWallet, OperatorAlert, Payout, TreasurySnapshot
from onchain.services.reconcile import payouts_paid_on_chain, reconcile
from tests.conftest import new_recipient, token_balance, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module", autouse=True)
def _second_chain_before_the_worker(usdkg_anvil):
    """The worker (celery_processes) must start knowing the second chain's RPC URL: this runs before it."""
    return usdkg_anvil


def _request(symbol, to, amount):
    return payout_request(reference=str(uuid.uuid4()), to_address=to, amount=Decimal(amount), symbol=symbol)


def worker_log():
    return (settings.VAR_DIR / "worker.log").read_text(errors="replace")


def _confirmed(*payouts):
    return all(Payout.objects.get(pk=p.pk).status == Payout.Status.CONFIRMED for p in payouts)


def test_a_payout_on_each_chain_completes_through_the_worker(usdkg_chain, chain, celery_processes):
    """A KGST payout on chain 31337 and a USDKG payout on chain 31338, requested together: both confirmed by the
    worker, each paid once on its own chain by a batch of that chain's wallet, in the token's own decimals (USDKG 6);
    each chain's reconciliation finds its transfer and no mismatch."""
    kgst, usdkg = chain["token"], usdkg_chain["token"]
    assert (kgst.chain.chain_id, usdkg.chain.chain_id, usdkg.decimals) == (31337, 31338, 6)
    to_kgst, to_usdkg = new_recipient(), new_recipient()
    p_kgst, p_usdkg = _request("KGST", to_kgst, "12.5"), _request("USDKG", to_usdkg, "7.25")
    assert p_usdkg.token == usdkg and p_usdkg.amount_base_units == 7_250_000
    wait_for(lambda: _confirmed(p_kgst, p_usdkg), timeout=90, what="both payouts to be confirmed")
    assert token_balance(kgst, to_kgst) == 12_500_000_000_000_000_000
    assert token_balance(usdkg, to_usdkg) == 7_250_000
    for payout, wallet in ((p_kgst, chain["wallet"]), (p_usdkg, usdkg_chain["wallet"])):
        batch = Batch.objects.get(payouts=payout)
        assert batch.wallet == wallet and batch.status == Batch.Status.FINAL
        assert payouts_paid_on_chain(token_id=payout.token_id) == {payout.reference: 1}
        reconcile(token_id=payout.token_id)
    # The chains' own reconciliation alerts name a token or a wallet; beat's treasury reconciliation (payments) may
    # meanwhile say that a float has no opening balance booked (this test books none): not what this test is about.
    assert not OperatorAlert.objects.filter(kind=OperatorAlert.Kind.RECONCILIATION).exclude(
        token=None, wallet=None).exists()


def test_one_chain_down_leaves_the_other_paying(usdkg_chain, chain, celery_processes):
    """USDKG's RPC taken down (its relay drops and refuses connections): a KGST payout requested after still
    confirms while the USDKG payout waits unpaid; the RPC back, the USDKG payout confirms, paid exactly once."""
    switch = usdkg_chain["switch"]
    switch.down()
    try:
        to_usdkg, to_kgst = new_recipient(), new_recipient()
        p_usdkg = _request("USDKG", to_usdkg, "3")
        p_kgst = _request("KGST", to_kgst, "4")
        wait_for(lambda: _confirmed(p_kgst), timeout=90, what="the KGST payout to confirm with USDKG's RPC down")
        assert Payout.objects.get(pk=p_usdkg.pk).status in (Payout.Status.QUEUED, Payout.Status.BATCHED)
        # The worker did meet the dead RPC (and went on): its passes over the USDKG chain failed meanwhile.
        wait_for(lambda: f"settlement_pass_failed pass=track id={usdkg_chain['chain'].pk} " in worker_log(),
                 timeout=30, what="the worker's tracking pass over the USDKG chain to fail")
    finally:
        switch.restore()
    wait_for(lambda: _confirmed(p_usdkg), timeout=90, what="the USDKG payout to confirm once its RPC is back")
    assert token_balance(usdkg_chain["token"], to_usdkg) == 3_000_000
    assert payouts_paid_on_chain(token_id=usdkg_chain["token"].pk) == {p_usdkg.reference: 1}


def test_the_same_address_keeps_a_nonce_per_chain(usdkg_chain, chain, celery_processes):
    """The KGST hot wallet's address registered on the USDKG chain too (same key): two wallet rows, and each chain's
    batches take that chain's nonces (from 0 on the chain it never sent on), however many it sent on the other."""
    address = os.environ["HOT_WALLET_ADDRESS"]
    from onchain.services.devchain import devchain_bootstrap

    _, usdkg, wallet_b = devchain_bootstrap(wallets=[(address, "HOT_WALLET_PRIVATE_KEY")],
                                            chain_id=usdkg_chain["chain_id"], symbol="USDKG",
                                            chain_name=usdkg_chain["chain"].name)
    w3_a, w3_b = client.web3(chain["chain"]), client.web3(usdkg.chain)
    start_a, start_b = w3_a.eth.get_transaction_count(address), w3_b.eth.get_transaction_count(address)
    assert start_b == 0
    payouts = [_request(symbol, new_recipient(), "1") for symbol in ("KGST", "USDKG", "KGST", "USDKG")]
    wait_for(lambda: _confirmed(*payouts), timeout=90, what="the payouts on both chains to confirm")
    assert HotWallet.objects.filter(address=address).count() == 2
    for wallet, w3, start in ((chain["wallet"], w3_a, start_a), (wallet_b, w3_b, start_b)):
        wallet.refresh_from_db()
        nonces = sorted(Batch.objects.filter(wallet=wallet).values_list("nonce", flat=True))
        assert nonces == list(range(start, start + len(nonces))) and nonces
        assert wallet.next_nonce == w3.eth.get_transaction_count(address) == start + len(nonces)


def test_recipients_float_and_treasury_are_per_chain(usdkg_chain, chain):
    """A recipient is checked on the chain of the token paid: an address with code on the USDKG chain only is
    refused for USDKG and accepted for KGST. Each token has its own float snapshot, in its own decimals."""
    holder = Account.create().address
    usdkg_chain["w3"].provider.make_request("anvil_setCode", [holder, "0x6000"])
    with pytest.raises(RecipientRefused) as refused:
        recipient_check(holder, symbol="USDKG")
    assert refused.value.kind == "contract"
    assert recipient_check(holder, symbol="KGST") is None
    usdkg = usdkg_chain["token"]
    snapshot = TreasurySnapshot.objects.get(token=usdkg)
    assert snapshot.float_base_units == token_balance(usdkg, usdkg.batch_contract) > 0
    assert TreasurySnapshot.objects.get(token=chain["token"]).float_base_units == token_balance(
        chain["token"], chain["token"].batch_contract)
    whole = Decimal(int(snapshot.float_base_units)).scaleb(-6)
    assert float_covers(amount=whole, symbol="USDKG")
    assert not float_covers(amount=whole + Decimal("0.000001"), symbol="USDKG")


def test_each_chain_has_its_own_connection_and_unnamed_chains_share_the_default(usdkg_chain, chain):
    """CHAIN_RPCS names the USDKG chain: its connection uses only its URL; the KGST chain, not named there, uses the
    default CHAIN_RPC_URL(S) through the very connection `client.web3()` returns (one set of skipped URLs)."""
    from onchain.rpc import rpc_urls

    assert rpc_urls(31338) == [usdkg_chain["switch"].url]
    assert rpc_urls(31337) == rpc_urls() == (settings.CHAIN_RPC_URLS or [settings.CHAIN_RPC_URL])
    assert client.web3(chain["chain"]) is client.web3() is not client.web3(usdkg_chain["chain"])
    assert client.web3(usdkg_chain["chain"]).eth.chain_id == 31338 and client.web3(chain["chain"]).eth.chain_id == 31337
