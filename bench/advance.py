"""CPU and SQL per screening step (`transfer_advance`: funded → payout queued), in process, against a real PostgreSQL
and Redis; no chain, no workers (the payout is queued, the build trigger goes to a queue of this run's own that
nobody consumes and that is deleted at the end).

Seeds `--transfers` funded transfers as bench-latency does (quote, transfer, funding entry, one sender), with a limit
reservation per identity as the creating transaction leaves it, then advances them one by one exactly as the Celery
task does, and prints per advance: CPU ms (time.process_time), wall ms and SQL statements. `--profile N` prints
cProfile's top N functions by cumulative time. `--baseline REV` runs the same measurement on git revision REV's code
(checked out into a temporary directory, this script copied in) in a subprocess, then prints the ratios.

    .venv/bin/python -m bench.advance --transfers 200
    .venv/bin/python -m bench.advance --transfers 200 --baseline a0c89e7
"""

import argparse
import contextlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REPO = Path(__file__).resolve().parents[1]


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--transfers", type=int, default=200, help="funded transfers advanced (default 200)")
    p.add_argument("--warmup", type=int, default=20, help="advanced first, not counted (default 20)")
    p.add_argument("--database", default=None,
                   help="database name on DATABASE_URL's server, dropped and created (default tulpar_bench_<pid>)")
    p.add_argument("--profile", type=int, default=0, help="print cProfile's top N functions")
    p.add_argument("--sort", default="cumulative", help="cProfile order (default cumulative; tottime)")
    p.add_argument("--baseline", default=None, help="git revision to measure the same way, for the ratios")
    p.add_argument("--show-sql", type=int, default=0, help="print the SQL of the last warm-up advance (N lines)")
    p.add_argument("--json", action="store_true", help="print the figures as one JSON line (for --baseline)")
    p.add_argument("--seed", type=int, default=20261129)
    return p.parse_args()


def say(line):
    print(line, flush=True)


def environment(database):
    import secrets

    env = os.environ
    env["DJANGO_SETTINGS_MODULE"] = "gateway.settings"
    env.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(40))
    env["TULPAR_VAR_DIR"] = tempfile.mkdtemp(prefix="tulpar-bench-advance-")
    env["CELERY_QUEUE"] = f"tulpar-bench-advance-{os.getpid()}"
    env.setdefault("NOTIFY_CHANNELS", "")
    env["LOG_LEVEL"] = "WARNING"
    env["FIRST_TRANSFERS_PAYOUT_DELAY_SECONDS"] = "0"
    env["LARGE_AMOUNT_PAYOUT_DELAY_SECONDS"] = "0"
    env["US_CANCEL_WINDOW_SECONDS"] = "0"
    env["RATES_SOURCE"] = "manual"
    base = env.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/tulpar")
    parsed = urllib.parse.urlsplit(base)
    import psycopg

    admin = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{database}"')
    env["DATABASE_URL"] = parsed._replace(path="/" + database).geturl()
    return admin


def setup_rows():
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    from onchain.models import Chain, Token
    from payments.services.setup import corridors_seed, rates_seed

    corridors_seed()
    rates_seed()
    chain = Chain.objects.create(chain_id=31337, name="bench")
    return Token.objects.create(chain=chain, symbol="KGST", address="0x" + "11" * 20, decimals=18)


def seed(token, n, rng):
    """n funded transfers as bench-latency's, each with the limit reservations its creation would have made."""
    from bench import common
    from payments.models import LimitReservation, Transfer
    from payments.services.limits import identity_key

    transfers = common.seed_transfers(token=token, n=n, rng=rng, status="funded", tag=f"adv{rng.random()}",
                                      with_payouts=False)
    for t in transfers:  # one sender each (bench-latency's share one, with no reservations): all clear their limits
        t.sender_phone, t.sender_email = f"+7900{rng.randrange(10**7):07d}", f"s{t.pk.hex[:12]}@example.com"
    Transfer.objects.bulk_update(transfers, ["sender_phone", "sender_email"], batch_size=1000)
    LimitReservation.objects.bulk_create([
        LimitReservation(transfer=t, kind=kind, key=identity_key(kind, value), currency="RUB",
                         amount_minor=t.source_minor, created_at=t.funded_at)
        for t in transfers for kind, value in (("phone", t.sender_phone), ("email", t.sender_email))])
    return [str(t.pk) for t in transfers]


class Counter:
    def __init__(self, show=0):
        self.n, self.show = 0, show

    def __call__(self, execute, sql, params, many, context):
        self.n += 1
        if self.n <= self.show:
            say(f"# sql {self.n}: {sql[:300]}")
        return execute(sql, params, many, context)


