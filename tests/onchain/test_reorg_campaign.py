"""The reorg campaign, CI-sized (bench/reorg.py is the full one): 10 reorgs of depth 1–5 at seeded moments while
100 payouts are batched, sent, mined and tracked, on an anvil the test mines block by block (so a run is the same
run every time, and nothing waits on a clock). `finalized` is 6 blocks behind the head (`--slots-in-an-epoch 3`), so
every reorg stays above finality, as on a chain that keeps its finality guarantee (a deeper one is measured by the
bench, not asserted here: docs/settlement.md "Reorg").

Pins: after every step no batch is recorded in a block that is not canonical once the tracker has looked, nothing is
reported final above `finalized` or twice, every final batch's block stays canonical; at the end every payout is
paid exactly once on chain (0 double, 0 lost), the chain's total equals the confirmed amounts, nonces have no gap,
and each batch was mined by its one stored transaction (the same signed bytes re-sent, never re-signed)."""

import contextlib
import os
import random

import pytest

from bench.reorgs import reorg_head
from onchain import client
from onchain.models import Batch, Chain, ChainTransaction, OperatorAlert, Payout
from onchain.rpc import web3 as rpc_web3
from onchain.services import devchain, sending, tracking
from tests.onchain.faults import assert_nonces_consecutive, assert_paid_exactly_once, private_anvil, rpc
from tests.onchain.helpers import build, queue, recording_listener, send

pytestmark = pytest.mark.django_db(transaction=True)

SEED = 20261129
PAYOUTS, PER_STEP, REORGS = 100, 5, 10
FINALIZED_LAG = 6  # --slots-in-an-epoch 3


@contextlib.contextmanager
def engine_on_private_anvil(settings, monkeypatch, slots_in_an_epoch):
    """The engine on an anvil of its own mining only on evm_mine (`finalized` 2 x slots_in_an_epoch behind the head);
    the bootstrap's blocks buried below finality first, so no reorg reaches the contracts' deployment."""
    rpc_web3.cache_clear()
    with private_anvil(slots_in_an_epoch=slots_in_an_epoch) as url:
        settings.CHAIN_RPC_URL, settings.CHAIN_RPC_URLS = url, [url]
        rpc_web3.cache_clear()
        monkeypatch.setattr(devchain, "_DEPLOYED", {})  # same chain id as the session's anvil
        ch, token, wallet = devchain.devchain_bootstrap(hot_wallet_address=os.environ["HOT_WALLET_ADDRESS"])
        Chain.objects.filter(pk=ch.pk).update(stuck_after_seconds=0)  # no fee bumps: one signed attempt per batch
        w3 = client.web3()
        rpc(w3, "evm_setAutomine", False)
        for _ in range(2 * slots_in_an_epoch + 2):
            rpc(w3, "evm_mine")
        with recording_listener() as listener:
            yield {"chain": ch, "token": token, "wallet": wallet, "w3": w3, "listener": listener}
    rpc_web3.cache_clear()


