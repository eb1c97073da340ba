"""Fault tests for the settlement engine on real servers: stuck and dropped transactions, reorgs, a failing
RPC, concurrent nonce claims from several processes, Celery workers SIGKILLed at every failpoint, a Redis
restart, a foreign transaction from a hot wallet, and the treasury checks. Each test ends by counting, from
the chain's own Transfer logs, that every payout was paid exactly once (none twice, none lost) and that the
on-chain total equals the confirmed payouts to the base unit (tests/onchain/faults.py)."""

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
import redis
from django.conf import settings
from eth_account import Account
from web3.exceptions import TransactionNotFound

from gateway.dev.services import REPO, free_port
from onchain import client, failpoints
from onchain import rpc as onchain_rpc
from onchain.failpoints import POINTS
from onchain.models import (
    Batch,
    Chain,
    ChainTransaction,
    HotWallet,
    OperatorAlert,
    Payout,
    ReconciliationCursor,
    Token,
    TreasurySnapshot,
)
from onchain.rpc import web3 as rpc_web3
from onchain.services import alerts, devchain, reconcile, tracking, treasury
from tests.conftest import _test_database_url, new_recipient, second_wallet, token_balance, wait_for
from tests.onchain.faults import (
    CeleryRig,
    assert_nonces_consecutive,
    assert_paid_exactly_once,
    dead_url,
    failpoints_env,
    mining_paused,
    payouts_create,
    private_anvil,
    quiet_nonce,
    redis_kill,
    redis_start,
    rpc,
    silent_server,
)
from tests.onchain.helpers import all_final, build, queue, recording_listener, send

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def listener():
    with recording_listener() as recorded:
        yield recorded


@pytest.fixture
def rpc_reset(settings):
    """The engine's web3 is cached per process: rebuild it from this test's RPC settings, and after."""
    rpc_web3.cache_clear()
    yield
    rpc_web3.cache_clear()


def pending_nonce(chain):
    return quiet_nonce(chain["w3"], chain["wallet"].address)


def queue_many(prefix, n):
    return [queue(f"{prefix}-{i}", amount=f"{1 + i}.{(7 * i) % 100:02d}") for i in range(n)]


def reconcile_through(token, block):
    """Run reconciliation until its cursor has passed `block`; return (logs seen, problems found) summed."""
    seen = problems = 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        s, p = reconcile.reconcile(token_id=token.pk)
        seen, problems = seen + s, problems + p
        cursor = ReconciliationCursor.objects.filter(token=token).first()
        if cursor and cursor.last_block >= block:
            return seen, problems
        time.sleep(0.3)
    pytest.fail(f"reconciliation did not reach block {block}")


# ---------------------------------------------------------------------------------------------------------------
# 1. Stuck transaction replaced


