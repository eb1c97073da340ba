"""Reorg campaign: payouts through the whole engine (real Celery workers and beat, as bench/settlement.py) while the
chain is reorganised at its head at random moments (fixed seed), then count on the chain: every payout paid
exactly once, and the ledger's payouts equal the chain's to the base unit.

anvil mines a block a second; `anvil_reorg` replaces the last 1–5 blocks (bench/reorgs.py): for about half the
senders a prefix of their replaced transactions is put back into the new branch, everything else vanishes from chain
and pool, and the engine has to notice and send the same signed bytes again.

Two parts, reported apart:

1. **Within finality** (the campaign's claim): the chain is tracked with `confirmations` = 6 (final = head - 5), so a
   reorg of depth ≤ 5 never replaces a block the engine treats as final, as on a chain that keeps its finality
   guarantee. --reorgs (100) reorgs during --payouts (2,000) payouts arriving at --rate per second.
2. **Deeper than finality** (a measurement, not a claim): the chain is tracked with anvil's `finalized` tag, two
   blocks behind the head (`--slots-in-an-epoch 1`, as `make run` and the other benchmarks), and --deep-reorgs
   reorgs of depth 3–5 replace finalized blocks during --deep-payouts payouts. anvil allows it; no chain with finality
   does. It reports what then happens: completed transfers whose payment vanished from the chain, payouts paid twice,
   transfers left waiting.

    make bench-reorg                     # or: .venv/bin/python -m bench.reorg --payouts 2000 --reorgs 100

Prints `reorg.<name>: value` lines (lines starting with `#` are commentary); exits non-zero when part 1 paid a
payout twice or lost one, or its ledger disagrees with the chain.
"""

import argparse
import contextlib
import os
import random
import sys
import time
from collections import Counter
from pathlib import Path

if __package__ in (None, ""):  # run as a file: python bench/reorg.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common  # noqa: E402 - after the path fix above
from bench.common import say  # noqa: E402
from bench.reorgs import reorg_head  # noqa: E402

SAFE_CONFIRMATIONS = 6  # final = head - 5: a reorg of depth <= 5 replaces no final block
MAX_DEPTH = 5


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--payouts", type=int, default=2000, help="payouts of part 1 (default 2000)")
    p.add_argument("--reorgs", type=int, default=100, help="reorgs of depth 1-5 during part 1 (default 100)")
    p.add_argument("--rate", type=float, default=10, help="payouts queued per second (default 10)")
    p.add_argument("--reinclude-share", type=float, default=0.5,
                   help="share of a reorg's senders whose replaced transactions (a prefix) go into the new branch")
    p.add_argument("--deep-payouts", type=int, default=300, help="payouts of part 2 (default 300; 0 skips it)")
    p.add_argument("--deep-reorgs", type=int, default=10, help="reorgs of depth 3-5 during part 2 (default 10)")
    p.add_argument("--deep-wait", type=int, default=90,
                   help="seconds part 2 waits for its transfers once its reorgs are done (default 90)")
    p.add_argument("--workers", type=int, default=2, help="Celery worker processes (default 2)")
    p.add_argument("--concurrency", type=int, default=2, help="pool size of each worker (default 2)")
    p.add_argument("--max-seconds", type=int, default=1200, help="bound on the whole run (default 1200)")
    p.add_argument("--seed", type=int, default=20261129)
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (logs) and print its path")
    return p.parse_args()


def put(name, value):
    say(f"reorg.{name}: {value:.3f}" if isinstance(value, float) else f"reorg.{name}: {value}")


