"""Loaded with `-p tests.bootstrap` before Django's settings: points the whole suite (this process and the
Celery worker and beat it starts) at real local servers. PostgreSQL and Redis come from DATABASE_URL and
REDIS_URL (a redis-server is started if none answers); anvil and localstripe are started on free ports."""

import atexit
import os
import secrets
import tempfile
from pathlib import Path

from eth_account import Account

from gateway.dev import services

_TMP = Path(tempfile.mkdtemp(prefix="tulpar-tests-"))
_PROCS = []


def _stop_all():
    for proc in reversed(_PROCS):
        services.stop(proc)


atexit.register(_stop_all)

env = os.environ
env["DJANGO_SETTINGS_MODULE"] = "gateway.settings"
env.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(40))
env.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/tulpar")
# Playwright's sync API keeps an event loop running in the test thread; the ORM calls beside it are synchronous.
env["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
env["DJANGO_SECURE_SSL_REDIRECT"] = "0"
env["DJANGO_SECURE_COOKIES"] = "0"
env["DJANGO_ALLOWED_HOSTS"] = "127.0.0.1,localhost,testserver"
env["TULPAR_VAR_DIR"] = str(_TMP)
# One database per run, so runs on one machine (CI, a developer, a helper) never drop each other's.
env["TEST_DATABASE_NAME"] = f"test_tulpar_{os.getpid()}"
env["RATE_LIMIT_NAMESPACE"] = f"test-{os.getpid()}"
# Our own queue, so a `make run` on the same Redis never takes the suite's tasks (nor the reverse).
env["CELERY_QUEUE"] = f"tulpar-test-{os.getpid()}"
env["FUNDING_POLL_SECONDS"] = "5"
env["FUNDING_POLL_AFTER_SECONDS"] = "3"
env["CHAIN_CONFIRMATIONS"] = "2"
# The suite's beat never fetches rates from the internet; tests/payments/test_rates.py drives each source itself.
env["RATES_SOURCE"] = "manual"
# No payout hold for the suite's transfers (the Celery worker reads these too); the fraud tests set their own.
env["FIRST_TRANSFERS_PAYOUT_DELAY_SECONDS"] = "0"
env["LARGE_AMOUNT_PAYOUT_DELAY_SECONDS"] = "0"
# No US cancellation window either (most fixtures pay in USD); tests/payments/test_us_remittance.py sets its own.
env["US_CANCEL_WINDOW_SECONDS"] = "0"
env["ETA_CACHE_SECONDS"] = "0"  # each test computes its own estimate (tests/payments/test_eta.py pins the cache)
# Outgoing webhooks reach the tests' receivers on 127.0.0.1 over http, retry within a second or two and are swept
# every second; the SSRF tests switch the address checks back on in their own process.
env["WEBHOOK_ALLOW_PRIVATE"] = "1"
env["WEBHOOK_REQUIRE_HTTPS"] = "0"
env["WEBHOOK_RETRY_SCHEDULE"] = "0.2,0.4,0.8"
env["WEBHOOK_SWEEP_SECONDS"] = "1"
env["WEBHOOK_LEASE_SECONDS"] = "15"
# Notifications are off for the suite (every transfer would queue messages on the shared worker); the notification
# tests switch them on in their own process. Mail never leaves a test process or its worker.
env["NOTIFY_CHANNELS"] = ""
env["NOTIFY_SWEEP_SECONDS"] = "1"
env["EMAIL_BACKEND"] = "django.core.mail.backends.locmem.EmailBackend"
# Texts stay in memory in every process of the suite (the console backend sends nothing outside DEBUG).
env["SMS_BACKEND"] = "common.sms.LocmemBackend"
env["STRIPE_SECRET_KEY"] = "sk_test_" + secrets.token_hex(8)
env["STRIPE_PUBLISHABLE_KEY"] = "pk_test_" + secrets.token_hex(8)
env["STRIPE_WEBHOOK_SECRET"] = "whsec_" + secrets.token_hex(16)
env["HOT_WALLET_PRIVATE_KEY"] = "0x" + secrets.token_hex(32)
env["HOT_WALLET_ADDRESS"] = Account.from_key(env["HOT_WALLET_PRIVATE_KEY"]).address

if not services.redis_answers(env.get("REDIS_URL", "redis://127.0.0.1:6379/0")):
    _proc, env["REDIS_URL"] = services.start_redis(services.free_port(), data_dir=_TMP / "redis")
    _PROCS.append(_proc)
env.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")

_proc, env["CHAIN_RPC_URL"] = services.start_anvil(services.free_port(), block_time=1)
_PROCS.append(_proc)
_proc, env["STRIPE_API_BASE"] = services.start_localstripe(services.free_port(), store=_TMP / "localstripe.pickle",
                                                           from_scratch=True)
_PROCS.append(_proc)
env["STRIPE_JS_URL"] = env["STRIPE_API_BASE"] + "/js.stripe.com/v3/"
