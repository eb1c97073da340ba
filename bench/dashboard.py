"""Dashboard benchmark: admin home (the operations dashboard) on a database of a million transfers.

Creates its own database (tulpar_bench_dashboard_<pid> on DATABASE_URL's PostgreSQL, dropped at the end, whatever
happens), migrates it, seeds quotes and transfers with INSERT ... SELECT generate_series (a year of history, mostly
completed; the last few hundred still in flight: awaiting funding, funded, held, settling; a few stuck), a chain,
token, hot wallet, alerts and reconciliation differences, then ANALYZEs. It then loads /admin/ through Django's test
client as an auditor whose session a TOTP device verified (as tests/helpers.staff_login does), and prints the p50
and max page time over --loads loads (after one warm-up), the SQL queries per load and the slowest of them, and the
time of the transfer lists the stuck and held figures link to. No anvil, Redis only for the cache.

    make bench-dashboard                       # or: .venv/bin/python -m bench.dashboard --transfers 1000000

Prints one `dashboard.<name>: value` line per figure (lines starting with `#` are commentary).
"""

import argparse
import contextlib
import os
import sys
import time
import urllib.parse
from pathlib import Path

if __package__ in (None, ""):  # run as a file: python bench/dashboard.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import DEFAULT_DATABASE_URL, DEFAULT_REDIS_URL, percentile, say  # noqa: E402

# In-flight transfers at the head of the history (the newest rows), by state: what a busy hour leaves open.
IN_FLIGHT = [("awaiting_funding", 200), ("funded", 20), ("held", 30), ("settling", 60),
             ("awaiting_payout_confirmation", 10), ("refunding", 5)]
# The rest by a per-row hash, in thousandths: mostly completed, some expired unfunded, a few refunded or failed.
FINISHED = [("completed", 930), ("expired", 30), ("refunded", 15), ("cancelled", 10), ("rejected", 8),
            ("charged_back", 3), ("settlement_failed", 1), ("refund_failed", 1), ("payout_failed", 2)]


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--transfers", type=int, default=1_000_000, help="transfers to seed (default 1,000,000)")
    p.add_argument("--loads", type=int, default=9, help="measured page loads (default 9)")
    p.add_argument("--keep", action="store_true", help="keep the database (its name is printed)")
    return p.parse_args()


def _state_sql():
    """A CASE choosing each row's status from its number i (1 = newest)."""
    cases, upto = [], 0
    for status, n in IN_FLIGHT:
        upto += n
        cases.append(f"WHEN i <= {upto} THEN '{status}'")
    in_flight, bound = upto, 0
    for status, share in FINISHED:
        bound += share
        cases.append(f"WHEN (i::bigint * 7919) %% 1000 < {bound} THEN '{status}'")
    return in_flight, "CASE " + " ".join(cases) + " ELSE 'completed' END"


