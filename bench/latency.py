"""Latency benchmark: funded → completed through the real pipeline, at a steady rate and at a burst rate.

One run starts its own anvil (1-second blocks, `finalized` two blocks behind the head), a fresh database, Redis
(REDIS_URL, or a private redis-server), a queue of its own, real Celery workers + beat and the new-heads runner
(`manage.py chain_heads`) as subprocesses. For each rate it funds transfers at that pace for `--seconds`: each is
inserted `funded` (quote, transfer, funding journal entry, as payments.pipeline.transfer_mark_funded leaves it) and
the screening task is kicked after the commit (pipeline.advance_kick), as the funding paths do; from there it is the gateway's
own path: screening, payout_request (which triggers the builder), batching, send, tracking, finality, completion.
Then it waits for the last one and prints, per rate:

    latency.rate<R>.funded_to_completed_s_p50 / _p99   completed_at - funded_at, from the database
    latency.rate<R>.floor_s_p50 / _p99                 the chain's own floor for the same moments: from funded_at
                                                       to the head two blocks past the first block mined after it
                                                       (inclusion + 2 blocks of finality), from a head sampler
    latency.rate<R>.ratio_p50_vs_floor                 funded_to_completed p50 / floor p50

    make bench-latency                  # or: .venv/bin/python -m bench.latency --rates 20,200 --seconds 30

Lines starting with `#` are commentary: the stages (funded → payout queued → signed → broadcast → mined → final →
completed), batch sizes, the machine's load.
"""

import argparse
import os
import random
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common  # noqa: E402
from bench.common import say  # noqa: E402

FINALIZED_LAG = 2  # anvil --slots-in-an-epoch 1: finalized = head - 2
TARGETS = {  # on an idle machine, 1-second blocks, finality two blocks after inclusion (issue 13)
    "rate20.funded_to_completed_s_p50": 3.0, "rate20.funded_to_completed_s_p99": 4.5,
    "rate200.funded_to_completed_s_p99": 6.0,
}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rates", default="20,200", help="funded transfers per second, one run each (default 20,200)")
    p.add_argument("--seconds", type=float, default=30, help="length of each run (default 30)")
    p.add_argument("--tick", type=float, default=0.1, help="one commit of funded transfers every TICK s (default 0.1)")
    p.add_argument("--workers", type=int, default=2, help="Celery worker processes (default 2)")
    p.add_argument("--concurrency", type=int, default=2, help="pool size of each worker (default 2)")
    p.add_argument("--no-heads", action="store_true", help="without the new-heads runner: beat's passes alone")
    p.add_argument("--drain-seconds", type=float, default=300, help="wait for the last transfers (default 300)")
    p.add_argument("--max-seconds", type=int, default=1500, help="bound on the whole run (default 1500)")
    p.add_argument("--seed", type=int, default=20261129)
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (logs) and print its path")
    return p.parse_args()


def start_heads(stack):
    log = stack.tmp / "heads.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "manage.py", "chain_heads"], cwd=common.REPO,
                                env=dict(os.environ, LOG_LEVEL=stack.child_log_level), stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    stack.procs["heads"] = proc
    return proc, log


def fund_at_rate(token, rng, *, rate, seconds, tick, tag):
    """Funded transfers at `rate` per second for `seconds`: a commit every `tick` s, then the screening kick."""
    from payments.pipeline import advance_kick

    ids, started, n = [], time.monotonic(), 0
    while time.monotonic() - started < seconds:
        due = int((time.monotonic() - started + tick) * rate) - n  # catch up when a commit ran late
        if due > 0:
            wave = common.seed_transfers(token=token, n=due, rng=rng, status="funded", tag=tag, with_payouts=False)
            advance_kick()  # what transfer_mark_funded does on commit (pipeline.advance_soon)
            ids += [t.pk for t in wave]
            n += due
        time.sleep(max(0.0, started + (n / rate) - time.monotonic()))
    return ids, time.monotonic() - started


