"""Quote benchmark: POST /api/v1/quotes under gunicorn against a bare DRF POST, measured in the same run.

One run starts its own anvil (the float check of every quote reads the treasury snapshot of a real dev KGST), a
fresh database (tulpar_bench_<pid> on DATABASE_URL's PostgreSQL), Redis (REDIS_URL, or a private redis-server) and
gunicorn with the production settings (gateway.settings from the environment; DEBUG off, behind a TLS proxy) plus
the benchmark's own bare POST (bench/bare: an app and URL outside the product), 2 sync workers. Eight client
connections (httpx, one thread each) then alternate between the two endpoints in equal phases, so load from
elsewhere on the machine falls on both alike. Everything it started is stopped on exit.

    make bench-quotes                      # or: .venv/bin/python -m bench.quotes --seconds 15

Prints one `name: value` line per figure (lines starting with `#` are commentary).
"""

import argparse
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

if __package__ in (None, ""):  # run as a file: python bench/quotes.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common  # noqa: E402 - after the path fix above
from bench.common import say  # noqa: E402
from gateway.dev import services  # noqa: E402

TARGETS = {"quotes.ratio_vs_bare_drf_post": (">=", 0.7), "quotes.p99_ratio_vs_bare_drf_post": ("<=", 1.5)}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=10, help="length of each measured phase (default 10)")
    p.add_argument("--rounds", type=int, default=3, help="phases per endpoint, alternating (default 3)")
    p.add_argument("--connections", type=int, default=8, help="concurrent client connections (default 8)")
    p.add_argument("--workers", type=int, default=2, help="gunicorn sync workers (default 2)")
    p.add_argument("--seed", type=int, default=7, help="seed of the quote bodies (default 7)")
    p.add_argument("--max-seconds", type=int, default=600, help="hard bound on the whole run (default 600)")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (gunicorn's log)")
    return p.parse_args()


def quote_bodies(rng, n=2000):
    """Mixed directions and currencies, amounts anywhere inside the seeded corridors' limits."""
    bodies = []
    for _ in range(n):
        currency = rng.choice(["RUB", "USD"])
        if rng.random() < 0.5:
            low, high = (500_00, 400_000_00) if currency == "RUB" else (10_00, 4_000_00)
            bodies.append({"source_currency": currency, "source_amount": str(Decimal(rng.randint(low, high)) / 100),
                           "target_currency": "KGS"})
        else:
            low, high = (1_000_00, 400_000_00)
            bodies.append({"source_currency": currency, "target_amount": str(Decimal(rng.randint(low, high)) / 100),
                           "target_currency": "KGS"})
    return bodies


def bare_bodies(rng, n=2000):
    return [{"currency": rng.choice(["RUB", "USD"]), "amount": str(Decimal(rng.randint(1, 10**7)) / 100),
             "note": f"bench {i}"} for i in range(n)]


def start_gunicorn(stack, port, workers):
    log = stack.tmp / "gunicorn.log"
    cmd = [sys.executable, "-m", "gunicorn", "gateway.wsgi:application", "-c", "python:gateway.gunicorn",
           "--bind", f"127.0.0.1:{port}",
           "--workers", str(workers), "--worker-class", "sync", "--timeout", "30", "--access-logfile", "-",
           "--access-logformat", 'access %(U)s %(s)s %(D)s']
    # As compose.yaml's web: each worker keeps its database connection between requests.
    env = dict(os.environ, LOG_LEVEL="WARNING", DATABASE_CONN_MAX_AGE=os.environ.get("DATABASE_CONN_MAX_AGE", "60"))
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, cwd=common.REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    stack.procs["gunicorn"] = proc  # stopped with the Celery processes by Stack.close()
    deadline = time.monotonic() + 60
    while not services.port_open(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"gunicorn did not start; see {log}")
        time.sleep(0.1)
    return proc


def load(base, path, bodies, *, key, connections, seconds):
    """`connections` threads, each its own connection, POST bodies in turn for `seconds`. Returns (latencies in ms
    of 2xx answers, status counts, elapsed seconds)."""
    import httpx

    headers = {"Authorization": f"Api-Key {key}", "X-Forwarded-Proto": "https", "Content-Type": "application/json"}
    latencies, statuses, lock = [], Counter(), threading.Lock()
    start = threading.Barrier(connections + 1)
    stop_at = [0.0]

    def run(offset):
        import json

        mine, seen = [], Counter()
        with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
            i = offset
            start.wait()
            while time.monotonic() < stop_at[0]:
                body = json.dumps(bodies[i % len(bodies)])
                i += connections
                t0 = time.perf_counter()
                response = http.post(path, content=body)
                elapsed = (time.perf_counter() - t0) * 1000
                seen[response.status_code] += 1
                if 200 <= response.status_code < 300:
                    mine.append(elapsed)
        with lock:
            latencies.extend(mine)
            statuses.update(seen)

    threads = [threading.Thread(target=run, args=(n,), daemon=True) for n in range(connections)]
    for thread in threads:
        thread.start()
    stop_at[0] = time.monotonic() + seconds
    began = time.monotonic()
    start.wait()
    for thread in threads:
        thread.join()
    return latencies, statuses, time.monotonic() - began


def server_side(log):
    """Commentary: time inside gunicorn's workers per endpoint (its access log's %(D)s), which the client's own
    scheduling on a busy machine does not blur."""
    per_path = {}
    for line in log.read_text(errors="replace").splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[0] == "access" and parts[2].startswith("2"):
            per_path.setdefault(parts[1], []).append(int(parts[3]) / 1000)
    for path, ms in sorted(per_path.items()):
        say(f"# server side {path}: {len(ms)} requests, p50 {common.percentile(ms, 50):.1f} ms, "
            f"p99 {common.percentile(ms, 99):.1f} ms, mean {sum(ms) / len(ms):.1f} ms")


def main():
    args = parse_args()
    common.bound_run_time(args.max_seconds)
    rng = random.Random(args.seed)
    stack = common.Stack("bench-quotes", keep=args.keep)
    try:
        stack.environment()
        env = os.environ
        env["DJANGO_SETTINGS_MODULE"] = "bench.bare.settings"  # gateway.settings + the bare POST (bench/bare)
        env["DJANGO_DEBUG"] = "0"
        env["DJANGO_BEHIND_PROXY"] = "1"  # as in production behind Caddy: the client sends X-Forwarded-Proto
        env["RATE_API_PER_MINUTE"] = str(10**9)  # the partner-key limit is counted (Redis) but never reached
        env["RATES_SOURCE"] = "recorded"  # the bundled NBKR file as today's rates
        anvil_url = stack.start_anvil()
        redis_url, redis_kind = stack.start_redis()
        database = stack.create_database()
        if not database.startswith("postgresql"):
            raise SystemExit(f"bench-quotes needs PostgreSQL: {database}")
        migrate_s = stack.django()
        from django.db import connection

        from bench.bare.models import BareRow
        from onchain.services.treasury import treasury_check
        from payments.services.rates import rates_refresh
        from payments.services.setup import corridors_seed, partner_create

        with connection.schema_editor() as editor:
            editor.create_model(BareRow)
        _, token, _ = common.chain_setup(stack)
        treasury_check(token_id=token.id)  # the float snapshot every quote is checked against
        corridors_seed()
        rates = rates_refresh()
        _, key = partner_create(name="bench")
        connection.close()
        port = services.free_port()
        start_gunicorn(stack, port, args.workers)
        base = f"http://127.0.0.1:{port}"
        say(f"# tulpar quote benchmark, {time.strftime('%Y-%m-%d %H:%M:%S')}")
        say(f"# gunicorn {args.workers} sync workers at {base}; anvil {anvil_url}; database {database} (migrated in "
            f"{migrate_s:.1f}s); redis {redis_url} ({redis_kind}); rates {', '.join(str(r) for r in rates)}")
        say(f"# {args.connections} connections, {args.rounds} alternating phases of {args.seconds:.0f}s per endpoint; "
            f"load average {os.getloadavg()[0]:.2f}")

        endpoints = {"quotes": ("/api/v1/quotes", quote_bodies(rng)), "bare_post": ("/bench/bare", bare_bodies(rng))}
        for name, (path, bodies) in endpoints.items():  # warm-up: imports, connections, caches
            _, statuses, _ = load(base, path, bodies, key=key, connections=args.connections, seconds=2)
            if set(statuses) - {201}:
                raise RuntimeError(f"{name} warm-up answered {dict(statuses)}; see {stack.tmp / 'gunicorn.log'}")
        results = {name: ([], Counter(), 0.0) for name in endpoints}
        for round_ in range(args.rounds):
            order = list(endpoints) if round_ % 2 == 0 else list(reversed(endpoints))
            for name in order:
                path, bodies = endpoints[name]
                lat, statuses, elapsed = load(base, path, bodies, key=key, connections=args.connections,
                                              seconds=args.seconds)
                all_lat, all_statuses, all_elapsed = results[name]
                all_lat.extend(lat)
                all_statuses.update(statuses)
                results[name] = (all_lat, all_statuses, all_elapsed + elapsed)
                say(f"# round {round_ + 1} {name}: {len(lat) / elapsed:.0f}/s p99 {common.percentile(lat, 99):.1f} ms")

        figures = {}
        for name, (lat, statuses, elapsed) in results.items():
            figures[f"{name}.per_second"] = len(lat) / elapsed
            figures[f"{name}.p50_ms"] = common.percentile(lat, 50)
            figures[f"{name}.p99_ms"] = common.percentile(lat, 99)
            figures[f"{name}.errors"] = sum(n for status, n in statuses.items() if not 200 <= status < 300)
        figures["quotes.ratio_vs_bare_drf_post"] = figures["quotes.per_second"] / figures["bare_post.per_second"]
        figures["quotes.p99_ratio_vs_bare_drf_post"] = figures["quotes.p99_ms"] / figures["bare_post.p99_ms"]
        for name, value in figures.items():
            say(f"{name}: {value:.2f}" if isinstance(value, float) else f"{name}: {value}")
        missed = [name for name, (op, target) in TARGETS.items()
                  if not (figures[name] >= target if op == ">=" else figures[name] <= target)]
        say(f"# targets: ratio >= 0.7, p99 ratio <= 1.5: {'met' if not missed else 'missed ' + ', '.join(missed)}")
        say(f"# load average at the end {os.getloadavg()[0]:.2f}")
        server_side(stack.tmp / "gunicorn.log")
        return 1 if missed or figures["quotes.errors"] or figures["bare_post.errors"] else 0
    finally:
        gunicorn = stack.procs.get("gunicorn")
        if gunicorn is not None and gunicorn.poll() is None:
            os.killpg(gunicorn.pid, signal.SIGTERM)
        stack.close()


if __name__ == "__main__":
    sys.exit(main())