class Part:
    """Payouts of settling transfers committed at `rate` per second (one commit every 0.5 s) while reorgs of the
    given depths happen at seeded moments spread over the same time; records each reorg and what it hit."""

    def __init__(self, token, w3, rng, *, payouts, rate, reorgs, depths, reinclude_share, tag):
        self.token, self.w3, self.rng, self.reinclude_share = token, w3, rng, reinclude_share
        self.transfers = common.seed_transfers(token=token, n=payouts, rng=rng, status="settling", tag=tag,
                                               with_payouts=False)
        self.rate = rate
        span = payouts / rate
        self.plan = sorted((rng.uniform(0.5, span), rng.randint(*depths)) for _ in range(reorgs))
        self.done = []  # bench.reorgs.Reorg
        self.final_dropped = []  # hashes of batches already final (transfers completed) that a reorg took off chain
        self.committed = {}  # transfer id -> epoch seconds its payout was committed
        self.halts = Counter()

    def run(self):
        from django.db import transaction

        chunk = max(1, int(self.rate // 2))
        started = time.monotonic()
        fed, plan = 0, list(self.plan)
        while fed < len(self.transfers) or plan:
            now = time.monotonic() - started
            if fed < len(self.transfers) and now >= fed / self.rate:
                wave = self.transfers[fed:fed + chunk]
                with transaction.atomic():
                    common.seed_payouts(token=self.token, transfers=wave)
                stamp = time.time()
                self.committed.update((t.pk, stamp) for t in wave)
                fed += len(wave)
                common.kick_builder(self.token)
            while plan and now >= plan[0][0]:
                _, depth = plan.pop(0)
                self.reorg(depth)
            common.resume_halted(self.halts)
            time.sleep(0.02)
        return time.monotonic() - started

    def reorg(self, depth):
        from onchain.models import Batch

        done = reorg_head(self.w3, depth, self.rng, reinclude_share=self.reinclude_share, interval_mining=1)
        self.done.append(done)
        self.final_dropped += Batch.objects.filter(status=Batch.Status.FINAL, mined_tx__tx_hash__in=done.dropped
                                                   ).values_list("mined_tx__tx_hash", flat=True)

    def ids(self):
        return [t.pk for t in self.transfers]

    def report(self, prefix, replaces_final):
        """`replaces_final(reorg)`: did it replace a block the engine's finality rule had made final?"""
        from onchain.models import ChainTransaction

        ours = set(ChainTransaction.objects.values_list("tx_hash", flat=True))
        put(f"{prefix}reorgs", len(self.done))
        put(f"{prefix}reorgs_by_depth", dict(sorted(Counter(r.depth for r in self.done).items())))
        put(f"{prefix}reorgs_replacing_final_blocks", sum(bool(replaces_final(r)) for r in self.done))
        put(f"{prefix}reorgs_hitting_a_batch", sum(bool(set(r.dropped + r.reincluded) & ours) for r in self.done))
        put(f"{prefix}batch_txs_dropped", sum(len(set(r.dropped) & ours) for r in self.done))
        put(f"{prefix}batch_txs_reincluded", sum(len(set(r.reincluded) & ours) for r in self.done))
        put(f"{prefix}final_batches_dropped", len(self.final_dropped))

    def latencies(self):
        from payments.models import Transfer

        done = Transfer.objects.filter(pk__in=self.ids(), status=Transfer.Status.COMPLETED).values_list("pk",
                                                                                                         "completed_at")
        return [at.timestamp() - self.committed[pk] for pk, at in done]


def engine_counts(transfers):
    """Batches of these transfers, their rebroadcasts (sends beyond the first) and fee-bumped replacements."""
    from django.db.models import Sum

    from bench.settlement import engine_batches
    from onchain.models import ChainTransaction

    batches = engine_batches(transfers)
    attempts = ChainTransaction.objects.filter(batch__in=batches)
    sends = attempts.aggregate(s=Sum("broadcast_count"))["s"] or 0
    return len(batches), sends - attempts.count(), attempts.exclude(replaces=None).count()


def log_count(stack, needle):
    """Lines of the workers' logs holding `needle` (a log event's name and its space)."""
    paths = [p for paths in stack.log_files.values() for p in paths]
    return sum(Path(p).read_text(encoding="utf-8", errors="replace").count(needle) for p in paths)


def main():
    args = parse_args()
    common.bound_run_time(args.max_seconds)
    began = time.monotonic()
    rng = random.Random(args.seed)
    stack = common.Stack("bench-reorg", keep=args.keep)
    try:
        stack.environment()
        anvil_url = stack.start_anvil()
        redis_url, redis_kind = stack.start_redis()
        database = stack.create_database()
        stack.django()
        chain, token, w3 = common.chain_setup(stack)
        from onchain.models import Chain, OperatorAlert

        Chain.objects.filter(pk=chain.pk).update(use_finalized_tag=False, confirmations=SAFE_CONFIRMATIONS)
        say(f"# tulpar reorg campaign, {time.strftime('%Y-%m-%d %H:%M:%S')}: {args.reorgs} reorgs of depth 1-{MAX_DEPTH} "
            f"during {args.payouts} payouts at {args.rate:g}/s (seed {args.seed}); then {args.deep_reorgs} of depth 3-5 "
            f"below anvil's finalized tag during {args.deep_payouts}")
        say(f"# anvil {anvil_url} (1 s blocks, finalized tag = head - 2); database {database}; redis {redis_url} "
            f"({redis_kind}); queue {os.environ['CELERY_QUEUE']}; {args.workers} worker(s) x {args.concurrency} + beat; "
            f"logs in {stack.tmp}")
        for i in range(args.workers):
            proc, log = stack.start_worker(f"worker{i + 1}", concurrency=args.concurrency)
            common.wait_for_log(log, " ready.", proc=proc)
        stack.start_beat()
        common.wait_for_log(stack.tmp / "beat.log", "beat: Starting", proc=stack.procs["beat"])
        while w3.eth.block_number < 2 * SAFE_CONFIRMATIONS:  # the contracts' deployment below any reorg
            time.sleep(0.2)
        say(f"# load before: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")

        # 1. Within finality.
        safe = Part(token, w3, rng, payouts=args.payouts, rate=args.rate, reorgs=args.reorgs, depths=(1, MAX_DEPTH),
                    reinclude_share=args.reinclude_share, tag="reorg")
        fed_s = safe.run()
        common.wait_completed(safe.ids(), timeout=300, halts=safe.halts)
        safe_s = time.monotonic() - began
        double, lost, equal, ledger_units, chain_units = common.integrity(token, safe.ids())
        put("payouts", args.payouts)
        safe.report("", lambda r: r.depth >= SAFE_CONFIRMATIONS)
        put("double_payouts", double)
        put("lost_payouts", lost)
        put("ledger_equals_chain", equal)
        put("wallet_halts", sum(safe.halts.values()))
        batches, resends, replacements = engine_counts(safe.transfers)
        put("batches", batches)
        put("rebroadcasts", resends)
        put("fee_bumped_replacements", replacements)
        lat = safe.latencies()
        put("commit_to_completed_s_p50", common.percentile(lat, 50))
        put("commit_to_completed_s_p99", common.percentile(lat, 99))
        put("commit_to_completed_s_max", max(lat))
        put("batches_seen_reorged", log_count(stack, "batch_reorged "))
        say(f"# part 1: payouts fed over {fed_s:.0f}s; ledger payouts {ledger_units} base units, chain {chain_units}; "
            f"alerts by kind {dict(Counter(k for k, in OperatorAlert.objects.values_list('kind')))}; "
            f"load {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
        failed = bool(double or lost or not equal)

        # 2. Deeper than finality: the engine on anvil's own `finalized` tag (head - 2), reorgs of depth 3-5.
        if args.deep_payouts:
            Chain.objects.filter(pk=chain.pk).update(use_finalized_tag=True)
            alerts_before = OperatorAlert.objects.count()
            deep = Part(token, w3, rng, payouts=args.deep_payouts, rate=args.rate, reorgs=args.deep_reorgs,
                        depths=(3, MAX_DEPTH), reinclude_share=args.reinclude_share, tag="reorg-deep")
            deep.run()
            from payments.models import Transfer

            with contextlib.suppress(common.RunTimeout):  # left waiting is a figure here
                common.wait_completed(deep.ids(), timeout=args.deep_wait, halts=deep.halts)
            paid = common.paid_counts(token)
            completed = set(Transfer.objects.filter(pk__in=deep.ids(), status=Transfer.Status.COMPLETED)
                            .values_list("pk", flat=True))
            deep.report("deep.", lambda r: r.below_finalized)
            put("deep.payouts", args.deep_payouts)
            put("deep.completed", len(completed))
            put("deep.completed_but_not_on_chain", sum(1 for pk in completed if paid.get(str(pk), 0) == 0))
            put("deep.paid_on_chain_not_completed",
                sum(1 for pk in deep.ids() if pk not in completed and paid.get(str(pk), 0) > 0))
            put("deep.double_payouts", sum(paid.get(str(pk), 0) > 1 for pk in deep.ids()))
            put("deep.not_completed", args.deep_payouts - len(completed))
            put("deep.ledger_equals_chain", int(common.ledger_total_paid(token) == common.chain_total_paid(token)))
            say(f"# part 2 alerts by kind: "
                f"{dict(Counter(k for k, in OperatorAlert.objects.order_by('id')[alerts_before:].values_list('kind')))}")
        say(f"# part 1 took {safe_s:.0f}s; run took {time.monotonic() - began:.0f}s; "
            f"load {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
        return 1 if failed else 0
    except BaseException as exc:
        say(f"# stopped early: {type(exc).__name__}: {exc}; cleaning up")
        raise
    finally:
        stack.close()
        if args.keep:
            say(f"# kept {stack.tmp}")


if __name__ == "__main__":
    sys.exit(main())
