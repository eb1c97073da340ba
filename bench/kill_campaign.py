"""Kill campaign: 1,000 transfers through the gateway while its workers are SIGKILLed and Redis restarts, then
count on the chain: every transfer paid exactly once, and the ledger's payouts equal the chain's to the base unit.

The stack is the benchmark's (bench/common.py): own anvil (1 s blocks), fresh database, a private redis-server
(so it can be killed and restarted on the same port), two hot wallets, two Celery worker processes and beat.
Transfers arrive funded (quote, transfer and `funding` entry inserted in bulk, `transfer_advance` queued after
commit, as `transfer_mark_funded` does) at --rate per second; screening queues the payouts; the engine batches,
signs, sends, tracks and completes them.

Faults:
- a supervisor reads each worker's log and SIGKILLs the worker's whole process group (main process and pool
  children: no clean-up, no rollback handlers) once it has received --kill-every tasks (`Task ... received`),
  then starts a new one; any worker or beat that dies otherwise is restarted too;
- optionally `--failpoints` (onchain.failpoints: TULPAR_FAILPOINTS in the workers' environment) kills pool
  processes at the named points between claim, sign, commit, broadcast and finalisation;
- the redis-server is SIGKILLed and started again on the same port once, when half the transfers have arrived;
- with --restart-postgres (and pg_ctlcluster present), PostgreSQL is restarted once. This restarts the whole
  server, other users' sessions included: do not pass it on a shared machine.

    make bench-kill                       # or: .venv/bin/python -m bench.kill_campaign --transfers 1000

Prints `kill.<name>: value` lines; exits non-zero when a payout was doubled or lost or the ledger disagrees.
"""

import argparse
import contextlib
import os
import random
import shutil
import subprocess
import sys
import time
import urllib.parse
from collections import Counter
from pathlib import Path

if __package__ in (None, ""):  # run as a file: python bench/kill_campaign.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common  # noqa: E402 - after the path fix above
from bench.common import say  # noqa: E402

ORPHAN_AFTER = 20
DEFAULT_FAILPOINTS = ("batch.claimed=0.05,batch.signed=0.05,batch.committed=0.05,send.before_broadcast=0.05,"
                      "send.after_broadcast=0.05,track.before_final=0.05")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--transfers", type=int, default=1000)
    p.add_argument("--rate", type=float, default=20, help="funded transfers arriving per second (default 20)")
    p.add_argument("--kill-every", type=int, default=50, help="SIGKILL a worker after it received this many tasks")
    p.add_argument("--concurrency", type=int, default=2, help="pool size of each of the two workers (default 2)")
    p.add_argument("--failpoints", nargs="?", const=DEFAULT_FAILPOINTS, default="",
                   help=f"TULPAR_FAILPOINTS for the workers (flag alone: {DEFAULT_FAILPOINTS})")
    p.add_argument("--restart-postgres", action="store_true",
                   help="restart the PostgreSQL server once (pg_ctlcluster; affects everyone using that server)")
    p.add_argument("--no-resume", dest="resume_halted", action="store_false",
                   help="leave halted wallets halted (by default the campaign resumes them, as an operator would, "
                        "and counts the halts)")
    p.add_argument("--max-seconds", type=int, default=1500, help="bound on the whole run (default 1500)")
    p.add_argument("--seed", type=int, default=20261122)
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (logs) and print its path")
    return p.parse_args()


class Tail:
    """New `Task ... received` lines in a worker's current log."""

    def __init__(self, path):
        self.path, self.offset, self.received = path, 0, 0

    def read(self, names):
        with contextlib.suppress(FileNotFoundError), open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read()
            cut = data.rfind(b"\n") + 1
            self.offset += cut
            for line in data[:cut].decode("utf-8", "replace").splitlines():
                m = common.TASK_RECEIVED.search(line)
                if m:
                    self.received += 1
                    names[m.group(1).rsplit(".", 1)[-1]] += 1
        return self.received


def postgres_cluster():
    """(version, name) of the local cluster serving DATABASE_URL's port, or None."""
    if not shutil.which("pg_ctlcluster") or not shutil.which("pg_lsclusters"):
        return None
    url = urllib.parse.urlsplit(os.environ["DATABASE_URL"])
    if not url.scheme.startswith("postgres") or url.hostname not in ("127.0.0.1", "localhost"):
        return None
    out = subprocess.run(["pg_lsclusters", "--no-header"], capture_output=True, text=True, check=False).stdout
    for line in out.splitlines():
        version, name, port, *_ = line.split()
        if int(port) == (url.port or 5432):
            return version, name
    return None