def test_underpriced_transaction_is_replaced_with_both_fees_bumped_and_paid_once(chain, listener):
    """Mining paused and the next base fee raised above a sent batch's max fee: after `stuck_after_seconds`
    the tracker signs a replacement at the same nonce with the same call, `replaces` pointing at the original,
    both fee fields at least 12.5% higher. Once blocks resume, exactly one attempt per nonce is mined, the others are
    superseded, and every payout is paid once."""
    token, ch = chain["token"], chain["chain"]
    start = pending_nonce(chain)
    Chain.objects.filter(pk=ch.pk).update(stuck_after_seconds=1)
    with mining_paused() as anvil:
        queue_many("stuck", 3)
        (batch,) = build(token)
        send([batch])
        original = batch.attempts.get()
        assert anvil.eth.get_transaction(original.tx_hash)["blockNumber"] is None  # in the pool, unmined
        # Underpriced now, yet within one 12.5% bump (anvil refuses, rather than pools, a transaction whose max fee
        # is below the next block's base fee).
        rpc(anvil, "anvil_setNextBlockBaseFeePerGas", hex(int(original.max_fee_per_gas) * 21 // 20))
        time.sleep(1.2)
        tracking.chain_track(chain_id=ch.pk)
        replacement = ChainTransaction.objects.get(replaces=original)
        assert (replacement.batch_id, replacement.nonce, replacement.to_address, bytes(replacement.data),
                replacement.gas_limit) == (batch.pk, original.nonce, original.to_address, bytes(original.data),
                                           original.gas_limit)
        assert replacement.max_fee_per_gas * 1000 >= original.max_fee_per_gas * 1125
        assert replacement.max_priority_fee_per_gas * 1000 >= original.max_priority_fee_per_gas * 1125
        assert anvil.eth.get_transaction(replacement.tx_hash)["nonce"] == original.nonce  # the node took it
        assert listener.final == []
    all_final(ch, timeout=60)
    batch.refresh_from_db()
    assert batch.status == Batch.Status.FINAL and batch.attempts.count() >= 2
    assert batch.mined_tx.replaces_id is not None or batch.mined_tx.pk == original.pk
    assert_nonces_consecutive(chain["wallet"], start)
    assert sorted(r for r, _ in listener.final) == sorted(Payout.objects.values_list("reference", flat=True))
    assert {h for _, h in listener.final} == {batch.mined_tx.tx_hash}
    assert_paid_exactly_once(token, expected=3)


def test_a_batch_unmined_long_after_signing_raises_one_stuck_batch_alert(chain, listener, settings):
    """Mining paused: a sent batch older than BATCH_STUCK_ALERT_MINUTES raises one `stuck_batch` alert naming it;
    the next pass updates that alert rather than opening another. Once blocks resume it is paid once."""
    settings.BATCH_STUCK_ALERT_MINUTES = 15
    token, ch = chain["token"], chain["chain"]
    Chain.objects.filter(pk=ch.pk).update(stuck_after_seconds=3600)  # no fee bump in this test
    with mining_paused():
        queue_many("unmined", 1)
        (batch,) = build(token)
        send([batch])
        tracking.chain_track(chain_id=ch.pk)
        assert not OperatorAlert.objects.filter(kind="stuck_batch").exists()
        Batch.objects.filter(pk=batch.pk).update(created_at=batch.created_at - timedelta(minutes=16))
        tracking.chain_track(chain_id=ch.pk)
        tracking.chain_track(chain_id=ch.pk)
        (alert,) = OperatorAlert.objects.filter(kind="stuck_batch")
        assert f"batch {batch.pk}" in alert.message and "not mined 16 min" in alert.message
    all_final(ch, timeout=60)
    assert_paid_exactly_once(token, expected=1)


# ---------------------------------------------------------------------------------------------------------------
# 2. Dropped transaction


def test_dropped_transaction_is_rebroadcast_byte_for_byte(chain, listener, settings):
    """A sent batch the node forgets (anvil_dropTransaction) while blocks are paused: the tracker sends the
    stored bytes again (the node knows the same hash again, no replacement is signed before stuck_after), and
    the mined transaction is exactly the stored original. Paid once."""
    settings.PAYOUT_REBROADCAST_AFTER_SECONDS = 1
    token, ch = chain["token"], chain["chain"]
    start = pending_nonce(chain)
    with mining_paused() as anvil:
        queue_many("dropped", 2)
        (batch,) = build(token)
        send([batch])
        original = batch.attempts.get()
        assert rpc(anvil, "anvil_dropTransaction", original.tx_hash) == original.tx_hash
        with pytest.raises(TransactionNotFound):
            anvil.eth.get_transaction(original.tx_hash)
        time.sleep(1.2)
        tracking.chain_track(chain_id=ch.pk)
        again = anvil.eth.get_transaction(original.tx_hash)  # the very same hash, so the very same bytes
        assert again["nonce"] == original.nonce and again["blockNumber"] is None
        original.refresh_from_db()
        assert original.broadcast_count == 2
        assert ChainTransaction.objects.count() == 1
    all_final(ch)
    batch.refresh_from_db()
    assert batch.mined_tx_id == original.pk and ChainTransaction.objects.count() == 1
    assert chain["w3"].eth.get_transaction_receipt(original.tx_hash)["status"] == 1
    assert_nonces_consecutive(chain["wallet"], start)
    assert_paid_exactly_once(token, expected=2)


# ---------------------------------------------------------------------------------------------------------------
# 3. Reorgs before finality


@pytest.fixture
def manual_chain(settings, rpc_reset, monkeypatch):
    """The engine on an anvil of its own that mines only when told (evm_mine), so the test owns the head.
    `--slots-in-an-epoch 3` puts `finalized` 6 blocks behind the head, so reorgs of depth 1–5 stay above
    finality (anvil would also reorg "finalized" blocks; those are outside the engine's model)."""
    with private_anvil(slots_in_an_epoch=3) as url:
        settings.CHAIN_RPC_URL, settings.CHAIN_RPC_URLS = url, [url]
        rpc_web3.cache_clear()
        # Same chain id as the session's anvil: keep devchain's per-process deployment memo apart.
        monkeypatch.setattr(devchain, "_DEPLOYED", {})
        ch, token, wallet = devchain.devchain_bootstrap(hot_wallet_address=os.environ["HOT_WALLET_ADDRESS"])
        Chain.objects.filter(pk=ch.pk).update(stuck_after_seconds=0)  # no fee bumps: the bytes never change
        w3 = client.web3()
        rpc(w3, "evm_setAutomine", False)
        yield {"chain": ch, "token": token, "wallet": wallet, "w3": w3}
        rpc_web3.cache_clear()


def mine(w3, blocks=1):
    for _ in range(blocks):
        rpc(w3, "evm_mine")


def canonical_hash(w3, number):
    return w3.eth.get_block(number)["hash"].to_0x_hex()


def track_one_block_at_a_time(manual_chain, batch, listener, blocks=20):
    """Mine a block, track, and check after every pass: the recorded block is canonical, and nothing is
    reported final (batch or listener) while its block is above `finalized`."""
    w3, ch = manual_chain["w3"], manual_chain["chain"]
    for _ in range(blocks):
        mine(w3)
        tracking.chain_track(chain_id=ch.pk)
        finalized = w3.eth.get_block("finalized")["number"]
        batch.refresh_from_db()
        if batch.block_hash:
            assert batch.block_hash == canonical_hash(w3, batch.block_number)
        if listener.final or batch.status == Batch.Status.FINAL:
            assert batch.status == Batch.Status.FINAL and batch.block_number <= finalized
            assert len(listener.final) == batch.count
            return batch
    pytest.fail(f"batch not final after {blocks} blocks: {batch}")


@pytest.mark.parametrize("reincluded", [False, True], ids=["dropped-by-reorg", "reincluded-by-reorg"])
@pytest.mark.parametrize("depth", [1, 2, 3, 4, 5])
def test_reorg_before_finality_pays_once_and_reports_only_the_final_block(manual_chain, listener, depth, reincluded):
    """A batch mined `depth` blocks deep (above `finalized`) and tracked as mined; then the last `depth` blocks
    are replaced (anvil_reorg). Dropped by the reorg (anvil forgets the transaction): the tracker moves the batch
    back to `broadcast` and sends the identical bytes again. Re-included in the new branch: the tracker records
    the new block. Either way the recorded block hash is the canonical one after each pass, nothing is reported
    final before its (new) block is final, the batch completes with its one original transaction, paid once."""
    token, ch, w3, wallet = (manual_chain[k] for k in ("token", "chain", "w3", "wallet"))
    start = w3.eth.get_transaction_count(wallet.address, "pending")
    queue_many("reorg", 3)
    (batch,) = build(token)
    send([batch])
    tx = batch.attempts.get()
    mine(w3)
    mined_at = w3.eth.get_transaction_receipt(tx.tx_hash)["blockNumber"]
    mine(w3, depth - 1)
    head = w3.eth.block_number
    assert head == mined_at + depth - 1 and w3.eth.get_block("finalized")["number"] < mined_at
    tracking.chain_track(chain_id=ch.pk)
    batch.refresh_from_db()
    assert (batch.status, batch.block_number) == (Batch.Status.MINED, mined_at)
    old_hash = batch.block_hash

    offset = depth - 1  # re-included in the new head block: another number unless depth is 1
    rpc(w3, "anvil_reorg", depth, [["0x" + bytes(tx.raw_tx).hex(), offset]] if reincluded else [])
    assert w3.eth.block_number == head and canonical_hash(w3, mined_at) != old_hash
    tracking.chain_track(chain_id=ch.pk)
    batch.refresh_from_db()
    if reincluded:
        assert (batch.status, batch.block_number) == (Batch.Status.MINED, mined_at + offset)
        assert batch.block_hash == canonical_hash(w3, mined_at + offset) != old_hash
    else:
        assert (batch.status, batch.block_hash, batch.mined_tx_id) == (Batch.Status.BROADCAST, "", None)
        assert w3.eth.get_transaction(tx.tx_hash)["blockNumber"] is None  # the same bytes, back in the pool
    assert listener.final == []

    batch = track_one_block_at_a_time(manual_chain, batch, listener)
    assert batch.mined_tx_id == tx.pk and ChainTransaction.objects.count() == 1
    assert {h for _, h in listener.final} == {tx.tx_hash}
    assert_nonces_consecutive(wallet, start)
    assert_paid_exactly_once(token, expected=3)


def test_reorg_to_a_shorter_chain_is_handled_like_any_reorg(manual_chain, listener):
    """A batch mined in the head block, then the chain loses that block without a replacement (anvil_rollback:
    the canonical head is now below the recorded block, as after a reorg onto a shorter branch or when a lagging
    RPC node answers after a failover). The tracker must treat the block as no longer canonical (back to
    `broadcast`, identical bytes resent) rather than fail its whole pass; then it completes, paid once."""
    token, ch, w3, wallet = (manual_chain[k] for k in ("token", "chain", "w3", "wallet"))
    start = w3.eth.get_transaction_count(wallet.address, "pending")
    queue_many("shorter", 2)
    (batch,) = build(token)
    send([batch])
    tx = batch.attempts.get()
    mine(w3)
    tracking.chain_track(chain_id=ch.pk)
    batch.refresh_from_db()
    assert batch.status == Batch.Status.MINED and batch.block_number == w3.eth.block_number
    rpc(w3, "anvil_rollback", 1)
    assert w3.eth.block_number == batch.block_number - 1
    tracking.chain_track(chain_id=ch.pk)
    batch.refresh_from_db()
    assert batch.status == Batch.Status.BROADCAST and listener.final == []
    assert w3.eth.get_transaction(tx.tx_hash)["blockNumber"] is None
    batch = track_one_block_at_a_time(manual_chain, batch, listener)
    assert batch.mined_tx_id == tx.pk
    assert_nonces_consecutive(wallet, start)
    assert_paid_exactly_once(token, expected=2)


# ---------------------------------------------------------------------------------------------------------------
# 4. Primary RPC failing


def test_payouts_complete_through_the_second_rpc_when_the_first_refuses(chain, settings, rpc_reset, monkeypatch):
    """CHAIN_RPC_URLS = [a port with nothing listening, anvil]: a batch is built, sent, tracked and made final
    through the second URL; the first is tried once, then marked down and skipped for the rest of the run (its
    skip window stretched past the test's length, so that holds however slow the machine is)."""
    monkeypatch.setattr(onchain_rpc, "SKIP_SECONDS", 3600)
    settings.CHAIN_RPC_URLS = [dead_url(), settings.CHAIN_RPC_URL]
    rpc_web3.cache_clear()
    provider = client.web3().provider
    dead, tried = provider._providers[0], []

    def counted(method, params, make_request=dead.make_request):
        tried.append(method)
        return make_request(method, params)

    monkeypatch.setattr(dead, "make_request", counted)
    start = pending_nonce(chain)
    queue_many("failover", 4)
    send(build(chain["token"]))
    all_final(chain["chain"])
    assert provider.urls == settings.CHAIN_RPC_URLS
    assert len(tried) == 1, f"the refusing URL was tried {len(tried)} times, not skipped after the first"
    assert provider._down_until[0] > time.monotonic()  # and is still being skipped
    assert_nonces_consecutive(chain["wallet"], start)
    assert_paid_exactly_once(chain["token"], expected=4)


def test_a_hanging_primary_rpc_fails_over_within_the_timeout(chain, settings, rpc_reset):
    """CHAIN_RPC_URLS = [a server that takes connections and never answers, anvil] with a 1 s timeout: the first
    call waits on the hanging URL once (one connection: no retry behind the timeout) for the timeout, then answers
    from anvil; a batch completes and is paid once."""
    with silent_server() as (hanging, connections):
        settings.CHAIN_RPC_TIMEOUT_SECONDS = 1
        settings.CHAIN_RPC_URLS = [hanging, settings.CHAIN_RPC_URL]
        rpc_web3.cache_clear()
        t0 = time.monotonic()
        assert client.web3().eth.block_number > 0
        first_call = time.monotonic() - t0
        assert connections() == 1, "a hanging URL must cost one timeout, not one per retry"
        start = pending_nonce(chain)
        queue_many("hanging", 2)
        send(build(chain["token"]))
        all_final(chain["chain"])
        assert_nonces_consecutive(chain["wallet"], start)
        assert_paid_exactly_once(chain["token"], expected=2)
    # One connection that got no answer, then anvil's: the hanging one was given up by the timeout. Far below the
    # 10 s default, so the configured 1 s applied; the bound leaves 4 s of slack for a loaded machine.
    assert first_call < 5.0, f"failing over took {first_call:.1f}s with a 1s timeout"


# ---------------------------------------------------------------------------------------------------------------
# 5. Four processes claiming nonces at once

CLAIMER = """
import os, sys, time
import django
django.setup()
from onchain.models import Payout
from onchain.services import batches
token_id, me, ready, go, met = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]

# A rendezvous after this process's first batch: it waits (its transaction committed, no lock held) until each of
# the four has built one, so every process takes part in the race whatever the scheduler does; then all race on.
build_one = batches._build_one
def _build_one(**kwargs):
    batch = build_one(**kwargs)
    if batch is not None and not os.path.exists(os.path.join(met, me)):
        open(os.path.join(met, me), "w").close()
        while len(os.listdir(met)) < 4 and time.monotonic() < deadline:
            time.sleep(0.002)
    return batch
batches._build_one = _build_one

open(ready, "w").close()
while not os.path.exists(go):
    time.sleep(0.002)
built, deadline = [], time.monotonic() + 90
while time.monotonic() < deadline and Payout.objects.filter(token_id=token_id, status="queued").exists():
    built += [str(b.pk) for b in batches.batches_build(token_id=token_id, force=True)]
print(" ".join(built))
"""


@pytest.mark.parametrize("mode", ["single", "contract"])
def test_four_processes_claiming_nonces_at_once_leave_no_gap_and_no_repeat(chain, tmp_path, mode):
    """Four OS processes run `batches_build` in a loop, released at the same instant, over 100+ queued payouts
    with one payout per batch: single ERC-20 transfers from one wallet (SETTLEMENT_BATCHING=0), or contract
    batches of size 1 over two wallets. Each process, once it has built its first batch, waits until all four
    have built one, so all four take part whatever the scheduler does (one process cannot take the whole queue
    before the others start). Every payout lands in exactly one batch, each batch is built by one process, each
    wallet's nonces are exactly consecutive from the chain's nonce (no gap, no repeat); then everything is sent,
    made final and paid once."""
    token = chain["token"]
    wallets = [chain["wallet"]] + ([second_wallet(chain)] if mode == "contract" else [])
    starts = {w.pk: quiet_nonce(chain["w3"], w.address) for w in wallets}
    n = 120 if mode == "single" else 100
    payouts_create(token, n)
    queue_name = f"faults-claimers-{uuid.uuid4().hex[:8]}"  # their send kicks go nowhere; the test sends
    env = dict(os.environ, DATABASE_URL=_test_database_url(), BATCH_MAX_SIZE="1", CELERY_QUEUE=queue_name,
               SETTLEMENT_BATCHING="0" if mode == "single" else "1")
    (tmp_path / "met").mkdir()
    procs = [subprocess.Popen([sys.executable, "-c", CLAIMER, str(token.pk), str(i), str(tmp_path / f"ready-{i}"),
                               str(tmp_path / "go"), str(tmp_path / "met")], cwd=REPO, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(4)]
    try:
        wait_for(lambda: all((tmp_path / f"ready-{i}").exists() or procs[i].poll() is not None for i in range(4)),
                 timeout=60, interval=0.05, what="four claimers to start")
        (tmp_path / "go").touch()
        outputs = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        redis.Redis.from_url(settings.REDIS_URL).delete(queue_name, f"_kombu.binding.{queue_name}")
    assert [p.returncode for p in procs] == [0] * 4, [err[-2000:] for _, err in outputs]
    per_process = [out.split() for out, _ in outputs]
    claimed = [b for ids in per_process for b in ids]
    assert len(claimed) == len(set(claimed)) == Batch.objects.count() == n
    assert all(per_process), f"batches built per process: {[len(ids) for ids in per_process]}"
    assert not Payout.objects.exclude(status=Payout.Status.BATCHED).exists()
    assert set(Batch.objects.values_list("count", flat=True)) == {1}
    assert {b.mode for b in Batch.objects.all()} == {Batch.Mode.SINGLE if mode == "single" else Batch.Mode.CONTRACT}
    for wallet in wallets:
        nonces = sorted(Batch.objects.filter(wallet=wallet).values_list("nonce", flat=True))
        assert nonces == list(range(starts[wallet.pk], starts[wallet.pk] + len(nonces)))
    send(Batch.objects.order_by("wallet_id", "nonce"))
    all_final(chain["chain"], timeout=90)
    for wallet in wallets:
        assert_nonces_consecutive(wallet, starts[wallet.pk])
    assert_paid_exactly_once(token, expected=n)


# ---------------------------------------------------------------------------------------------------------------
# 6. Worker SIGKILLed at failpoints; 7. Redis restarted mid-run


@pytest.fixture
def broker(tmp_path):
    """A redis-server of our own for the worker and beat, so nothing a killed worker leaves unacked (or a
    FLUSHALL) touches the session's Redis."""
    port = free_port()
    proc, url = redis_start(port, tmp_path / "redis")
    state = {"proc": proc, "url": url, "port": port, "dir": tmp_path / "redis"}
    yield state
    redis_kill(state["proc"])


def celery_env(broker, **extra):
    return dict(os.environ, DATABASE_URL=_test_database_url(), REDIS_URL=broker["url"],
                CELERY_QUEUE=f"faults-{uuid.uuid4().hex[:8]}", BATCH_MAX_SIZE="5", **extra)


def settled(token, n):
    """All n payouts confirmed and no batch open."""
    return (Payout.objects.filter(token=token, status=Payout.Status.CONFIRMED).count() == n
            and not Batch.objects.exclude(status=Batch.Status.FINAL).exists())


KILL_PASSES = (1, 2, 4)
# Points a batch already mined passes by (its send task, or a tracker pass, finds nothing to send): at these the
# test holds blocks back until its kills have happened, so every pass it counts on is reached.
BROADCASTING = ("send.before_broadcast", "send.after_broadcast", "track.before_broadcast", "track.after_broadcast")


def kills_at(state):
    return [(name, n) for name, n, _ in failpoints.kills(state)]


@pytest.mark.parametrize("point", POINTS)
def test_worker_sigkilled_at_a_failpoint_loses_and_duplicates_nothing(chain, broker, tmp_path, point):
    """A real worker (solo pool: the failpoint kills the whole worker process) and beat, 20 payouts in four
    batches of 5. Passes through `point` are counted across the test's workers (a shared state directory): the
    first worker dies at pass 1, the restarted one at its first pass (2), the next after one good pass (4), the
    fourth finishes. Each of those passes is reached whatever the timing: the builder's and the finaliser's points
    are passed once per batch plus once per kill; for the broadcasting ones blocks are held back until the kills
    happened, so none of the four send tasks finds its batch mined (and the tracker, told to rebroadcast every
    second, keeps passing its points). A task held by a dead worker stays unacknowledged for the broker's 1 h
    visibility timeout, so recovery comes only from beat's `settlement_build`/`settlement_track` passes
    re-deriving the work from the tables. Exactly three SIGKILLs of three workers at exactly those passes; every
    payout ends confirmed and paid once, the nonces are consecutive, and no batch ever carried a payout twice."""
    token, wallet = chain["token"], chain["wallet"]
    start = pending_nonce(chain)
    state = tmp_path / "failpoints"
    env = failpoints_env(state, f"{point}={'/'.join(map(str, KILL_PASSES))}")
    if point.startswith("track.") and point in BROADCASTING:
        env["PAYOUT_REBROADCAST_AFTER_SECONDS"] = "1"
    rig = CeleryRig(env=celery_env(broker, **env), log_dir=tmp_path, pool="solo")
    try:
        with mining_paused() if point in BROADCASTING else contextlib.nullcontext():
            rig.start()
            payouts_create(token, 20)
            rig.run_until(lambda: len(failpoints.kills(state)) == len(KILL_PASSES), timeout=150,
                          what=f"{len(KILL_PASSES)} kills at {point} (passes so far: {failpoints.passes(state, point)})")
        rig.run_until(lambda: settled(token, 20), timeout=180, what=f"20 payouts settled with kills at {point}")
    finally:
        rig.stop()
    assert kills_at(state) == [(point, n) for n in KILL_PASSES]
    assert len({pid for *_, pid in failpoints.kills(state)}) == len(KILL_PASSES)  # three processes, one count
    assert rig.deaths == [-signal.SIGKILL] * len(KILL_PASSES), rig.deaths
    assert sum(Batch.objects.values_list("count", flat=True)) == 20
    assert_nonces_consecutive(wallet, start)
    assert_paid_exactly_once(token, expected=20)


def test_send_task_is_redelivered_after_its_pool_process_is_killed(chain, broker, tmp_path):
    """The production pool (prefork): the failpoints kill the pool process running the first send task before
    it hands the bytes to the node (send.before_broadcast, pass 1) and the one running a later send task right
    after (send.after_broadcast, pass 2). The tracker's rebroadcasts have failpoints of their own, so no kill
    lands in a tracker pass; blocks are held back until both kills happened, so no send task finds its batch
    already mined. With late acks and reject-on-worker-lost the worker requeues each killed task at once: four
    batches, exactly six send task starts (each batch's task once, the two killed ones again), the worker itself
    never restarted; every payout is paid once."""
    token, wallet = chain["token"], chain["wallet"]
    start = pending_nonce(chain)
    state = tmp_path / "failpoints"
    env = failpoints_env(state, "send.before_broadcast=1,send.after_broadcast=2")
    rig = CeleryRig(env=celery_env(broker, **env), log_dir=tmp_path, pool="prefork", concurrency=1)

    def send_starts():
        return sum(Batch.objects.values_list("send_attempts", flat=True))

    try:
        with mining_paused():
            rig.start()
            payouts_create(token, 20)
            rig.run_until(lambda: len(failpoints.kills(state)) == 2, timeout=120, what="both send kills")
        # Settled, and every send task has started (the tracker may finish a batch before its task runs).
        rig.run_until(lambda: settled(token, 20) and send_starts() >= 4 + 2, timeout=120,
                      what="20 payouts settled and every send task started")
    finally:
        rig.stop()
    assert kills_at(state) == [("send.before_broadcast", 1), ("send.after_broadcast", 2)]
    assert rig.restarts == 0 and rig.count_child_deaths() == 2
    attempts = list(Batch.objects.values_list("send_attempts", flat=True))
    assert len(attempts) == 4 and sum(attempts) == 4 + 2 and max(attempts) == 2, attempts
    assert_nonces_consecutive(wallet, start)
    assert_paid_exactly_once(token, expected=20)


def test_redis_flushed_and_restarted_mid_run_loses_and_duplicates_nothing(chain, broker, tmp_path):
    """Worker (prefork, 2 processes) and beat on a private Redis. While the first 15 payouts are in flight (blocks
    held back from the start, so none can be mined yet) the Redis is emptied (FLUSHALL: queued and unacknowledged
    tasks, locks) and killed; 15 more payouts are stored while it is down; once the worker has noticed the lost
    broker, Redis restarts empty on the same port. Worker and beat reconnect by themselves and the periodic passes
    finish both waves from the tables: every payout paid once, nonces consecutive."""
    token, wallet = chain["token"], chain["wallet"]
    start = pending_nonce(chain)
    rig = CeleryRig(env=celery_env(broker), log_dir=tmp_path, pool="prefork", concurrency=2)
    lost = "Connection to broker lost"
    try:
        with mining_paused():
            rig.start()
            payouts_create(token, 15)
            rig.run_until(lambda: Batch.objects.exists(), timeout=60, what="the first batch")
            assert not settled(token, 15)
            redis.Redis.from_url(broker["url"]).flushall()
            redis_kill(broker["proc"])
        payouts_create(token, 15)
        wait_for(lambda: rig.log_count(lost) >= 1, timeout=60, what="the worker to notice the broker is gone")
        broker["proc"], _ = redis_start(broker["port"], broker["dir"])
        rig.run_until(lambda: settled(token, 30), timeout=90, what="30 payouts settled after the Redis restart")
    finally:
        rig.stop()
    assert rig.restarts == 0
    assert_nonces_consecutive(wallet, start)
    assert_paid_exactly_once(token, expected=30)


LOCK_HOLDER = """
import os, signal, sys
import django
django.setup()
from onchain.locks import only_one
held = only_one(sys.argv[1])  # keep a reference: a collected generator would release the lock
assert held.__enter__()
os.kill(os.getpid(), signal.SIGKILL)  # a worker killed mid-pass: its lock is never released
"""


def test_a_pass_killed_holding_its_lock_delays_tracking_by_seconds_not_minutes(chain):
    """A process SIGKILLed while holding the tracker's single-runner lock: its renewal died with it, so the lock
    has at most its 5 s TTL left; until then passes skip tracking, then it lapses by itself and the next passes
    make a freshly sent batch final, paid once."""
    from onchain import tasks

    token, ch = chain["token"], chain["chain"]
    name = f"track:{ch.pk}"
    holder = subprocess.run([sys.executable, "-c", LOCK_HOLDER, name], cwd=REPO, timeout=60,
                            env=dict(os.environ, DATABASE_URL=_test_database_url()))
    assert holder.returncode == -signal.SIGKILL
    key = f"tulpar:lock:{settings.CELERY_TASK_DEFAULT_QUEUE}:{name}"
    r = redis.Redis.from_url(settings.REDIS_URL)
    try:
        left_ms = r.pttl(key)  # -2: already lapsed (a slow machine); -1 would be a lock that never lapses
        assert left_ms == -2 or 0 < left_ms <= 5000, f"the dead holder's lock has {left_ms} ms left"
        queue_many("lock", 2)
        send(build(token))
        # Redis drops the key at its TTL; a pass in between must not wait for it (nor fail).
        wait_for(lambda: (tasks.settlement_tick(), not r.exists(key))[1], timeout=30, interval=0.5,
                 what="the dead holder's lock to lapse")
        wait_for(lambda: (tasks.settlement_tick(), not Batch.objects.exclude(status=Batch.Status.FINAL).exists())[1],
                 timeout=60, interval=0.5, what="tracking to make the batch final after the lock lapsed")
    finally:
        r.delete(key)
    assert_paid_exactly_once(token, expected=2)


# ---------------------------------------------------------------------------------------------------------------
# 8. Foreign transaction from a hot wallet


def test_foreign_transaction_from_a_hot_wallet_halts_it_and_fails_reconciliation(chain, listener):
    """A clean run reconciles with 0 problems. Then a token transfer signed with the hot wallet's key outside
    the engine: the tracker sees the chain nonce ahead of ours and halts the wallet with a `nonce` alert;
    reconciliation (once it is final) reports the transfer as not a payout of ours and halts the wallets.
    Our own payouts stay paid exactly once."""
    token, ch, w3, wallet = chain["token"], chain["chain"], chain["w3"], chain["wallet"]
    # Reconcile from here on: the dev token (reused across tests) carries earlier tests' payouts.
    ReconciliationCursor.objects.update_or_create(token=token, defaults={"last_block": w3.eth.block_number})
    queue_many("clean", 3)
    (batch,) = build(token)
    send([batch])
    all_final(ch)
    batch.refresh_from_db()
    assert reconcile_through(token, batch.block_number) == (3, 0)
    assert not OperatorAlert.objects.exists()

    account = Account.from_key(os.environ["HOT_WALLET_PRIVATE_KEY"])
    stranger = new_recipient()
    tx = client.erc20(token.address).functions.transfer(stranger, 4321).build_transaction({
        "from": account.address, "nonce": w3.eth.get_transaction_count(account.address, "pending"),
        "chainId": w3.eth.chain_id, "gas": 100_000})
    tx_hash = w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=10, poll_latency=0.1)
    assert receipt["status"] == 1 and token_balance(token, stranger) == 4321

    tracking.chain_track(chain_id=ch.pk)
    wallet.refresh_from_db()
    assert wallet.halted and "did not sign" in wallet.halt_reason
    assert OperatorAlert.objects.filter(kind=OperatorAlert.Kind.NONCE, wallet=wallet).exists()

    alerts.wallet_resume(wallet_id=wallet.pk)  # an operator resumes too early: reconciliation halts it again
    _, problems = reconcile_through(token, receipt["blockNumber"])
    assert problems == 1
    (alert,) = OperatorAlert.objects.filter(kind=OperatorAlert.Kind.RECONCILIATION)
    assert "not a payout of ours" in alert.message and tx_hash.to_0x_hex() in alert.message
    assert not HotWallet.objects.filter(chain=ch, halted=False).exists()
    assert HotWallet.objects.get(pk=wallet.pk).halt_reason.startswith("reconciliation")
    queue("after-halt")
    assert build(token) == []  # nothing is signed while halted
    Payout.objects.filter(reference="after-halt").delete()
    assert_paid_exactly_once(token, expected=3)


# ---------------------------------------------------------------------------------------------------------------
# 9. Treasury


def test_treasury_snapshot_float_check_and_low_balance_alerts(chain):
    """`treasury_check` records the contract's float; `float_covers` refuses one base unit more than the float
    less what is owed; a low-float threshold above the float raises `low_float`, a low-gas threshold above the
    wallet's gas raises `low_gas`; after paying, the float is lower by exactly what was paid."""
    token, wallet, w3 = chain["token"], chain["wallet"], chain["w3"]
    float_units = treasury.treasury_check(token_id=token.pk)
    assert float_units == token_balance(token, token.batch_contract) > 0
    assert TreasurySnapshot.objects.get(token=token).float_base_units == float_units
    queued = queue_many("treasury", 3)
    owed = sum(p.amount_base_units for p in queued)
    available = float_units - owed
    assert treasury.float_available(token) == available
    assert treasury.float_covers(amount=Decimal(available) / 10**token.decimals) is True
    assert treasury.float_covers(amount=Decimal(available + 1) / 10**token.decimals) is False
    assert not OperatorAlert.objects.exists()

    gas = w3.eth.get_balance(wallet.address)
    Token.objects.filter(pk=token.pk).update(low_float_base_units=float_units + 1)
    HotWallet.objects.filter(pk=wallet.pk).update(low_gas_wei=gas + 1)
    treasury.treasury_check(token_id=token.pk)
    assert OperatorAlert.objects.filter(kind=OperatorAlert.Kind.LOW_FLOAT, token=token).count() == 1
    assert OperatorAlert.objects.filter(kind=OperatorAlert.Kind.LOW_GAS, wallet=wallet).count() == 1

    send(build(token))
    all_final(chain["chain"])
    assert treasury.treasury_check(token_id=token.pk) == float_units - owed
    assert treasury.float_available(token) == float_units - owed
    assert_paid_exactly_once(token, expected=3)


# ---------------------------------------------------------------------------------------------------------------
# PostgreSQL connections dropped / server restarted mid-run


def _pg_restart_command():
    versions = sorted(os.listdir("/etc/postgresql")) if os.path.isdir("/etc/postgresql") else []
    if not versions or not shutil.which("pg_ctlcluster"):
        return None
    return ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "restart"]


def _kill_test_database_connections(seconds):
    """Terminate every backend on the test database (ours included) every 0.1 s for `seconds`: whatever a worker
    has open is rolled back mid-transaction. Returns how many backends were terminated."""
    from django.db import connection, connections

    # Workers close their connection after each task (CONN_MAX_AGE=0): keep cutting past `seconds` until at least
    # one of theirs was caught mid-use (bounded), so the test never passes vacuously.
    killed, start = 0, time.monotonic()
    while time.monotonic() < start + seconds or (killed == 0 and time.monotonic() < start + 30):
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                           "WHERE datname = current_database() AND pid <> pg_backend_pid()")
            killed += cursor.fetchone()[0]
        time.sleep(0.1)
    connections.close_all()
    return killed


