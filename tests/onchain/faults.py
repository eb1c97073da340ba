"""Fault-injection tools for tests/onchain/test_faults.py: mining control on anvil, a private anvil and Redis,
an RPC endpoint that never answers, supervised Celery processes, and the exactly-once check that every fault
test ends with (read from the chain's own Transfer logs, not from our tables)."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

from web3 import Web3

from gateway.dev import services
from onchain import client, failpoints
from onchain.models import Batch, ChainTransaction, HotWallet, Payout
from onchain.services.reconcile import TRANSFER_TOPIC, payouts_paid_on_chain
from tests.conftest import new_recipient, wait_for

# ---------------------------------------------------------------------------------------------------------------
# The exactly-once check


def _topic(address):
    return "0x" + address[2:].lower().rjust(64, "0")


def transfer_logs(token):
    """(recipient, amount) of every KGST Transfer sent by the batch contract or one of our hot wallets."""
    senders = [w.address for w in HotWallet.objects.filter(chain=token.chain)] + (
        [token.batch_contract] if token.batch_contract else [])
    logs = client.web3().eth.get_logs({"fromBlock": 0, "toBlock": "latest", "address": token.address,
                                       "topics": [TRANSFER_TOPIC, [_topic(a) for a in senders]]})
    return [("0x" + lg["topics"][2].hex()[-40:], int(lg["data"].hex() or "0", 16)) for lg in logs]


def assert_paid_exactly_once(token, *, expected=None):
    """Every payout of the token paid exactly once on chain (0 double, 0 lost), every payout confirmed, and the
    on-chain total to our recipients equal to the confirmed amounts to the base unit. Recipients must be unique
    (then (recipient, amount) identifies a payout in the logs)."""
    payouts = list(Payout.objects.filter(token=token))
    assert payouts, "no payouts to check"
    if expected is not None:
        assert len(payouts) == expected
    recipients = {p.to_address.lower() for p in payouts}
    assert len(recipients) == len(payouts), "the check needs one recipient per payout"
    paid = payouts_paid_on_chain(token_id=token.pk)
    doubles = sorted(r for r, n in paid.items() if n > 1)
    lost = sorted(r for r, n in paid.items() if n == 0)
    assert (doubles, lost) == ([], []), f"paid twice: {doubles}; never paid: {lost}"
    not_confirmed = sorted((p.reference, p.status) for p in payouts if p.status != Payout.Status.CONFIRMED)
    assert not_confirmed == [], f"paid on chain but not confirmed: {not_confirmed}"
    on_chain = sum(amount for to, amount in transfer_logs(token) if to in recipients)
    assert on_chain == sum(int(p.amount_base_units) for p in payouts)
    return paid


def quiet_nonce(w3, address, timeout=30):
    """The address's next nonce once nothing of it is left in the pool: a transaction of an earlier test (its
    batch flushed from the tables, so no tracker will ever replace it) would hold this test's nonces behind it."""
    def settled():
        pending = w3.eth.get_transaction_count(address, "pending")
        return pending == w3.eth.get_transaction_count(address, "latest") and (pending,)

    (nonce,) = wait_for(settled, timeout=timeout, what=f"{address}'s pending transactions to be mined")
    return nonce


def assert_nonces_consecutive(wallet, start, w3=None):
    """The wallet's batches hold exactly the nonces start, start+1, … (no gap, no repeat), each has exactly one
    mined attempt (the others superseded), the allocator stands right after the last, and the chain agrees."""
    w3 = w3 or client.web3()
    nonces = sorted(Batch.objects.filter(wallet=wallet).values_list("nonce", flat=True))
    assert nonces == list(range(start, start + len(nonces))), nonces
    for batch in Batch.objects.filter(wallet=wallet).prefetch_related("attempts"):
        statuses = sorted(a.status for a in batch.attempts.all())
        assert statuses.count(ChainTransaction.Status.MINED) == 1, (batch.nonce, statuses)
        assert set(statuses) <= {ChainTransaction.Status.MINED, ChainTransaction.Status.SUPERSEDED}, statuses
        assert batch.mined_tx.status == ChainTransaction.Status.MINED
    wallet.refresh_from_db()
    assert wallet.next_nonce == start + len(nonces)
    assert w3.eth.get_transaction_count(wallet.address, "latest") == start + len(nonces)
    return nonces


# ---------------------------------------------------------------------------------------------------------------
# Payouts straight into the table


def payouts_create(token, n):
    """n queued payout rows as `payout_request` stores them, minus its after-commit kick: the engine has to
    find them in the table. References are uuids, so the real payments listener a Celery worker loads finds
    no transfer for them and does nothing."""
    rows = [Payout(reference=str(uuid.uuid4()), token=token, to_address=new_recipient(),
                   amount_base_units=(1 + i) * 10**token.decimals + 7 * i + 1) for i in range(n)]
    return Payout.objects.bulk_create(rows)


# ---------------------------------------------------------------------------------------------------------------
# anvil


def session_anvil():
    """The session's anvil over a plain provider (whatever the engine's RPC settings are in this test)."""
    return Web3(Web3.HTTPProvider(os.environ["CHAIN_RPC_URL"], request_kwargs={"timeout": 10}))


def rpc(w3, method, *params):
    response = w3.provider.make_request(method, list(params))
    assert "error" not in response, response
    return response.get("result")


