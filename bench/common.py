"""What both benchmarks share: a private stack (anvil, database, Redis, Celery workers and beat), seeding of
transfers in bulk, counting payouts on the chain, and the clean-up that stops everything on any exit.

Nothing Django is imported at module level: the scripts set the environment first, then call `Stack.django()`.
"""

import bisect
import contextlib
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections import defaultdict
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from pathlib import Path

from gateway.dev import services

REPO = services.REPO
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/tulpar"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"

# The RUB corridor's defaults and seed rate (payments.services.setup), so seeded quotes look like real ones.
OFFICIAL_RUB = Decimal("1.0785")
RATE_RUB = (OFFICIAL_RUB * (10000 - 150) / 10000).quantize(Decimal("0.00000001"), ROUND_DOWN)
CENT = Decimal("0.01")


def say(*parts):
    print(*parts, flush=True)


class RunTimeout(Exception):
    pass


def bound_run_time(seconds):
    """SIGALRM after `seconds` raises RunTimeout in the main thread (the finally blocks then clean up);
    SIGTERM becomes SystemExit, so `kill <pid>` cleans up too."""

    def on_alarm(signum, frame):
        raise RunTimeout(f"run time bound of {seconds}s reached")

    def on_term(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with SIGINT ignored (`cmd &`)
    signal.alarm(int(seconds))


def random_address():
    from eth_utils import to_checksum_address

    return to_checksum_address("0x" + secrets.token_hex(20))


def percentile(values, p):
    """Nearest-rank percentile."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[int(rank) - 1]


class Stack:
    """Everything one benchmark run starts, torn down in reverse by `close()` (call it from a finally)."""

    def __init__(self, name, *, private_redis=False, keep=False):
        self.name = name
        self.tmp = Path(tempfile.mkdtemp(prefix=f"tulpar-{name}-"))
        self.keep = keep
        self.private_redis = private_redis
        self.procs = {}  # name -> Popen (workers and beat: own session, killed as a group)
        self.infra = []  # anvil, redis-server
        self.redis_proc = None
        self.redis_port = None
        self.admin_url = None
        self.db_name = None
        self.django_ready = False
        self.log_files = defaultdict(list)  # worker slot -> its incarnations' log paths

    # --- environment and servers -------------------------------------------------------------------------------

    def environment(self, wallets=2):
        from eth_account import Account

        env = os.environ
        env["DJANGO_SETTINGS_MODULE"] = "gateway.settings"
        env.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(40))
        env["DJANGO_ALLOWED_HOSTS"] = "127.0.0.1,localhost"
        env["TULPAR_VAR_DIR"] = str(self.tmp)
        env["CELERY_QUEUE"] = f"tulpar-{self.name}-{os.getpid()}"
        env.setdefault("STRIPE_SECRET_KEY", "sk_test_" + secrets.token_hex(8))
        env.setdefault("STRIPE_WEBHOOK_SECRET", "whsec_" + secrets.token_hex(16))
        # The money path is measured: no e-mail or texts (there is no mail server here; set it to include them).
        env.setdefault("NOTIFY_CHANNELS", "")
        # Workers and beat log at INFO (their task lines are read back); this process only warns.
        self.child_log_level = env.get("LOG_LEVEL", "INFO")
        env["LOG_LEVEL"] = "WARNING"
        # `wallets` hot wallets (two by default); keys generated now, handed to the workers through their environment
        # only (HOT_WALLET_PRIVATE_KEY, HOT_WALLET_2_PRIVATE_KEY, ...).
        self.wallets = []
        for i in range(1, wallets + 1):
            name = "HOT_WALLET_PRIVATE_KEY" if i == 1 else f"HOT_WALLET_{i}_PRIVATE_KEY"
            env[name] = "0x" + secrets.token_hex(32)
            self.wallets.append((Account.from_key(env[name]).address, name))

    def start_anvil(self, gas_limit=None):
        self.anvil_log = open(self.tmp / "anvil.log", "ab")  # noqa: SIM115 - closed with the stack
        proc, url = services.start_anvil(services.free_port(), block_time=1, log=self.anvil_log, gas_limit=gas_limit)
        self.infra.append(proc)
        os.environ["CHAIN_RPC_URL"] = url
        os.environ.pop("CHAIN_RPC_URLS", None)
        return url

    def start_redis(self):
        url = os.environ.get("REDIS_URL", DEFAULT_REDIS_URL)
        if not self.private_redis and services.redis_answers(url):
            os.environ["REDIS_URL"] = url
            return url, "shared"
        self.redis_port = services.free_port()
        self._redis_up()
        return os.environ["REDIS_URL"], "private"

    def _redis_up(self):
        self.redis_log = open(self.tmp / "redis.log", "ab")  # noqa: SIM115 - closed with the stack
        self.redis_proc, url = services.start_redis(self.redis_port, data_dir=self.tmp / "redis", log=self.redis_log)
        os.environ["REDIS_URL"] = url

    def restart_redis(self):
        """SIGKILL the private redis-server and start it again on the same port and data directory."""
        assert self.redis_proc is not None, "only a private redis-server is restarted"
        self.redis_proc.kill()
        self.redis_proc.wait()
        self._redis_up()

    def create_database(self):
        """A fresh PostgreSQL database on DATABASE_URL's server, or a SQLite file when none answers."""
        import psycopg

        base = os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)
        parsed = urllib.parse.urlsplit(base)
        if parsed.scheme.startswith("postgres"):
            name = f"tulpar_bench_{os.getpid()}"
            for maintenance in ("/postgres", parsed.path):
                admin = parsed._replace(path=maintenance).geturl()
                try:
                    with psycopg.connect(admin, autocommit=True, connect_timeout=3) as conn:
                        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
                        conn.execute(f'CREATE DATABASE "{name}"')
                except psycopg.Error:
                    continue
                self.admin_url, self.db_name = admin, name
                os.environ["DATABASE_URL"] = parsed._replace(path="/" + name).geturl()
                return f"postgresql {parsed.hostname}:{parsed.port or 5432}/{name}"
        os.environ["DATABASE_URL"] = f"sqlite:///{self.tmp / 'bench.sqlite3'}"
        return f"sqlite {self.tmp / 'bench.sqlite3'} (no PostgreSQL answered at {base})"

    def django(self):
        import django
        from django.core.management import call_command

        django.setup()
        self.django_ready = True
        started = time.monotonic()
        call_command("migrate", verbosity=0, interactive=False)
        return time.monotonic() - started

    # --- Celery -------------------------------------------------------------------------------------------------

    def start_worker(self, slot, *, concurrency=2, extra_env=None):
        log = self.tmp / f"{slot}.{len(self.log_files[slot])}.log"
        self.log_files[slot].append(log)
        cmd = [sys.executable, "-m", "celery", "-A", "gateway", "worker", "-l", "info", "--concurrency",
               str(concurrency), "-n", f"{slot}-{os.getpid()}@%h", "--without-gossip", "--without-mingle"]
        env = dict(os.environ, LOG_LEVEL=self.child_log_level, **(extra_env or {}))
        with open(log, "ab") as out:
            proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        self.procs[slot] = proc
        return proc, log

    def start_beat(self):
        log = self.tmp / "beat.log"
        cmd = [sys.executable, "-m", "celery", "-A", "gateway", "beat", "-l", "info", "-s",
               str(self.tmp / "beat-schedule")]
        with open(log, "ab") as out:
            proc = subprocess.Popen(cmd, cwd=REPO, env=dict(os.environ, LOG_LEVEL=self.child_log_level), stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        self.procs["beat"] = proc
        return proc

    def kill_group(self, slot, sig=signal.SIGKILL):
        proc = self.procs[slot]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        proc.wait()

    def stop_celery(self, timeout=15):
        for proc in self.procs.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in self.procs.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # the group: pool children too
            proc.wait()

    # --- clean-up -----------------------------------------------------------------------------------------------

    def close(self):
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
        signal.alarm(0)
        try:
            self.stop_celery()
            if self.django_ready:
                from django.db import connections

                connections.close_all()
            self._forget_queue()
            if self.db_name:
                import psycopg

                with contextlib.suppress(psycopg.Error), psycopg.connect(self.admin_url, autocommit=True,
                                                                         connect_timeout=5) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
            for proc in [self.redis_proc, *reversed(self.infra)]:
                services.stop(proc)
        finally:
            signal.signal(signal.SIGINT, previous)
            if not self.keep:
                shutil.rmtree(self.tmp, ignore_errors=True)

    def _forget_queue(self):
        """On a shared Redis, remove what our private queue left behind (beat ticks nobody will consume, locks)."""
        if self.redis_proc is not None or not os.environ.get("REDIS_URL"):
            return
        import redis

        queue = os.environ["CELERY_QUEUE"]
        with contextlib.suppress(redis.RedisError):
            client = redis.Redis.from_url(os.environ["REDIS_URL"], socket_timeout=2, socket_connect_timeout=2)
            keys = list(client.scan_iter(f"*{queue}*"))  # the queue, kombu's bindings, our locks
            if keys:
                client.delete(*keys)


# --- the chain and the gateway's tables -------------------------------------------------------------------------


def chain_setup(stack):
    """Dev KGST + BatchPayout on the stack's anvil, two funded hot wallets registered."""
    from onchain import client
    from onchain.services.devchain import devchain_bootstrap

    chain, token, _ = devchain_bootstrap(wallets=stack.wallets)
    return chain, token, client.web3()


def quote_values(rng):
    """A RUB→KGS quote as quote_price would make it (payments.pricing: fee = 50.00 + 1 % rounded down, som rounded
    up to the tyiyn)."""
    from payments import pricing

    source = Decimal(rng.randint(100_000, 5_000_000)) / 100
    fee, target = pricing.send_fixed(amount=source, rate=RATE_RUB,
                                     terms=pricing.Terms(150, Decimal("50.00"), 100))
    return source, fee, target


def seed_transfers(*, token, n, rng, status, recipients=None, tag="bench", with_payouts=True):
    """`n` funded transfers in bulk: quote, transfer, the `funding` journal entry. With status `settling` and
    `with_payouts`, each also gets its queued onchain.Payout (what payments.pipeline._settle leaves behind).
    Returns the transfers (in order). Payouts are inserted by `seed_payouts` when `with_payouts` is False."""
    from django.db import transaction
    from django.utils import timezone

    from payments.models import JournalEntry, LedgerAccount, Posting, Quote, Transfer, to_minor

    now = timezone.now()
    recipients = recipients or [random_address() for _ in range(n)]
    accounts = {(code, cur): LedgerAccount.objects.get_or_create(code=code, currency=cur)[0]
                for code, cur in (("card_clearing", "RUB"), ("fee_revenue", "RUB"), ("fx_position", "RUB"),
                                  ("fx_position", "KGS"), ("recipient_payable", "KGS"), ("kgst_float", "KGS"))}
    quotes, transfers = [], []
    for i in range(n):
        source, fee, target = quote_values(rng)
        quote = Quote(source_currency="RUB", source_amount=source, target_currency="KGS", target_amount=target,
                      official_rate=OFFICIAL_RUB, rate=RATE_RUB, fee=fee, expires_at=now)
        transfer_id = uuid.uuid4()
        quotes.append(quote)
        transfers.append(Transfer(
            id=transfer_id, quote=quote, idempotency_key=f"{tag}-{transfer_id}", request_fingerprint="0" * 64,
            status=status, sender_name="Aibek Usenov", sender_phone="+79001234567", sender_email="aibek@example.com",
            recipient_name="Gulnara Usenova", recipient_phone="+996555123456", recipient_wallet=recipients[i],
            payment_intent_id=f"pi_{tag}_{i}", funded_at=now,
            payout_reference=str(transfer_id) if status == Transfer.Status.SETTLING else ""))
    with transaction.atomic():
        Quote.objects.bulk_create(quotes, batch_size=1000)
        Transfer.objects.bulk_create(transfers, batch_size=1000)
        entries = JournalEntry.objects.bulk_create(
            [JournalEntry(transfer=t, kind="funding", memo=f"PaymentIntent {t.payment_intent_id}") for t in transfers],
            batch_size=1000)
        postings = []
        for transfer, entry in zip(transfers, entries, strict=True):
            q = transfer.quote
            total, fee, som = to_minor(q.source_amount, "RUB"), to_minor(q.fee, "RUB"), to_minor(q.target_amount, "KGS")
            for key, amount in ((("card_clearing", "RUB"), total), (("fee_revenue", "RUB"), -fee),
                                (("fx_position", "RUB"), -(total - fee)), (("fx_position", "KGS"), som),
                                (("recipient_payable", "KGS"), -som)):
                postings.append(Posting(entry=entry, account=accounts[key], amount_minor=amount))
        Posting.objects.bulk_create(postings, batch_size=5000)
        ids = [e.pk for e in entries]
        for i in range(0, len(ids), 5000):  # posted last, as payments.services.ledger posts (the database checks each)
            JournalEntry.objects.filter(pk__in=ids[i:i + 5000]).update(posted=True)
        if with_payouts and status == Transfer.Status.SETTLING:
            seed_payouts(token=token, transfers=transfers)
    return transfers


def seed_payouts(*, token, transfers):
    from common.money import to_units
    from onchain.models import Payout

    Payout.objects.bulk_create([
        Payout(reference=str(t.pk), token=token, to_address=t.recipient_wallet,
               amount_base_units=to_units(t.quote.target_amount, token.decimals)) for t in transfers],
        batch_size=1000)


def kick_builder(token):
    """Ask a worker to build now rather than at beat's next pass (payout_request leaves it to beat)."""
    from onchain.tasks import settlement_build

    settlement_build.delay()


def resume_halted(halts):
    """Operator stand-in: resume halted wallets (the admin action) and count each halt by its reason in `halts`.
    Whether any payout really went out twice is counted from the chain at the end, independently."""
    from onchain.models import HotWallet
    from onchain.services.alerts import wallet_resume

    for wallet in HotWallet.objects.filter(halted=True):
        halts[wallet.halt_reason] += 1
        wallet_resume(wallet_id=wallet.pk)


def wait_completed(ids, *, timeout, interval=0.1, what="transfers", halts=None):
    """Until every transfer in `ids` is completed; with a `halts` Counter, halted wallets are resumed meanwhile."""
    from payments.models import Transfer

    deadline = time.monotonic() + timeout
    ids = list(ids)
    done = 0
    while time.monotonic() < deadline:
        if halts is not None:
            resume_halted(halts)
        done = Transfer.objects.filter(pk__in=ids, status=Transfer.Status.COMPLETED).count()
        if done == len(ids):
            return done
        time.sleep(interval)
    raise RunTimeout(f"{done}/{len(ids)} {what} completed after {timeout:.0f}s")


def paid_counts(token):
    """reference -> how many times the chain's Transfer logs paid it (onchain.services.reconcile)."""
    from onchain.services.reconcile import payouts_paid_on_chain

    return payouts_paid_on_chain(token_id=token.pk)


def chain_total_paid(token):
    """Base units sent by the engine's senders (hot wallets and the batch contract), from the Transfer logs."""
    from onchain import client
    from onchain.models import HotWallet
    from onchain.services.reconcile import TRANSFER_TOPIC, _topic

    senders = [w.address for w in HotWallet.objects.filter(chain=token.chain)] + [token.batch_contract]
    logs = client.web3().eth.get_logs({"fromBlock": 0, "toBlock": "latest", "address": token.address,
                                       "topics": [TRANSFER_TOPIC, [_topic(a) for a in senders]]})
    return sum(int(lg["data"].hex() or "0", 16) for lg in logs)


def ledger_total_paid(token):
    """The payout entries' kgst_float credits, in token base units (the ledger keeps tyiyn, 2 decimals)."""
    from django.db.models import Sum

    from payments.models import MINOR_DIGITS, Posting

    minor = Posting.objects.filter(entry__kind="payout", entry__posted=True, account__code="kgst_float").aggregate(
        s=Sum("amount_minor"))["s"] or 0
    return -minor * 10 ** (token.decimals - MINOR_DIGITS["KGS"])


def integrity(token, transfer_ids):
    """(double payouts, lost payouts, ledger equals chain) for the given transfers."""
    counts = paid_counts(token)
    double = sum(c - 1 for c in counts.values() if c > 1)
    lost = sum(1 for t in transfer_ids if counts.get(str(t), 0) == 0)
    ledger, chain = ledger_total_paid(token), chain_total_paid(token)
    return double, lost, int(ledger == chain), ledger, chain


# --- observation ---------------------------------------------------------------------------------------------------


class HeadSampler(threading.Thread):
    """Polls eth_blockNumber every `interval` s and records when each new head was first seen (wall clock),
    so a timestamp from the database maps to the chain's head at that moment."""

    def __init__(self, url, interval=0.02):
        super().__init__(daemon=True)
        from web3 import Web3

        self.w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 5}))
        self.interval = interval
        self.times, self.numbers = [], []
        self._halt = threading.Event()

    def run(self):
        last = None
        while not self._halt.is_set():
            with contextlib.suppress(Exception):  # a slow answer must not kill the sampler
                number = self.w3.eth.block_number
                if number != last:
                    self.times.append(time.time())
                    self.numbers.append(number)
                    last = number
            self._halt.wait(self.interval)

    def stop(self):
        self._halt.set()
        self.join(5)

    def block_at(self, ts):
        i = bisect.bisect_right(self.times, ts) - 1
        return self.numbers[max(i, 0)]