RESTART_PG = (os.environ.get("TULPAR_FAULTS_PG_RESTART") == "1" and hasattr(os, "geteuid") and os.geteuid() == 0
              and _pg_restart_command() is not None)


@pytest.mark.parametrize("how", [
    "connections-killed",
    pytest.param("server-restarted", marks=pytest.mark.skipif(
        not RESTART_PG, reason="restarts the shared PostgreSQL server, dropping every session's connections: "
                               "opt in with TULPAR_FAULTS_PG_RESTART=1, as root, with pg_ctlcluster")),
])
def test_postgresql_connections_lost_mid_run_lose_and_duplicate_nothing(chain, broker, tmp_path, how):
    """Worker (prefork, 2 processes) and beat; while the first 15 payouts are in flight the worker's database
    connections are cut: every backend on the test database terminated every 0.1 s for 3 s, or (opt-in) one
    restart of the PostgreSQL server. Open transactions roll back; the failed passes are re-derived by the next
    ones; 15 more payouts are stored afterwards. All 30 paid once, nonces consecutive, the worker never died."""
    from django.db import connections

    token, wallet = chain["token"], chain["wallet"]
    start = pending_nonce(chain)
    rig = CeleryRig(env=celery_env(broker), log_dir=tmp_path, pool="prefork", concurrency=2)
    try:
        rig.start()
        payouts_create(token, 15)
        rig.run_until(lambda: Batch.objects.exists(), timeout=60, what="the first batch")
        if how == "server-restarted":
            subprocess.run(_pg_restart_command(), check=True, timeout=120)
            connections.close_all()  # this process's connection died with the server
        else:
            assert _kill_test_database_connections(3) >= 1
        wait_for(lambda: Payout.objects.exists(), timeout=30, what="the database back")
        payouts_create(token, 15)
        rig.run_until(lambda: settled(token, 30), timeout=90, what="30 payouts settled after losing the database")
    finally:
        rig.stop()
    assert rig.restarts == 0
    assert_nonces_consecutive(wallet, start)
    assert_paid_exactly_once(token, expected=30)