@pytest.fixture
def campaign_chain(settings, monkeypatch):
    with engine_on_private_anvil(settings, monkeypatch, slots_in_an_epoch=FINALIZED_LAG // 2) as ctx:
        yield ctx


@pytest.fixture
def shallow_finality_chain(settings, monkeypatch):
    """`finalized` 2 blocks behind the head, as `make run` and the benchmarks run anvil."""
    with engine_on_private_anvil(settings, monkeypatch, slots_in_an_epoch=1) as ctx:
        yield ctx


def plan(rng, steps):
    """step -> (depth, when, share): `mined` = after a block is mined and before the tracker saw it, `tracked` =
    after; every other reorg puts the replaced blocks' transactions back into the new branch (a prefix per
    sender), the others drop them all."""
    return {step: (rng.randint(1, 5), rng.choice(["mined", "tracked"]), i % 2)
            for i, step in enumerate(sorted(rng.sample(range(steps), REORGS)))}


def check_step(w3, listener):
    """What must hold after any tracker pass, whatever reorg came before it."""
    finalized = w3.eth.get_block("finalized")["number"]
    refs = [r for r, _ in listener.final]
    assert len(refs) == len(set(refs)), "a payout reported final twice"
    for batch in Batch.objects.filter(status__in=[Batch.Status.MINED, Batch.Status.FINAL]):
        assert batch.block_hash == w3.eth.get_block(batch.block_number)["hash"].to_0x_hex(), batch
        if batch.status == Batch.Status.FINAL:
            assert batch.block_number <= finalized, batch
    reported = set(refs)
    assert reported == set(Payout.objects.filter(status=Payout.Status.CONFIRMED).values_list("reference", flat=True))


def test_ten_reorgs_during_a_hundred_payouts_pay_each_once(campaign_chain, caplog):
    caplog.set_level("WARNING", logger="onchain.services.tracking")
    w3, ch, token, wallet, listener = (campaign_chain[k] for k in ("w3", "chain", "token", "wallet", "listener"))
    rng = random.Random(SEED)
    start = w3.eth.get_transaction_count(wallet.address, "pending")
    feeding = PAYOUTS // PER_STEP
    reorgs = plan(rng, feeding + FINALIZED_LAG)
    done, step = [], 0
    while Payout.objects.exclude(status=Payout.Status.CONFIRMED).exists() or step < feeding or len(done) < REORGS:
        assert step < feeding + 60, f"not settled after {step} blocks"
        if step < feeding:
            for i in range(PER_STEP):
                n = step * PER_STEP + i
                queue(f"reorg-campaign-{n}", amount=f"{1 + n}.{(7 * n) % 100:02d}")
            send(build(token))
        rpc(w3, "evm_mine")
        depth, when, share = reorgs.get(step, (None, None, None))
        if when == "mined":
            done.append(reorg_head(w3, depth, rng, reinclude_share=share))
        tracking.chain_track(chain_id=ch.pk)
        if when == "tracked":
            done.append(reorg_head(w3, depth, rng, reinclude_share=share))
            tracking.chain_track(chain_id=ch.pk)
        check_step(w3, listener)
        step += 1

    assert len(done) == REORGS and not any(r.below_finalized for r in done)
    ours = set(ChainTransaction.objects.values_list("tx_hash", flat=True))
    dropped = {h for r in done for h in r.dropped} & ours
    assert dropped and {h for r in done for h in r.reincluded} & ours, "the campaign hit no batch"
    assert any(r.getMessage().startswith("batch_reorged") for r in caplog.records), "no batch was seen mined, then not"
    assert ChainTransaction.objects.count() == Batch.objects.count()  # re-sent, never re-signed
    assert sorted(r for r, _ in listener.final) == sorted(Payout.objects.values_list("reference", flat=True))
    assert_nonces_consecutive(wallet, start, w3=w3)
    assert_paid_exactly_once(token, expected=PAYOUTS)


def test_a_final_batch_a_reorg_below_finality_took_off_chain_is_sent_again_once(shallow_finality_chain):
    """anvil lets a reorg replace blocks at or below its `finalized` tag, which a chain with finality never does. When
    that takes away a batch the engine made final (its transfers completed), the wallet's chain nonce falls to that
    batch's: the tracker raises a `nonce` alert naming the batch and sends its identical bytes again (same nonce, same
    batch id), the later batch follows, nothing is reported final a second time, and every payout is on chain once."""
    w3, ch, token, wallet, listener = (shallow_finality_chain[k] for k in ("w3", "chain", "token", "wallet",
                                                                          "listener"))
    start = w3.eth.get_transaction_count(wallet.address, "pending")
    for n in range(3):
        queue(f"deep-{n}", amount=f"{1 + n}.25")
    (first,) = build(token)
    send([first])
    rpc(w3, "evm_mine")
    for _ in range(2):
        rpc(w3, "evm_mine")
    tracking.chain_track(chain_id=ch.pk)  # seen mined
    tracking.chain_track(chain_id=ch.pk)  # and final: its block is `finalized`
    first.refresh_from_db()
    assert first.status == Batch.Status.FINAL and len(listener.final) == 3
    for n in range(3, 5):
        queue(f"deep-{n}", amount=f"{1 + n}.25")
    (second,) = build(token)
    send([second])
    rpc(w3, "evm_mine")
    tracking.chain_track(chain_id=ch.pk)

    done = reorg_head(w3, 4, random.Random(SEED), reinclude_share=0)
    original = first.mined_tx.tx_hash
    assert done.below_finalized and original in done.dropped
    assert w3.eth.get_transaction_count(wallet.address, "latest") == first.nonce
    tracking.chain_track(chain_id=ch.pk)
    (alert,) = OperatorAlert.objects.filter(kind="nonce")
    assert f"batch {first.pk}" in alert.message and original in alert.message
    assert w3.eth.get_transaction(original)["blockNumber"] is None  # the same bytes, back in the pool
    first.refresh_from_db()
    assert first.status == Batch.Status.FINAL

    for _ in range(10):
        rpc(w3, "evm_mine")
        tracking.chain_track(chain_id=ch.pk)
    second.refresh_from_db()
    assert second.status == Batch.Status.FINAL
    assert w3.eth.get_transaction_receipt(original)["status"] == 1
    assert sorted(r for r, _ in listener.final) == [f"deep-{n}" for n in range(5)]  # each reported once
    assert ChainTransaction.objects.count() == 2 and OperatorAlert.objects.filter(kind="nonce").count() == 1
    assert_nonces_consecutive(wallet, start, w3=w3)
    assert_paid_exactly_once(token, expected=5)


def test_a_reorg_between_nonce_too_low_and_the_ownership_look_does_not_halt_the_wallet(campaign_chain, monkeypatch):
    """The node answers "nonce too low" to a rebroadcast of our mined batch, and a reorg takes that block away
    before the sender looks for our attempt at the nonce (a wrapper runs the reorg just before the look): our
    transaction is then nowhere, but the nonce is free again, so it was not someone else's. No halt and no alert
    (the full campaign halted a wallet this way); the batch is sent again, mined and paid once."""
    w3, ch, token, wallet = (campaign_chain[k] for k in ("w3", "chain", "token", "wallet"))
    start = w3.eth.get_transaction_count(wallet.address, "pending")
    for n in range(2):
        queue(f"race-{n}", amount=f"{1 + n}.50")
    (batch,) = build(token)
    send([batch])
    rpc(w3, "evm_mine")
    tracking.chain_track(chain_id=ch.pk)
    batch.refresh_from_db()
    assert batch.status == Batch.Status.MINED
    look = sending._ours_at_nonce

    def reorg_first(node, tx):
        monkeypatch.setattr(sending, "_ours_at_nonce", look)
        assert batch.mined_tx.tx_hash in reorg_head(w3, 1, random.Random(SEED), reinclude_share=0).dropped
        return look(node, tx)

    monkeypatch.setattr(sending, "_ours_at_nonce", reorg_first)
    sending.tx_broadcast(tx=batch.mined_tx)
    assert sending._ours_at_nonce is look  # the node did answer "nonce too low" and the reorg ran
    wallet.refresh_from_db()
    assert not wallet.halted and not OperatorAlert.objects.exists()

    for _ in range(FINALIZED_LAG + 3):
        rpc(w3, "evm_mine")
        tracking.chain_track(chain_id=ch.pk)
    batch.refresh_from_db()
    assert batch.status == Batch.Status.FINAL and ChainTransaction.objects.count() == 1
    assert_nonces_consecutive(wallet, start, w3=w3)
    assert_paid_exactly_once(token, expected=2)