def floors(funded, sampler):
    """Per transfer: seconds from funded_at to the first sight of the head two blocks past the first block mined
    after funded_at (the earliest a payout of that moment can be final)."""
    import bisect

    out = []
    for ts in funded:
        i = bisect.bisect_right(sampler.times, ts)  # the first head seen after funding
        if i >= len(sampler.times):
            continue
        target = sampler.numbers[i] + FINALIZED_LAG
        j = bisect.bisect_left(sampler.numbers, target, lo=i)
        if j < len(sampler.times):
            out.append(sampler.times[j] - ts)
    return out


def stages(ids):
    """Median seconds of each stage, over the transfers' payouts and batches."""
    from onchain.models import Payout
    from payments.models import Transfer

    funded = dict(Transfer.objects.filter(pk__in=ids).values_list("pk", "funded_at"))
    done = dict(Transfer.objects.filter(pk__in=ids).values_list("pk", "completed_at"))
    rows = Payout.objects.filter(reference__in=[str(i) for i in ids]).values_list(
        "reference", "created_at", "batch__created_at", "batch__broadcast_at", "batch__mined_at", "batch__final_at")
    steps = {"funded->queued": [], "queued->signed": [], "signed->broadcast": [], "broadcast->mined": [],
             "mined->final": [], "final->completed": []}
    for ref, queued, signed, sent, mined, final in rows:
        import uuid

        pk = uuid.UUID(ref)
        points = [funded.get(pk), queued, signed, sent, mined, final, done.get(pk)]
        if any(p is None for p in points):
            continue
        for name, a, b in zip(steps, points, points[1:], strict=False):
            steps[name].append((b - a).total_seconds())
    return {k: common.percentile(v, 50) for k, v in steps.items()}


def queued_to_completed(ids):
    """The settlement engine's own part: the payout's queueing (Payout.created_at, in screening's commit) to the
    transfer's completed_at. What screening's queue adds when the workers fall behind is left out."""
    from onchain.models import Payout
    from payments.models import Transfer

    done = {str(pk): at for pk, at in Transfer.objects.filter(pk__in=ids, status="completed").values_list(
        "pk", "completed_at")}
    queued = Payout.objects.filter(reference__in=list(done)).values_list("reference", "created_at")
    return [(done[ref] - at).total_seconds() for ref, at in queued]


def batch_sizes(ids):
    from onchain.models import Batch

    refs = [str(i) for i in ids]
    rows = Batch.objects.filter(payouts__reference__in=refs).distinct().values_list("pk", "count")
    return Counter(count for _, count in rows)


def measure(token, rng, sampler, *, rate, seconds, tick, drain):
    from payments.models import Transfer

    tag = f"rate{rate:g}"
    load_before = os.getloadavg()[0]
    ids, took = fund_at_rate(token, rng, rate=rate, seconds=seconds, tick=tick, tag=tag)
    try:
        common.wait_completed(ids, timeout=drain)
    except common.RunTimeout as exc:
        say(f"# {tag}: {exc}")
    rows = list(Transfer.objects.filter(pk__in=ids).values_list("funded_at", "completed_at", "status"))
    lat = [(c - f).total_seconds() for f, c, s in rows if s == "completed"]
    engine = queued_to_completed(ids)
    floor = floors([f.timestamp() for f, _, _ in rows], sampler)
    out = {
        f"{tag}.transfers": len(ids),
        f"{tag}.funded_per_second": len(ids) / took,
        f"{tag}.not_completed": sum(1 for *_, s in rows if s != "completed"),
        f"{tag}.funded_to_completed_s_p50": common.percentile(lat, 50),
        f"{tag}.funded_to_completed_s_p99": common.percentile(lat, 99),
        f"{tag}.funded_to_completed_s_max": max(lat, default=float("nan")),
        f"{tag}.queued_to_completed_s_p50": common.percentile(engine, 50),
        f"{tag}.queued_to_completed_s_p99": common.percentile(engine, 99),
        f"{tag}.floor_s_p50": common.percentile(floor, 50),
        f"{tag}.floor_s_p99": common.percentile(floor, 99),
    }
    out[f"{tag}.ratio_p50_vs_floor"] = out[f"{tag}.funded_to_completed_s_p50"] / out[f"{tag}.floor_s_p50"]
    out[f"{tag}.ratio_p99_vs_floor"] = out[f"{tag}.funded_to_completed_s_p99"] / out[f"{tag}.floor_s_p99"]
    for name, value in out.items():
        say(f"latency.{name}: {value:.3f}" if isinstance(value, float) else f"latency.{name}: {value}")
    statuses = Counter(s for *_, s in rows)
    say(f"# {tag}: statuses {dict(statuses)}; batch sizes {dict(sorted(batch_sizes(ids).items()))}")
    say(f"# {tag}: median stages (s) " + ", ".join(f"{k} {v:.2f}" for k, v in stages(ids).items()))
    say(f"# {tag}: load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after")
    return out