class Campaign:
    def __init__(self, args, stack, token):
        self.args, self.stack, self.token = args, stack, token
        self.rng = random.Random(args.seed)
        self.ids = []
        self.kills = self.deaths = self.redis_restarts = self.pg_restarts = 0
        self.names = Counter()
        self.tails = {}
        self.suspect_locks = []  # (check at, {key: token}) read right after a kill
        self.orphaned = Counter()
        self.orphan_seen = set()
        self.halts = Counter()
        self.worker_env = {"TULPAR_FAILPOINTS": args.failpoints} if args.failpoints else {}

    # --- processes ------------------------------------------------------------------------------------------------

    def start_worker(self, slot):
        proc, log = self.stack.start_worker(slot, concurrency=self.args.concurrency, extra_env=self.worker_env)
        self.tails[slot] = Tail(log)
        return proc, log

    def locks(self):
        import redis

        with contextlib.suppress(redis.RedisError):
            client = redis.Redis.from_url(os.environ["REDIS_URL"], socket_timeout=1, socket_connect_timeout=1)
            keys = list(client.scan_iter(f"tulpar:lock:{os.environ['CELERY_QUEUE']}:*"))
            return {k.decode(): client.get(k) for k in keys}
        return {}

    def supervise(self):
        for slot in ("worker1", "worker2"):
            if self.tails[slot].read(self.names) >= self.args.kill_every:
                self.stack.kill_group(slot)
                self.kills += 1
                held = self.locks()
                if held:
                    self.suspect_locks.append((time.monotonic() + ORPHAN_AFTER, held))
                self.start_worker(slot)
            elif self.stack.procs[slot].poll() is not None:
                self.deaths += 1
                self.start_worker(slot)
        if self.stack.procs["beat"].poll() is not None:
            self.deaths += 1
            self.stack.start_beat()
        now = time.monotonic()
        for entry in [e for e in self.suspect_locks if e[0] <= now]:
            self.suspect_locks.remove(entry)
            current = self.locks()
            for key, value in entry[1].items():
                # The same holder ORPHAN_AFTER s later (no pass takes that long): the killed worker's, left to
                # expire at the lock's timeout. Each counted once.
                if current.get(key) == value and (key, value) not in self.orphan_seen:
                    self.orphan_seen.add((key, value))
                    self.orphaned[key.rsplit(":", 2)[-2]] += 1

    # --- traffic --------------------------------------------------------------------------------------------------

    def feed(self, n):
        """n funded transfers, committed, then their `transfer_advance` tasks (what transfer_mark_funded does)."""
        from payments.pipeline import advance_task

        transfers = common.seed_transfers(token=self.token, n=n, rng=self.rng, status="funded", tag="kill")
        self.ids += [t.pk for t in transfers]
        for transfer in transfers:
            try:
                advance_task.delay(str(transfer.pk))
            except Exception:  # noqa: BLE001 - Redis down: the transfer is committed, the sweeper re-sends it
                self.names["lost_at_publish"] += 1

    def completed(self):
        from payments.models import Transfer

        return Transfer.objects.filter(pk__in=self.ids, status=Transfer.Status.COMPLETED).count()

    def idle(self):
        from onchain.models import Batch, Payout

        return not (Payout.objects.filter(status=Payout.Status.QUEUED).exists()
                    or Batch.objects.filter(status__in=[Batch.Status.SIGNED, Batch.Status.BROADCAST,
                                                        Batch.Status.MINED]).exists())

    def run(self, deadline):
        from django.db import connections

        args, total = self.args, self.args.transfers
        cluster = postgres_cluster() if args.restart_postgres else None
        if args.restart_postgres and cluster is None:
            say("# --restart-postgres: no local pg_ctlcluster cluster serves DATABASE_URL; PostgreSQL is not restarted")
        started = time.monotonic()
        fed, done, last_check, last_report = 0, 0, 0.0, started
        step = 0.25
        while time.monotonic() < deadline:
            now = time.monotonic()
            due = min(total, int((now - started) * args.rate) + 1)
            if due > fed:
                with contextlib.suppress(Exception):  # a database restart: try again next step
                    self.feed(due - fed)
                    fed = due
            self.supervise()
            if not self.redis_restarts and fed >= total // 2:
                self.stack.restart_redis()
                self.redis_restarts += 1
                say(f"# {now - started:.0f}s: redis-server SIGKILLed and restarted on port {self.stack.redis_port}")
            if cluster and not self.pg_restarts and done >= total // 4:
                subprocess.run(["pg_ctlcluster", *cluster, "restart"], check=True)
                self.pg_restarts += 1
                connections.close_all()
                say(f"# {now - started:.0f}s: PostgreSQL {cluster[0]}/{cluster[1]} restarted")
            if now - last_check >= 1:
                last_check = now
                try:
                    if args.resume_halted:
                        common.resume_halted(self.halts)
                    done = self.completed()
                except Exception:  # noqa: BLE001 - the database is restarting
                    connections.close_all()
                if fed == total and done == total:
                    return time.monotonic() - started
            if now - last_report >= 30:
                last_report = now
                say(f"# {now - started:.0f}s: {fed} arrived, {done} completed, {self.kills} kills, "
                    f"orphaned locks {dict(self.orphaned)}, wallet halts {sum(self.halts.values())}")
            time.sleep(step)
        raise common.RunTimeout(f"{done}/{total} completed when the time bound was reached")


