"""The settlement engine on a real anvil: batches through our contract (and single transfers when batching is
off), nonces under the wallet lock, signed bytes stored before broadcast, identical rebroadcasts, finality
before anything is reported, ceilings, halts, and the key kept out of the database."""

import os

import pytest
from eth_account import Account
from eth_utils import keccak

from onchain.models import Batch, ChainTransaction, HotWallet, Payout
from onchain.services import tracking
from onchain.services.reconcile import payouts_paid_on_chain
from onchain.signer import signer_for
from tests.conftest import token_balance, wait_for
from tests.onchain.helpers import all_final, build, queue, recording_listener, send, track_until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def listener():
    with recording_listener() as recorded:
        yield recorded


def test_a_batch_pays_every_payout_exactly_once_and_reports_only_when_final(chain, listener):
    """25 payouts go out as one contract transaction; each recipient gets exactly its base units; the listener
    hears of them once, after the block is final, and the chain's Transfer logs count one payment each."""
    token, w3 = chain["token"], chain["w3"]
    queued = [queue(f"ref-{i}", amount=f"{100 + i}.{i:02d}") for i in range(25)]
    built = build(token)
    assert len(built) == 1 and built[0].count == 25 and built[0].mode == Batch.Mode.CONTRACT
    send(built)
    batch = Batch.objects.get()
    tx = batch.attempts.get()
    receipt = w3.eth.wait_for_transaction_receipt(tx.tx_hash, timeout=10, poll_latency=0.1)
    tracking.chain_track(chain_id=chain["chain"].pk)
    batch.refresh_from_db()
    if batch.status != Batch.Status.FINAL:
        assert listener.final == []  # mined, not yet final: nothing reported
    all_final(chain["chain"])
    assert w3.eth.get_block("finalized")["number"] >= receipt["blockNumber"]
    for payout in queued:
        assert token_balance(token, payout.to_address) == payout.amount_base_units
    assert sorted(r for r, _ in listener.final) == sorted(p.reference for p in queued)
    assert {h for _, h in listener.final} == {tx.tx_hash}
    assert set(payouts_paid_on_chain(token_id=token.pk).values()) == {1}
    tracking.chain_track(chain_id=chain["chain"].pk)
    assert len(listener.final) == 25


def test_single_transfers_when_batching_is_off(chain, listener, settings):
    """With batching off each payout is its own ERC-20 transfer from the hot wallet, at consecutive nonces."""
    settings.SETTLEMENT_BATCHING = False
    queued = [queue(f"single-{i}", amount="5.00") for i in range(3)]
    built = build(chain["token"])
    assert [b.mode for b in built] == [Batch.Mode.SINGLE] * 3
    nonces = [b.nonce for b in built]
    assert nonces == list(range(nonces[0], nonces[0] + 3))
    send(built)
    all_final(chain["chain"])
    assert all(token_balance(chain["token"], p.to_address) == 5 * 10**18 for p in queued)
    assert len(listener.final) == 3


def test_one_payout_per_reference(chain):
    """Requesting the same reference twice returns the first payout; the amount cannot change."""
    first = queue("ref-once", amount="5.00")
    second = queue("ref-once", amount="999.00")
    assert first.pk == second.pk
    assert Payout.objects.get().amount_base_units == 5 * 10**18


def test_batches_take_consecutive_nonces_and_store_bytes_before_broadcast(chain, settings):
    """Each batch claims the wallet's next nonce under its row lock; raw bytes and hash (keccak of the bytes)
    are stored and nothing reaches the node until it is broadcast."""
    settings.BATCH_MAX_SIZE = 4
    start = chain["w3"].eth.get_transaction_count(chain["wallet"].address, "pending")
    for i in range(10):
        queue(f"nonce-{i}")
    built = build(chain["token"])
    assert [b.count for b in built] == [4, 4, 2]
    attempts = list(ChainTransaction.objects.order_by("nonce"))
    assert [a.nonce for a in attempts] == [start, start + 1, start + 2]
    assert all("0x" + keccak(bytes(a.raw_tx)).hex() == a.tx_hash for a in attempts)
    assert chain["w3"].eth.get_transaction_count(chain["wallet"].address, "pending") == start  # nothing sent yet
    assert HotWallet.objects.get(pk=chain["wallet"].pk).next_nonce == start + 3
    assert Payout.objects.filter(status=Payout.Status.BATCHED).count() == 10