def advance_all(ids, show=0, batched=False):
    """Advance each as payments.pipeline.advance_task does, or (`batched`) all of them as the screening task
    transfers_advance_due does; returns (cpu s, wall s, statements)."""
    from django.db import connection

    from payments import pipeline

    counter = Counter(show)
    with connection.execute_wrapper(counter):
        cpu, wall = time.process_time(), time.perf_counter()
        if batched:
            pipeline.transfers_advance_due()
        else:
            for transfer_id in ids:
                pipeline.advance_task.run(transfer_id)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return cpu, wall, counter.n


def measure(args):
    import django

    django.setup()
    token = setup_rows()
    rng = random.Random(args.seed)
    from payments import pipeline
    from payments.models import Transfer

    warm = seed(token, args.warmup, rng)
    advance_all(warm[:-1])  # the name index, caches and connections, as a running worker has them
    advance_all(warm[-1:], show=args.show_sql)
    figures = {}
    modes = ["one"] + (["batched"] if hasattr(pipeline, "transfers_advance_due") else [])
    for mode in modes:  # one by one (advance_task per transfer), then the batched screening task
        ids = seed(token, args.transfers, rng)
        if args.profile:
            import cProfile
            import pstats

            profiler = cProfile.Profile()
            profiler.enable()
        cpu, wall, statements = advance_all(ids, batched=mode == "batched")
        if args.profile:
            profiler.disable()
            say(f"# profile, {mode}")
            pstats.Stats(profiler, stream=sys.stdout).sort_stats(args.sort).print_stats(args.profile)
        statuses = dict(Transfer.objects.filter(pk__in=ids).values_list("status").annotate(
            n=django.db.models.Count("pk")))
        n = len(ids)
        figures[mode] = {"cpu_ms_per_advance": cpu * 1000 / n, "wall_ms_per_advance": wall * 1000 / n,
                         "sql_per_advance": statements / n, "statuses": statuses}
    return figures


def baseline(rev, args):
    """The same measurement on revision `rev`'s code, in a subprocess; returns its figures."""
    tmp = Path(tempfile.mkdtemp(prefix="tulpar-bench-advance-base-"))
    try:
        archive = subprocess.run(["git", "archive", rev], cwd=REPO, check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive, check=True)
        shutil.copy2(__file__, tmp / "bench" / "advance.py")
        cmd = [sys.executable, "-m", "bench.advance", "--transfers", str(args.transfers), "--warmup",
               str(args.warmup), "--seed", str(args.seed), "--json",
               "--database", f"tulpar_bench_advance_base_{os.getpid()}"]
        out = subprocess.run(cmd, cwd=tmp, check=True, capture_output=True, text=True,
                             env={k: v for k, v in os.environ.items() if k not in ("DATABASE_URL",)}
                             | {"DATABASE_URL": os.environ.get("BENCH_BASE_DATABASE_URL", os.environ["DATABASE_URL"])})
        return json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    args = parse_args()
    database = args.database or f"tulpar_bench_{os.getpid()}"
    os.environ.setdefault("BENCH_BASE_DATABASE_URL", os.environ.get("DATABASE_URL",
                                                                   "postgres://postgres@127.0.0.1:5432/tulpar"))
    admin = environment(database)
    try:
        figures = measure(args)
    finally:
        from django.db import connections

        connections.close_all()
        import psycopg

        with contextlib.suppress(psycopg.Error), psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        with contextlib.suppress(Exception):
            import redis

            client = redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
            keys = list(client.scan_iter(f"*{os.environ['CELERY_QUEUE']}*"))
            if keys:
                client.delete(*keys)
    if args.json:
        print(json.dumps(figures))
        return 0
    names = ("cpu_ms_per_advance", "wall_ms_per_advance", "sql_per_advance")
    say(f"# load average {os.getloadavg()[0]:.2f}; {args.transfers} transfers per mode, {args.warmup} warm-up")
    for mode, values in figures.items():
        for name in names:
            say(f"advance.{mode}.{name}: {values[name]:.2f}")
        say(f"# {mode}: statuses after {values['statuses']}")
    if "batched" in figures:
        for name in names:
            say(f"advance.ratio_batched_vs_one.{name}: {figures['batched'][name] / figures['one'][name]:.3f}")
    if args.baseline:
        base = baseline(args.baseline, args)
        say(f"# baseline {args.baseline}: same script, same machine, just after (load average "
            f"{os.getloadavg()[0]:.2f})")
        for mode, values in base.items():
            for name in names:
                say(f"advance.baseline.{mode}.{name}: {values[name]:.2f}")
        for mode in figures:
            for name in names:
                say(f"advance.ratio_{mode}_vs_baseline_one.{name}: {figures[mode][name] / base['one'][name]:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