def main():
    args = parse_args()
    common.bound_run_time(args.max_seconds + 120)  # the campaign's own deadline comes first; this is the backstop
    began = time.monotonic()
    stack = common.Stack("bench-kill", private_redis=True, keep=args.keep)
    try:
        stack.environment()
        anvil_url = stack.start_anvil()
        redis_url, _ = stack.start_redis()
        database = stack.create_database()
        stack.django()
        chain, token, w3 = common.chain_setup(stack)
        say(f"# tulpar kill campaign, {time.strftime('%Y-%m-%d %H:%M:%S')}: {args.transfers} transfers at "
            f"{args.rate:g}/s, SIGKILL a worker every {args.kill_every} tasks it receives, failpoints "
            f"{args.failpoints or 'off'}")
        say(f"# anvil {anvil_url}; database {database}; private redis {redis_url}; queue {os.environ['CELERY_QUEUE']}; "
            f"logs in {stack.tmp}")
        campaign = Campaign(args, stack, token)
        for slot in ("worker1", "worker2"):
            proc, log = campaign.start_worker(slot)
            common.wait_for_log(log, " ready.", proc=proc)
        stack.start_beat()
        common.wait_for_log(stack.tmp / "beat.log", "beat: Starting", proc=stack.procs["beat"])

        elapsed = campaign.run(time.monotonic() + args.max_seconds)
        # Let what is in flight settle (nothing should be), then stop the workers before counting.
        settle = time.monotonic() + 30
        while time.monotonic() < settle and not campaign.idle():
            time.sleep(0.5)
        stack.stop_celery()
        double, lost, equal, ledger_units, chain_units = common.integrity(token, campaign.ids)
        logs = [p for paths in stack.log_files.values() for p in paths]
        failpoint_kills = sum(open(p, encoding="utf-8", errors="replace").read().count("exited with 'signal 9") for p in logs)
        from onchain.models import Batch, OperatorAlert

        say(f"kill.transfers: {len(campaign.ids)}")
        say(f"kill.completed: {campaign.completed()}")
        say(f"kill.double_payouts: {double}")
        say(f"kill.lost_payouts: {lost}")
        say(f"kill.ledger_equals_chain: {equal}")
        say(f"kill.kills: {campaign.kills}")
        say(f"kill.failpoint_kills: {failpoint_kills}")
        say(f"kill.other_restarts: {campaign.deaths}")
        say(f"kill.wallet_halts: {sum(campaign.halts.values())}")
        say(f"kill.redis_restarts: {campaign.redis_restarts}")
        say(f"kill.postgres_restarts: {campaign.pg_restarts}")
        say(f"kill.elapsed_seconds: {elapsed:.1f}")
        batches = Batch.objects.all()
        say(f"# {batches.count()} batches, {sum(b.send_attempts for b in batches)} send task starts; tasks received "
            f"{dict(campaign.names.most_common())}")
        say(f"# locks still held by a killed worker's token {ORPHAN_AFTER} s after the kill: {dict(campaign.orphaned)}")
        for event in ("batch_signed", "batch_final"):
            gap, at = common.longest_gap(common.event_times(logs, event))
            say(f"# longest gap between consecutive {event} lines: {gap:.1f}s (from {at:%H:%M:%S})" if at else
                f"# no {event} lines")
        say(f"# wallet halts (resumed by the campaign): {dict(campaign.halts)}")
        alerts = Counter(kind for kind, in OperatorAlert.objects.values_list("kind"))
        say(f"# operator alerts by kind: {dict(alerts)}; first: "
            f"{list(OperatorAlert.objects.order_by('id').values_list('message', flat=True)[:2])}")
        say(f"# ledger payouts {ledger_units} base units, chain {chain_units} base units; run took "
            f"{time.monotonic() - began:.0f}s")
        return 0 if not (double or lost or not equal) else 1
    except BaseException as exc:
        say(f"# stopped early: {type(exc).__name__}: {exc}; cleaning up")
        raise
    finally:
        stack.close()
        if args.keep:
            say(f"# kept {stack.tmp}")


if __name__ == "__main__":
    sys.exit(main())