@contextlib.contextmanager
def mining_paused():
    """Stop the session anvil's 1-second blocks; always restore them (every later test shares this anvil)."""
    w3 = session_anvil()
    rpc(w3, "evm_setIntervalMining", 0)
    rpc(w3, "evm_setAutomine", False)
    try:
        yield w3
    finally:
        rpc(w3, "evm_setIntervalMining", 1)


@contextlib.contextmanager
def private_anvil(slots_in_an_epoch):
    """An anvil of our own (same chain id), mining only on demand once switched to manual. `finalized` is
    2 × slots_in_an_epoch blocks behind the head."""
    port = services.free_port()
    proc = subprocess.Popen([str(services.ANVIL), "--host", "127.0.0.1", "--port", str(port), "--chain-id", "31337",
                             "--silent", "--slots-in-an-epoch", str(slots_in_an_epoch)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        services.wait_until(lambda: services.rpc_answers(url), "anvil", proc=proc)
        yield url
    finally:
        services.stop(proc)


# ---------------------------------------------------------------------------------------------------------------
# RPC endpoints that fail


def dead_url():
    """A local URL with nothing listening (connection refused)."""
    return f"http://127.0.0.1:{services.free_port()}"


@contextlib.contextmanager
def silent_server():
    """A TCP server that takes connections and never answers (an RPC that hangs): the kernel completes each
    handshake into the listen backlog and nothing ever reads. Yields (url, connections); `connections()` is how
    many connections clients have made so far, exactly (it drains the backlog without blocking)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    sock.setblocking(False)
    held = []

    def connections():
        with contextlib.suppress(BlockingIOError):
            while True:
                held.append(sock.accept()[0])
        return len(held)

    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", connections
    finally:
        for conn in held:
            conn.close()
        sock.close()


# ---------------------------------------------------------------------------------------------------------------
# Redis and Celery


def failpoints_env(state_dir, spec):
    """The environment that arms onchain.failpoints in the workers of one test: the spec, parsed here first (a
    typo fails the test at once, not inside a worker), and the test's own state directory, so every worker of
    the test (a restarted one included) counts passes in one shared sequence."""
    failpoints.parse(spec)
    Path(state_dir).mkdir(parents=True, exist_ok=True)
    return {"TULPAR_FAILPOINTS": spec, "TULPAR_FAILPOINTS_STATE": str(state_dir)}


def redis_start(port, data_dir):
    proc, url = services.start_redis(port, data_dir=data_dir)
    return proc, url


def redis_kill(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)


class CeleryRig:
    """One Celery worker and one beat as OS processes on the test database and a private broker/queue. `poll()`
    restarts a worker that died, and notices a prefork pool child that was killed (the worker logs it). After
    either, the single-runner locks the dead process held lapse on their own within their 10 s TTL
    (onchain/locks.py), so a killed tick delays settlement by seconds."""

    def __init__(self, *, env, log_dir, pool="solo", concurrency=1):
        self.env, self.log_dir = env, Path(log_dir)
        self.pool, self.concurrency = pool, concurrency
        self.worker = self.beat = None
        self.starts = 0
        self.deaths = []  # exit codes of workers that died on their own
        self.child_deaths = 0  # prefork pool processes killed (the worker survives and replaces them)

    @property
    def restarts(self):
        return len(self.deaths)

    @property
    def kills(self):
        return len(self.deaths) + self.child_deaths

    def log_count(self, needle, name="worker.log"):
        path = self.log_dir / name
        return path.read_text(errors="replace").count(needle) if path.exists() else 0

    def count_child_deaths(self):
        """Pool processes the worker reported killed, read from its log now."""
        return self.log_count("exited with 'signal 9 (SIGKILL)'")

    def _log(self, name):
        return open(self.log_dir / name, "ab")  # noqa: SIM115 - handed to the child process

    def start_worker(self):
        self.starts += 1
        cmd = [sys.executable, "-m", "celery", "-A", "gateway", "worker", "-l", "info", "--pool", self.pool,
               "--concurrency", str(self.concurrency), "--without-gossip", "--without-mingle", "--without-heartbeat",
               "-n", f"faults-{os.getpid()}-{self.starts}@%h"]
        with self._log("worker.log") as log:
            self.worker = subprocess.Popen(cmd, cwd=services.REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT)

    def start_beat(self):
        cmd = [sys.executable, "-m", "celery", "-A", "gateway", "beat", "-l", "info",
               "-s", str(self.log_dir / "beat-schedule")]
        with self._log("beat.log") as log:
            self.beat = subprocess.Popen(cmd, cwd=services.REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT)

    def start(self):
        self.start_worker()
        self.start_beat()
        return self

    def poll(self):
        """Restart the worker if it died. The beat must stay up: a dead beat fails the test."""
        assert self.beat.poll() is None, f"celery beat exited with {self.beat.returncode}: {self.tail('beat.log')}"
        if self.worker.poll() is not None:
            self.deaths.append(self.worker.returncode)
            self.start_worker()
        if self.pool != "solo" and (seen := self.count_child_deaths()) > self.child_deaths:
            self.child_deaths = seen

    def run_until(self, predicate, timeout, what):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.poll()
            if predicate():
                return
            time.sleep(0.3)
        raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (worker restarts: "
                             f"{self.restarts}, pool processes killed: {self.child_deaths})\n"
                             f"--- worker.log ---\n{self.tail('worker.log')}")

    def tail(self, name, lines=60):
        path = self.log_dir / name
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def stop(self):
        for proc in (self.worker, self.beat):
            if proc is not None and proc.poll() is None:
                proc.terminate()
        for proc in (self.worker, self.beat):
            if proc is None:
                continue
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