def seed(n):
    from django.db import connection

    from payments.models import Quote, Transfer

    quote, transfer = Quote._meta.db_table, Transfer._meta.db_table
    in_flight, state = _state_sql()
    # i = 1 is the newest; a year of history at an even pace; the in-flight ones are minutes old, a few stuck.
    step = 365 * 24 * 3600 / n
    with connection.cursor() as cursor:
        started = time.monotonic()
        cursor.execute(f"""
            INSERT INTO {quote} (id, source_currency, source_amount, target_currency, target_amount, official_rate,
                                 rate, fee, direction, livemode, expires_at, created_at)
            SELECT md5('q' || i)::uuid, c, amount, 'KGS', round((amount - fee) * rate, 2), official, rate, fee,
                   'send', true, at + interval '10 minutes', at
            FROM (SELECT i, CASE WHEN i %% 5 = 0 THEN 'USD' ELSE 'RUB' END AS c,
                         CASE WHEN i %% 5 = 0 THEN 100 + i %% 900 ELSE 5000 + (i %% 95) * 1000 END::numeric(12, 2) AS amount,
                         CASE WHEN i %% 5 = 0 THEN 1.50 ELSE 60.00 END::numeric(12, 2) AS fee,
                         CASE WHEN i %% 5 = 0 THEN 87.45 ELSE 1.0785 END::numeric(18, 8) AS official,
                         CASE WHEN i %% 5 = 0 THEN 86.14 ELSE 1.0623 END::numeric(18, 8) AS rate,
                         now() - make_interval(secs => CASE WHEN i <= {in_flight} THEN i * 2 ELSE i * {step} END) AS at
                  FROM generate_series(1, %s) AS i) AS g""", [n])
        cursor.execute(f"""
            INSERT INTO {transfer} (id, quote_id, idempotency_key, request_fingerprint, status, livemode, sender_name,
                                    sender_phone, sender_email, recipient_name, recipient_phone, recipient_wallet,
                                    funding_method, payment_intent_id, payment_client_secret, funded_at,
                                    card_fingerprint, card_country, charge_id, card_attempts, last_card_token,
                                    refund_id, payout_reference, failure_reason, reference, sender_token,
                                    recipient_token, created_at, updated_at, completed_at)
            SELECT md5('t' || i)::uuid, md5('q' || i)::uuid, 't' || i, 'f', s, true, 'Aibek Usenov', '+79161234567',
                   'aibek@example.com', 'Gulnara Usenova', '+996555123456',
                   '0x' || substr(md5('w' || (i %% 50000)) || md5('x' || (i %% 50000)), 1, 40),
                   'card', 'pi_' || i, '', CASE WHEN s IN ('awaiting_funding', 'expired', 'cancelled') THEN NULL
                                                ELSE at + interval '1 minute' END,
                   '', '', '', 1, '', '', CASE WHEN s IN ('settling', 'completed') THEN md5('t' || i) ELSE '' END,
                   '', '', md5('s' || i), md5('r' || i), at,
                   CASE WHEN i <= {in_flight} AND i %% 10 = 0 THEN at - interval '1 hour' ELSE at END,
                   CASE WHEN s = 'completed' THEN at + interval '3 minutes' END
            FROM (SELECT i, {state} AS s,
                         now() - make_interval(secs => CASE WHEN i <= {in_flight} THEN i * 2 ELSE i * {step} END) AS at
                  FROM generate_series(1, %s) AS i) AS g""", [n])
        # Every tenth in-flight one "stuck": funded or settling long ago (its updated_at above, its funding here).
        cursor.execute(f"UPDATE {transfer} SET funded_at = now() - interval '2 hours' "
                       f"WHERE status = 'funded' AND idempotency_key IN (SELECT 't' || i FROM generate_series(1, "
                       f"{in_flight}) AS i WHERE mod(i, 3) = 0)")
        say(f"# seeded {n:,} quotes and transfers in {time.monotonic() - started:.1f} s")
        started = time.monotonic()
        cursor.execute(f"ANALYZE {quote}")
        cursor.execute(f"ANALYZE {transfer}")
        say(f"# analyzed in {time.monotonic() - started:.1f} s")


def seed_rest():
    """A chain, token (with a measured float), hot wallet (gas measured), open alerts and differences."""
    from decimal import Decimal

    from django.utils import timezone

    from onchain.models import Chain, HotWallet, OperatorAlert, Token, TreasurySnapshot
    from payments.models import ReconciliationItem
    from payments.services.setup import corridors_seed, rates_seed

    corridors_seed()
    rates_seed()
    chain = Chain.objects.create(chain_id=31337, name="anvil")
    token = Token.objects.create(chain=chain, symbol="KGST", address="0x" + "11" * 20, decimals=18,
                                 low_float_base_units=10**24)
    TreasurySnapshot.objects.create(token=token, float_base_units=3 * 10**24, measured_at=timezone.now())
    wallet = HotWallet.objects.create(chain=chain, address="0x" + "22" * 20, low_gas_wei=10**17, gas_wei=5 * 10**16,
                                      gas_measured_at=timezone.now())
    for kind in ("low_gas", "rates", "webhook"):
        OperatorAlert.objects.create(kind=kind, wallet=wallet if kind == "low_gas" else None, message=f"{kind} alert")
    OperatorAlert.objects.bulk_create([OperatorAlert(kind="funding", message=f"old {i}", resolved_at=timezone.now())
                                       for i in range(10_000)])
    ReconciliationItem.objects.create(kind="card_payment", subject="pi_x", currency="RUB", expected=Decimal(0),
                                      actual=Decimal("15000.00"), detail="unbooked")