def test_crash_between_store_and_broadcast_loses_nothing(chain):
    """A worker that dies after committing the signed batch but before sending it: the tracker sends the stored
    bytes, and the mined transaction is exactly that hash."""
    payout = queue("crash", amount="7.00")
    (batch,) = build(chain["token"])  # signed and committed; the send task never runs
    stored = batch.attempts.get()
    all_final(chain["chain"])
    assert chain["w3"].eth.get_transaction_receipt(stored.tx_hash)["status"] == 1
    assert ChainTransaction.objects.count() == 1
    assert token_balance(chain["token"], payout.to_address) == 7 * 10**18


def test_rebroadcasting_the_same_bytes_is_harmless(chain):
    """Sending a batch again, before and after it is mined, neither fails nor pays twice."""
    from onchain.services.sending import tx_broadcast

    payout = queue("twice", amount="3.00")
    built = build(chain["token"])
    send(built)
    send(built)
    tx = ChainTransaction.objects.get()
    chain["w3"].eth.wait_for_transaction_receipt(tx.tx_hash, timeout=10, poll_latency=0.1)
    assert tx_broadcast(tx=tx) is True  # the node has it mined: "nonce too low" with our own hash
    all_final(chain["chain"])
    assert token_balance(chain["token"], payout.to_address) == 3 * 10**18
    assert payouts_paid_on_chain(token_id=chain["token"].pk)["twice"] == 1


def test_per_transaction_ceiling_fails_a_payout_and_cuts_a_batch(chain, listener):
    """A payout above the ceiling is never signed and its caller is told; the others are split so that no
    transaction carries more than the ceiling."""
    HotWallet.objects.update(max_tx_base_units=10 * 10**18)
    big = queue("big", amount="10.01")
    small = [queue(f"small-{i}", amount="4.00") for i in range(3)]
    built = build(chain["token"])
    assert [b.total_base_units for b in built] == [8 * 10**18, 4 * 10**18]
    big.refresh_from_db()
    assert big.status == Payout.Status.FAILED
    assert listener.failed == [("big", "exceeds the hot wallet's per-transaction ceiling")]
    assert not ChainTransaction.objects.filter(batch__payouts=big).exists()
    assert all(p.pk in {x.pk for b in built for x in b.payouts.all()} for p in small)


def test_daily_limit_stops_signing_for_the_day(chain):
    """Once the wallet has signed its daily limit, further payouts wait (and an operator is alerted)."""
    from onchain.models import OperatorAlert

    HotWallet.objects.update(daily_limit_base_units=10 * 10**18)
    queue("d1", amount="6.00")
    build(chain["token"])
    queue("d2", amount="6.00")
    assert build(chain["token"]) == []
    assert Payout.objects.get(reference="d2").status == Payout.Status.QUEUED
    assert OperatorAlert.objects.filter(kind="limit").exists()


def test_halted_wallet_signs_nothing(chain):
    """A halted wallet takes no batches; its payouts stay queued until an operator resumes it."""
    HotWallet.objects.update(halted=True, halt_reason="reconciliation mismatch")
    queue("halt")
    assert build(chain["token"]) == []
    assert Payout.objects.get().status == Payout.Status.QUEUED
    assert not ChainTransaction.objects.exists()


def test_batches_are_spread_over_wallets(chain, settings):
    """With two active wallets, a backlog is split between them, each with its own nonce sequence."""
    from tests.conftest import second_wallet

    settings.BATCH_MAX_SIZE = 5
    second_wallet(chain)
    for i in range(20):
        queue(f"spread-{i}", amount="1.00")
    built = build(chain["token"])
    assert len(built) == 4
    assert len({b.wallet_id for b in built}) == 2
    send(built)
    all_final(chain["chain"])
    assert set(payouts_paid_on_chain(token_id=chain["token"].pk).values()) == {1}


