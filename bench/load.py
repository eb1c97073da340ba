"""Steady mixed load through the whole gateway: quotes, transfers (card and balance-funded), card payments and
status polls against gunicorn, with real Celery workers and beat settling on anvil, for a few minutes.

One run starts its own anvil (1-second blocks), localstripe (webhooks pointed at the gateway), a fresh PostgreSQL
database, Redis (REDIS_URL or a private one), gunicorn (production settings behind a TLS proxy), Celery workers
and beat. Client threads then keep a fixed rate of "journeys" for `--seconds`: each journey asks a quote, creates a
transfer with it (card or, one in `--balance-every`, from the partner's balance), pays a card transfer on
localstripe as Stripe.js would (3-D Secure included), and polls the transfer's status every `--poll-seconds` until it
is completed. After the load the run waits for the last transfers to finish (`--drain-seconds`), then prints:

    load.journeys_per_second, load.requests_per_second, load.errors (HTTP answers other than the expected, and
    journeys that did not complete), load.funded_to_completed_s_p50/_p99 (from the database's funded_at and
    completed_at), load.double_payouts (0: a transfer with more than one payout on chain)

    make bench-load                     # or: .venv/bin/python -m bench.load --seconds 180 --rate 2
"""

import argparse
import os
import secrets
import signal
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402

from bench import common  # noqa: E402
from bench.common import say  # noqa: E402
from bench.quotes import start_gunicorn  # noqa: E402
from gateway.dev import services  # noqa: E402


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=120, help="length of the steady load (default 120)")
    p.add_argument("--rate", type=float, default=2.0, help="journeys started per second (default 2)")
    p.add_argument("--balance-every", type=int, default=3, help="one journey in N is balance-funded (default 3)")
    p.add_argument("--poll-seconds", type=float, default=1.0, help="status poll interval per journey (default 1)")
    p.add_argument("--drain-seconds", type=float, default=120, help="wait for the last transfers (default 120)")
    p.add_argument("--workers", type=int, default=3, help="gunicorn sync workers (default 3)")
    p.add_argument("--max-seconds", type=int, default=1200, help="hard bound on the whole run (default 1200)")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (logs)")
    p.add_argument("--keep-policy-delays", action="store_true",
                   help="keep the first-transfers payout delay and the US cancellation window (off by default)")
    return p.parse_args()


class Journey:
    """One sender's path through the API; records each answer's status in `statuses`."""

    def __init__(self, base, key, i, method, statuses, lock):
        self.base, self.key, self.i, self.method = base, key, i, method
        self.statuses, self.lock = statuses, lock

    def call(self, http, verb, path, expect, **kw):
        response = http.request(verb, path, **kw)
        with self.lock:
            self.statuses[(path.split("/")[3] if path.count("/") >= 3 else path, response.status_code in expect)] += 1
        if response.status_code not in expect:
            raise RuntimeError(f"{verb} {path} answered {response.status_code}: {response.text[:200]}")
        return response.json()

    def run(self, poll_seconds, deadline):
        headers = {"Authorization": f"Api-Key {self.key}", "X-Forwarded-Proto": "https"}
        with httpx.Client(base_url=self.base, headers=headers, timeout=30) as http:
            quote = self.call(http, "POST", "/api/v1/quotes", {201},
                              json={"source_currency": "RUB", "source_amount": "5000.00", "target_currency": "KGS"})
            body = {"quote_id": quote["id"],
                    "sender": {"name": "Aibek Usenov", "phone": f"+7916{self.i:07d}",
                               "email": f"load{self.i}@example.com"},
                    "recipient": {"name": "Gulnara Usenova", "phone": "+996555123456",
                                  "wallet_address": common.random_address()}}
            if self.method == "balance":
                body["funding"] = {"method": "balance"}
            transfer = self.call(http, "POST", "/api/v1/transfers", {201}, json=body,
                                 headers={"Idempotency-Key": f"load-{self.i}-{secrets.token_hex(4)}"})
            if self.method == "card":
                pay(transfer["funding"]["payment_intent_id"])
            while time.monotonic() < deadline:
                status = self.call(http, "GET", f"/api/v1/transfers/{transfer['id']}", {200})["status"]
                if status == "completed":
                    return transfer["id"], True
                if status in {"failed", "cancelled", "expired", "rejected", "refunded", "refunding",
                              "settlement_failed", "charged_back"}:
                    return transfer["id"], False
                time.sleep(poll_seconds)
            return transfer["id"], False


def pay(payment_intent_id):
    """What Stripe.js does for the sender: a card payment method, confirm, and the 3-D Secure step when asked."""
    base, auth = os.environ["STRIPE_API_BASE"], {"Authorization": f"Bearer {os.environ['STRIPE_SECRET_KEY']}"}
    with httpx.Client(base_url=base, headers=auth, timeout=30) as s:
        pm = s.post("/v1/payment_methods", data={"type": "card", "card[number]": "4242424242424242",
                                                 "card[exp_month]": "12", "card[exp_year]": "2030", "card[cvc]": "123"})
        pm.raise_for_status()
        s.post(f"/v1/payment_intents/{payment_intent_id}", data={"payment_method": pm.json()["id"]}).raise_for_status()
        confirmed = s.post(f"/v1/payment_intents/{payment_intent_id}/confirm")
        confirmed.raise_for_status()
        intent = confirmed.json()
        if intent["status"] == "requires_action":
            s.post(f"/v1/payment_intents/{payment_intent_id}/_authenticate", params={"success": "true"},
                   json={"key": os.environ.get("STRIPE_PUBLISHABLE_KEY", ""),
                         "client_secret": intent["client_secret"]}).raise_for_status()