TASK_DONE = re.compile(r"Task ([\w.]+)\[[0-9a-f-]+\] succeeded in ([0-9.]+)s")
TASK_RECEIVED = re.compile(r"Task ([\w.]+)\[[0-9a-f-]+\] received")
STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) level=\w+ logger=([\w.]+) (\w+)")


def task_durations(paths):
    """{task name: [seconds]} from the workers' `Task ... succeeded in Xs` lines."""
    out = defaultdict(list)
    for path in paths:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                m = TASK_DONE.search(line)
                if m:
                    out[m.group(1).rsplit(".", 1)[-1]].append(float(m.group(2)))
    return out


def event_times(paths, event):
    """Sorted datetimes of the app log lines whose message starts with `event` (e.g. batch_signed)."""
    from datetime import datetime

    out = []
    for path in paths:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                m = STAMP.match(line)
                if m and m.group(3) == event:
                    out.append(datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f"))  # noqa: DTZ007 - log time
    return sorted(out)


def longest_gap(stamps):
    """(seconds, start) of the longest gap between consecutive timestamps."""
    gaps = [((b - a).total_seconds(), a) for a, b in zip(stamps, stamps[1:], strict=False)]
    return max(gaps, default=(0.0, None))


def summarise(values):
    if not values:
        return "n=0"
    return (f"n={len(values)} mean={sum(values) / len(values) * 1000:.0f}ms p50={percentile(values, 50) * 1000:.0f}ms "
            f"max={max(values) * 1000:.0f}ms")


def wait_for_log(path, needle, *, timeout=60, proc=None):
    """Until `needle` appears in the log file at `path` (a worker's `ready.`, say)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{path.name}: process exited with {proc.returncode}")
        with contextlib.suppress(FileNotFoundError), open(path, encoding="utf-8", errors="replace") as f:
            if needle in f.read():
                return
        time.sleep(0.1)
    raise RunTimeout(f"{path.name}: no {needle!r} within {timeout}s")


@dataclass
class Gateway:
    """What `gateway_up` started and made: the partner (with its raw API key), the payout token, where things run."""

    partner: object
    key: str
    token: object
    anvil_url: str
    stripe_url: str
    redis_url: str
    redis_kind: str
    database: str
    migrate_s: float


def gateway_up(stack, *, partner_name, topup_reference, settings_module=None):
    """The gateway as production runs it, for an HTTP benchmark: production settings behind a TLS proxy (API rate
    limits out of reach, recorded official rates), its own anvil with the token deployed and funded, localstripe from
    scratch, Redis, a fresh PostgreSQL database migrated and seeded (corridors, rates), and one partner with a large
    RUB balance. Refuses SQLite: the figures are PostgreSQL's. The caller starts gunicorn and workers."""
    env = os.environ
    if settings_module:
        env["DJANGO_SETTINGS_MODULE"] = settings_module
    env["DJANGO_DEBUG"] = "0"
    env["DJANGO_BEHIND_PROXY"] = "1"  # as behind Caddy: the client sends X-Forwarded-Proto
    env["RATE_API_PER_MINUTE"] = str(10**9)  # the partner-key limit is counted (Redis) but never reached
    env["RATES_SOURCE"] = "recorded"
    anvil_url = stack.start_anvil()
    stripe_log = open(stack.tmp / "localstripe.log", "ab")  # noqa: SIM115 - closed at exit
    stripe_proc, env["STRIPE_API_BASE"] = services.start_localstripe(
        services.free_port(), store=stack.tmp / "localstripe.pickle", log=stripe_log, from_scratch=True)
    stack.infra.append(stripe_proc)
    redis_url, redis_kind = stack.start_redis()
    database = stack.create_database()
    if not database.startswith("postgresql"):
        raise SystemExit(f"{stack.name} needs PostgreSQL: {database}")
    migrate_s = stack.django()
    from django.db import connection

    from onchain.services.treasury import treasury_check
    from payments.services.balances import balance_topup
    from payments.services.rates import rates_refresh
    from payments.services.setup import corridors_seed, partner_create

    _, token, _ = chain_setup(stack)
    treasury_check(token_id=token.id)
    corridors_seed()
    rates_refresh()
    partner, key = partner_create(name=partner_name)
    balance_topup(partner=partner, currency="RUB", amount=Decimal(10**9), reference=topup_reference)
    connection.close()
    return Gateway(partner=partner, key=key, token=token, anvil_url=anvil_url, stripe_url=env["STRIPE_API_BASE"],
                   redis_url=redis_url, redis_kind=redis_kind, database=database, migrate_s=migrate_s)