def staff_client():
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.test import Client
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    user = get_user_model().objects.create_user("bench-auditor", "bench@example.com", "a-long-password-123",
                                                is_staff=True)
    user.groups.add(Group.objects.get(name="auditor"))
    device = TOTPDevice.objects.create(user=user, name="bench", confirmed=True)
    client = Client()
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id  # what a login with the TOTP code leaves in the session
    session.save()
    return client


def measure(client, url, loads):
    """(p50 ms, max ms, queries per load, slowest query ms and its SQL) over `loads` loads after one warm-up."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    response = client.get(url, secure=True)
    assert response.status_code == 200, (url, response.status_code, response.get("Location"))
    times, slowest = [], (0.0, "")
    for _ in range(loads):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.get(url, secure=True)
            times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
        for q in captured.captured_queries:
            slowest = max(slowest, (float(q["time"]) * 1000, q["sql"]))
    return percentile(times, 50), max(times), len(captured), slowest


def main():
    args = parse_args()
    import psycopg

    base = os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    name = f"tulpar_bench_dashboard_{os.getpid()}"
    parts = urllib.parse.urlsplit(base)
    admin_url = parts._replace(path="/postgres").geturl()
    os.environ.update(DATABASE_URL=parts._replace(path=f"/{name}").geturl(),
                      REDIS_URL=os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL,
                      DJANGO_SECRET_KEY=os.environ.get("DJANGO_SECRET_KEY") or "bench-dashboard",
                      DJANGO_SETTINGS_MODULE="gateway.settings")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    say(f"# database {name}")
    try:
        import django

        django.setup()
        from django.core.management import call_command
        from django.test.utils import setup_test_environment

        setup_test_environment()  # the test client's host and in-memory mail
        started = time.monotonic()
        call_command("migrate", verbosity=0)
        say(f"# migrated in {time.monotonic() - started:.1f} s")
        seed_rest()
        seed(args.transfers)
        client = staff_client()
        p50, worst, queries, (slow_ms, slow_sql) = measure(client, "/admin/", args.loads)
        say(f"dashboard.transfers: {args.transfers}")
        say(f"dashboard.page_ms_p50: {p50:.1f}")
        say(f"dashboard.page_ms_max: {worst:.1f}")
        say(f"dashboard.queries: {queries}")
        say(f"dashboard.slowest_query_ms: {slow_ms:.1f}")
        say(f"# slowest: {slow_sql[:300]}")
        page = client.get("/admin/", secure=True).content.decode()
        for label, marker in (("stuck_list", "funded_at__lt"), ("held_list", "/heldtransfer/")):
            link = next(h for h in _links(page) if marker in h)
            p50, _, queries, _ = measure(client, link, 3)
            say(f"dashboard.{label}_ms_p50: {p50:.1f}  # {queries} queries")
    finally:
        from django.db import connections

        connections.close_all()
        if args.keep:
            say(f"# kept database {name}")
        else:
            with contextlib.suppress(psycopg.Error), psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            say(f"# dropped database {name}")


def _links(html):
    import re
    from html import unescape

    return [unescape(h) for h in re.findall(r'href="([^"]+)"', html[html.index('id="operations-dashboard"'):])]


if __name__ == "__main__":
    main()