def main():
    args = parse_args()
    common.bound_run_time(args.max_seconds)
    started = time.monotonic()
    rng = random.Random(args.seed)
    stack = common.Stack("bench-latency", keep=args.keep)
    sampler = None
    try:
        stack.environment()
        # Every transfer is a new sender's: the first-transfers payout delay (a fraud policy) is not the pipeline.
        os.environ["FIRST_TRANSFERS_PAYOUT_DELAY_SECONDS"] = "0"
        os.environ["US_CANCEL_WINDOW_SECONDS"] = "0"
        anvil_url = stack.start_anvil()
        redis_url, redis_kind = stack.start_redis()
        database = stack.create_database()
        migrate_s = stack.django()
        from django.conf import settings

        _, token, _ = common.chain_setup(stack)
        say(f"# tulpar latency benchmark, {time.strftime('%Y-%m-%d %H:%M:%S')}; load average "
            f"{os.getloadavg()[0]:.2f} (targets are for an idle machine)")
        say(f"# anvil {anvil_url} (1 s blocks, finalized = head - 2); database {database} (migrated in "
            f"{migrate_s:.1f}s); redis {redis_url} ({redis_kind}); queue {os.environ['CELERY_QUEUE']}")
        say(f"# {args.workers} worker(s) x {args.concurrency} + beat + {'no heads runner' if args.no_heads else 'heads runner'}; "
            f"BATCH_MAX_SIZE={settings.BATCH_MAX_SIZE} BATCH_MAX_AGE_MS={settings.BATCH_MAX_AGE_MS} "
            f"SETTLEMENT_TRACK_MS={settings.SETTLEMENT_TRACK_MS}; hot wallets {len(stack.wallets)}; logs in {stack.tmp}")
        sampler = common.HeadSampler(anvil_url, interval=0.05)
        sampler.start()
        for i in range(args.workers):
            proc, log = stack.start_worker(f"worker{i + 1}", concurrency=args.concurrency)
            common.wait_for_log(log, " ready.", proc=proc)
        stack.start_beat()
        common.wait_for_log(stack.tmp / "beat.log", "beat: Starting", proc=stack.procs["beat"])
        if not args.no_heads:
            proc, log = start_heads(stack)
            common.wait_for_log(log, "heads_subscribed", proc=proc)
        figures = {}
        for rate in [float(r) for r in args.rates.split(",")]:
            say(f"# {rate:g} funded transfers/s for {args.seconds:g}s")
            figures.update(measure(token, rng, sampler, rate=rate, seconds=args.seconds, tick=args.tick,
                                   drain=args.drain_seconds))
        misses = [f"{k} {figures[k]:.2f} > {v}" for k, v in TARGETS.items() if k in figures and not figures[k] <= v]
        say("# targets: all met" if not misses else "# targets missed: " + "; ".join(misses))
        durations = common.task_durations([p for logs in stack.log_files.values() for p in logs])
        for name, values in sorted(durations.items()):
            say(f"# task {name}: {common.summarise(values)}")
        say(f"# run took {time.monotonic() - started:.0f}s")
        return 0
    except BaseException as exc:
        say(f"# stopped early: {type(exc).__name__}: {exc}; cleaning up")
        raise
    finally:
        if sampler is not None:
            sampler.stop()
        stack.close()
        if args.keep:
            say(f"# kept {stack.tmp}")


if __name__ == "__main__":
    sys.exit(main())