def test_hot_wallet_key_never_reaches_the_database_or_repr(chain):
    """The key lives only in the environment: not in any stored row, not in the signer's repr."""
    from django.db import connection

    key = os.environ["HOT_WALLET_PRIVATE_KEY"]
    queue("key")
    send(build(chain["token"]))
    needle = key.removeprefix("0x").lower()
    with connection.cursor() as cursor:
        cursor.execute("SELECT row_to_json(w)::text FROM onchain_hotwallet w UNION ALL "
                       "SELECT row_to_json(t)::text FROM onchain_chaintransaction t UNION ALL "
                       "SELECT row_to_json(b)::text FROM onchain_batch b UNION ALL "
                       "SELECT row_to_json(p)::text FROM onchain_payout p")
        rows = " ".join(r[0] for r in cursor.fetchall()).lower()
    assert rows and needle not in rows
    assert needle not in repr(signer_for("HOT_WALLET_PRIVATE_KEY")).lower()
    assert Account.from_key(key).address == chain["wallet"].address


def test_payout_call_data_is_the_contracts_own_encoding(chain):
    """The builder encodes payout(batchId, unit, width, packed) with eth_abi directly (web3's encode_abi was most of a
    batch's build time): the bytes are exactly the contract object's encoding of the same arguments."""
    import random

    from onchain import client
    from onchain.services.batches import _payout_call
    from onchain.services.payout_call import payout_args

    rng = random.Random(13)
    entries = [("0x" + rng.randbytes(20).hex(), rng.randrange(1, 2**96)) for _ in range(200)]
    args = payout_args(rng.randbytes(32), entries)
    contract = client.batch_payout(chain["token"].batch_contract)
    assert _payout_call(args) == bytes.fromhex(contract.encode_abi("payout", args)[2:])


def _many_listener(listener):
    class ManyListener(listener):  # the fixture yields the recording class itself
        calls = []

        @classmethod
        def payouts_final_many(cls, *, finals):
            cls.calls.append(list(finals))
            for references, tx_hash in finals:
                cls.final.extend((r, tx_hash) for r in references)

    return ManyListener


def _paid_by_own_transaction(many, queued):
    paid = {r: h for r, h in many.final}
    assert len(paid) == len(many.final)  # each reference reported once
    assert sorted(paid) == sorted(p.reference for p in queued)
    for payout in Payout.objects.select_related("batch__mined_tx"):
        assert payout.status == Payout.Status.CONFIRMED
        assert paid[payout.reference] == payout.batch.mined_tx.tx_hash


def test_batches_of_one_block_are_made_final_together(chain, settings, listener):
    """Batches mined in the same block are made final in one pass and one transaction: a listener with
    payouts_final_many hears them in one call (never one per batch), each batch's references beside its own
    transaction."""
    from onchain.listener import payout_listener_override

    many = _many_listener(listener)
    settings.BATCH_MAX_SIZE = 3
    queued = [queue(f"many-{i}", amount="2.00") for i in range(9)]
    built = build(chain["token"])
    assert len(built) == 3
    with payout_listener_override(many):
        send(built)
        all_final(chain["chain"])
    blocks = {b.pk: b.block_number for b in Batch.objects.all()}
    assert len(many.calls) <= len(set(blocks.values()))  # at most one call per block, never one per batch
    _paid_by_own_transaction(many, queued)


def test_batches_of_several_blocks_final_by_one_pass_are_made_final_together(chain, settings, listener):
    """A pass that finds several blocks final (it fell behind the chain) makes all their batches final in one
    transaction and one listener call, each batch still reported with its own transaction."""
    from onchain.listener import payout_listener_override

    many = _many_listener(listener)
    settings.BATCH_MAX_SIZE = 2
    queued, w3 = [], chain["w3"]
    with payout_listener_override(many):
        for n in range(2):  # one after the other: each signed only once the one before is mined (seen by a pass)
            queued += [queue(f"blocks-{n}-{i}", amount="3.00") for i in range(2)]
            (batch,) = build(chain["token"])
            send([batch])
            track_until(chain["chain"], lambda b=batch: Batch.objects.get(pk=b.pk).status == Batch.Status.MINED,
                        what="the batch to be mined")
        mined = list(Batch.objects.filter(status=Batch.Status.MINED))
        assert len(mined) == 2 and len({b.block_number for b in mined}) == 2
        top = max(b.block_number for b in mined)
        wait_for(lambda: tracking.final_height(w3, chain["chain"], w3.eth.block_number) >= top,
                 what="both blocks final on chain")
        assert tracking.chain_track(chain_id=chain["chain"].pk) == 2
    assert len(many.calls) == 1 and len(many.calls[0]) == 2
    assert {b.status for b in Batch.objects.all()} == {Batch.Status.FINAL}
    _paid_by_own_transaction(many, queued)