def latencies(ids):
    from payments.models import Transfer

    rows = Transfer.objects.filter(pk__in=ids, status="completed").values_list("funded_at", "completed_at")
    return [(done - funded).total_seconds() for funded, done in rows if funded and done]


def double_payouts(token):
    """Transfers whose payout reference was paid more than once on chain (the contract's or the ledger's count)."""
    from onchain.models import Payout

    refs = Counter(Payout.objects.filter(token=token, status=Payout.Status.CONFIRMED).values_list("reference",
                                                                                                   flat=True))
    return sum(1 for n in refs.values() if n > 1)


def main():  # noqa: C901 - one straight script
    args = parse_args()
    common.bound_run_time(args.max_seconds)
    stack = common.Stack("bench-load", keep=args.keep)
    try:
        stack.environment()
        env = os.environ
        # localstripe posts its webhooks to gunicorn over plain http, as Stripe's reach the TLS proxy: no redirect.
        env["DJANGO_SECURE_SSL_REDIRECT"] = "0"
        # Every journey is a new card sender: the first-transfers payout delay (a fraud policy's wait, minutes) would
        # be measured instead of the pipeline. Off here; `--keep-policy-delays` keeps it.
        if not args.keep_policy_delays:
            env["FIRST_TRANSFERS_PAYOUT_DELAY_SECONDS"] = "0"
            env["US_CANCEL_WINDOW_SECONDS"] = "0"
        env.setdefault("STRIPE_PUBLISHABLE_KEY", "pk_test_" + secrets.token_hex(8))
        gw = common.gateway_up(stack, partner_name="bench-load", topup_reference="LOAD-TOPUP")
        key, token = gw.key, gw.token
        from django.conf import settings
        port = services.free_port()
        start_gunicorn(stack, port, args.workers)
        base = f"http://127.0.0.1:{port}"
        httpx.post(f"{env['STRIPE_API_BASE']}/_config/webhooks/tulpar", timeout=10, data={
            "url": f"{base}/webhooks/stripe", "secret": env["STRIPE_WEBHOOK_SECRET"],
            "api_version": settings.STRIPE_API_VERSION}).raise_for_status()
        stack.start_worker("worker-1", concurrency=2)
        stack.start_worker("worker-2", concurrency=2)
        stack.start_beat()
        say(f"# tulpar mixed load, {time.strftime('%Y-%m-%d %H:%M:%S')}: gunicorn {args.workers} workers at {base}, "
            f"2 Celery workers x2 and beat, anvil {gw.anvil_url}, localstripe {gw.stripe_url}, {gw.database}, "
            f"redis {gw.redis_url} ({gw.redis_kind}); load average {os.getloadavg()[0]:.2f}")
        say(f"# {args.rate}/s journeys for {args.seconds:.0f}s (1 in {args.balance_every} balance-funded), status "
            f"polled every {args.poll_seconds}s until completed")

        statuses, lock, outcomes, failures = Counter(), threading.Lock(), [], []
        deadline = time.monotonic() + args.seconds + args.drain_seconds

        def journey(i):
            method = "balance" if i % args.balance_every == 0 else "card"
            try:
                outcomes.append(Journey(base, key, i, method, statuses, lock).run(args.poll_seconds, deadline))
            except Exception as exc:  # noqa: BLE001 - counted and reported, the load goes on
                failures.append(f"{type(exc).__name__}: {str(exc)[:160]}")

        started = time.monotonic()
        n = 0
        with ThreadPoolExecutor(max_workers=int(args.rate * 60) + 8) as pool:
            while time.monotonic() - started < args.seconds:
                pool.submit(journey, n)
                n += 1
                time.sleep(max(0.0, started + n / args.rate - time.monotonic()))
            load_elapsed = time.monotonic() - started
        total_elapsed = time.monotonic() - started
        requests_ok = sum(v for (_, ok), v in statuses.items() if ok)
        errors = sum(v for (_, ok), v in statuses.items() if not ok)
        completed = [tid for tid, done in outcomes if done]
        not_completed = len(outcomes) - len(completed) + len(failures)
        lat = latencies(completed)
        out = {
            "load.journeys_started": n,
            "load.journeys_completed": len(completed),
            "load.journeys_per_second": len(completed) / load_elapsed,
            "load.requests_per_second": (requests_ok + errors) / total_elapsed,
            "load.http_errors": errors,
            "load.journeys_not_completed": not_completed,
            "load.errors": errors + not_completed,
            "load.funded_to_completed_s_p50": common.percentile(lat, 50),
            "load.funded_to_completed_s_p99": common.percentile(lat, 99),
            "load.double_payouts": double_payouts(token),
        }
        for name, value in out.items():
            say(f"{name}: {value:.2f}" if isinstance(value, float) else f"{name}: {value}")
        for (endpoint, ok), count in sorted(statuses.items()):
            say(f"# {endpoint} {'ok' if ok else 'unexpected'}: {count}")
        for failure in Counter(failures).most_common(5):
            say(f"# failure x{failure[1]}: {failure[0]}")
        say(f"# load average at the end {os.getloadavg()[0]:.2f}")
        return 1 if out["load.errors"] or out["load.double_payouts"] else 0
    finally:
        gunicorn = stack.procs.get("gunicorn")
        if gunicorn is not None and gunicorn.poll() is None:
            os.killpg(gunicorn.pid, signal.SIGTERM)
        stack.close()


if __name__ == "__main__":
    sys.exit(main())
