"""`make run`: start every part of the gateway that is not configured already, set it up, print how to use it.

Parts taken from the environment when set: DATABASE_URL (else a SQLite file in var/), REDIS_URL (used when it
answers, else a redis-server of our own), CHAIN_RPC_URL (else anvil for KGST, and a second anvil, chain id 31338, for
USDKG unless CHAIN_RPCS is set), STRIPE_API_BASE (else localstripe).
Ctrl-C stops everything this started. What the children were given is recorded in var/run.env (see
RUNTIME_VARS), beside the secrets in var/dev.env, so manage.py and celery in another shell reach the same stack.
"""

import os
import secrets
import signal
import subprocess
import sys

from honcho.manager import Manager

from common.queues import worker_queue_arg
from gateway.dev import envfile, services, totp

REPO = services.REPO
VAR = envfile.var_dir()
PY = sys.executable

# Recorded in var/run.env for commands run beside `make run` (manage.py, celery; gateway/dev/envfile.py).
# First what `make run` chooses or defaults, then settings it passes on from its own environment when set there:
# which database, queue and endpoints the children use, and how they behave. Secrets live in var/dev.env only;
# a secret exported in `make run`'s shell instead must be exported in the other shell too.
RUNTIME_VARS = (
    "REDIS_URL", "CHAIN_RPC_URL", "STRIPE_API_BASE", "STRIPE_JS_URL", "PUBLIC_BASE_URL", "DJANGO_DEBUG",
    "DJANGO_ALLOWED_HOSTS",
    "DATABASE_URL", "DATABASE_CONN_MAX_AGE", "DATABASE_PREPARE_THRESHOLD", "CELERY_QUEUE", "CHAIN_RPC_URLS", "CHAIN_RPCS",
    "CHAIN_RPC_TIMEOUT_SECONDS",
    "CHAIN_WS_URL",
    "CHAIN_CONFIRMATIONS", "DJANGO_CSRF_TRUSTED_ORIGINS", "DJANGO_SECURE_SSL_REDIRECT", "DJANGO_SECURE_COOKIES",
    "DJANGO_HSTS_SECONDS", "DJANGO_BEHIND_PROXY", "STRIPE_TIMEOUT_SECONDS", "CARD_COUNTRIES_REFUSED",
    "QUOTE_TTL_SECONDS", "FUNDING_WINDOW_SECONDS", "FUNDING_POLL_SECONDS", "FUNDING_POLL_AFTER_SECONDS",
    "WALLET_DENYLIST", "SANCTIONS_SAMPLE_FILE", "SETTLEMENT_BATCHING", "SWEEP_RESEND_SECONDS", "BATCH_MAX_SIZE", "BATCH_MAX_AGE_MS",
    "BATCH_MAX_IN_FLIGHT",
    "BATCH_GAS_BASE", "BATCH_GAS_PER_PAYOUT", "PAYOUT_GAS_LIMIT", "SETTLEMENT_TRACK_MS",
    "PAYOUT_REBROADCAST_AFTER_SECONDS", "FEE_BUMP_PERMILLE", "LOG_LEVEL", "RATE_API_PER_MINUTE", "API_KEY_ROTATION_OVERLAP_HOURS",
    "RATE_API_AUTH_FAILURES_PER_HOUR", "RATE_WEB_QUOTES_PER_HOUR", "RATE_WEB_TRANSFERS_PER_HOUR", "RATE_LIMIT_NAMESPACE",
    "ADMIN_LOGIN_FAILURE_LIMIT", "ADMIN_LOCKOUT_MINUTES", "REQUEST_BODY_MAX_BYTES", "JSON_MAX_DEPTH",
    "STRIPE_FRAME_ORIGINS",
    "STRIPE_REQUEST_THREE_D_SECURE",
    "CARD_ATTEMPTS_PER_TRANSFER", "VELOCITY_LIMITS", "FIRST_TRANSFERS_COUNT", "FIRST_TRANSFERS_PAYOUT_DELAY_SECONDS",
    "LARGE_AMOUNT_KGS", "LARGE_AMOUNT_PAYOUT_DELAY_SECONDS", "US_CANCEL_WINDOW_SECONDS", "SUPPORT_EMAIL", "SUPPORT_PHONE",
    "RECONCILIATION_WINDOW_HOURS", "RECONCILIATION_LAG_SECONDS", "PAYOUT_CONFIRM_ESCALATE_MINUTES",
    "DASHBOARD_FUNDED_STUCK_MINUTES", "DASHBOARD_SETTLING_ETA_MINUTES", "DASHBOARD_BATCH_STUCK_MINUTES",
    "RATES_SOURCE", "NBKR_RATES_URL", "NBKR_TIMEOUT_SECONDS", "RATE_MAX_AGE_HOURS", "RATES_REFRESH_MINUTES",
    "MANUAL_RATE_MAX_DEVIATION",
    "SANCTIONS_HOLD_THRESHOLD",
    "WEBHOOK_REQUIRE_HTTPS", "WEBHOOK_ALLOW_PRIVATE", "WEBHOOK_ENCRYPTION_KEYS", "WEBHOOK_RETRY_SCHEDULE",
    "WEBHOOK_RETRY_AFTER_MAX_SECONDS", "WEBHOOK_DISABLE_AFTER_SECONDS", "WEBHOOK_SECRET_OVERLAP_SECONDS",
    "WEBHOOK_TIMEOUT_SECONDS", "WEBHOOK_LEASE_SECONDS", "WEBHOOK_SWEEP_SECONDS", "WEBHOOK_CA_FILE",
    "IDEMPOTENCY_KEY_TTL_HOURS", "IDEMPOTENCY_LEASE_SECONDS",
    "SMS_BACKEND", "SMS_HTTP_URL", "SMS_HTTP_TIMEOUT_S",
    "CLAIM_CODES_PER_DAY", "CLAIM_CODE_MAX_ATTEMPTS", "CLAIM_CODE_RESEND_SECONDS", "CLAIM_CODE_TTL_SECONDS",
    "CLAIM_REMINDER_HOURS", "CLAIM_SMS_LANGUAGE", "CLAIM_SWEEP_SECONDS", "CLAIM_WINDOW_HOURS", "RATE_CLAIM_CODES_PER_HOUR",
    "RATE_CLAIM_VERIFY_PER_HOUR", "DEFAULT_FROM_EMAIL", "EMAIL_BACKEND", "EMAIL_HOST", "EMAIL_HOST_USER", "EMAIL_PORT",
    "EMAIL_TIMEOUT", "EMAIL_USE_SSL", "EMAIL_USE_TLS", "NOTIFY_CHANNELS", "NOTIFY_PARTNER_TRANSFERS",
    "NOTIFY_RETRY_SCHEDULE", "NOTIFY_SWEEP_SECONDS", "RECIPIENT_TIME_ZONE", "DEV_CHAIN_EXPLORER_TX_URL",
    "ALERT_DELIVERY_ATTEMPTS", "ALERT_EMAILS", "ALERT_EMAIL_FROM", "ALERT_RESEND_MINUTES", "ALERT_WEBHOOK_TIMEOUT_SECONDS",
    "BATCH_STUCK_ALERT_MINUTES", "READYZ_CACHE_SECONDS", "ETA_CACHE_SECONDS",
    "LOG_FORMAT", "READYZ_CHECK_TIMEOUT_SECONDS", "READYZ_CHAIN_HEAD_MAX_AGE_SECONDS", "READYZ_BEAT_MAX_AGE_SECONDS",
    "READYZ_QUEUE_MAX_DEPTH", "METRICS_WINDOW_MINUTES",
)


def dev_secrets():
    """Generated once per checkout into var/dev.env (mode 600, git-ignored); never in the repo."""
    path = VAR / envfile.DEV_ENV
    values = envfile.read(path)
    generated = {
        "DJANGO_SECRET_KEY": lambda: secrets.token_urlsafe(50),
        "HOT_WALLET_PRIVATE_KEY": lambda: "0x" + secrets.token_hex(32),
        "HOT_WALLET_USDKG_PRIVATE_KEY": lambda: "0x" + secrets.token_hex(32),  # the USDKG chain's hot wallet
        "STRIPE_SECRET_KEY": lambda: "sk_test_" + secrets.token_hex(12),
        "STRIPE_PUBLISHABLE_KEY": lambda: "pk_test_" + secrets.token_hex(12),
        "STRIPE_WEBHOOK_SECRET": lambda: "whsec_" + secrets.token_hex(16),
        "DEV_ADMIN_PASSWORD": lambda: secrets.token_urlsafe(12),
        "DEV_ADMIN_TOTP_KEY": lambda: secrets.token_hex(20),
        "METRICS_TOKEN": lambda: secrets.token_urlsafe(32),
    }
    changed = False
    for name, make in generated.items():
        if not values.get(name):
            values[name], changed = make(), True
    if changed:
        envfile.write(path, values)
    return values


def record_runtime(env, secrets_file_names):
    """Write var/run.env (mode 600): the RUNTIME_VARS the children get, except names var/dev.env holds."""
    values = {name: env[name] for name in RUNTIME_VARS if name in env and name not in secrets_file_names}
    envfile.write(VAR / envfile.RUN_ENV, values)
    return values


def main():
    VAR.mkdir(exist_ok=True)
    (VAR / "log").mkdir(exist_ok=True)
    env = dict(os.environ)
    secret_values = dev_secrets()
    env.update({k: v for k, v in secret_values.items() if k not in os.environ})
    port = int(env.get("PORT", "8000"))
    env.setdefault("DJANGO_DEBUG", "1")
    env.setdefault("PUBLIC_BASE_URL", f"http://127.0.0.1:{port}")
    env.setdefault("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost")
    # The payout hold for new senders and large amounts, short enough to watch a demo transfer complete.
    env.setdefault("FIRST_TRANSFERS_PAYOUT_DELAY_SECONDS", "30")
    env.setdefault("LARGE_AMOUNT_PAYOUT_DELAY_SECONDS", "60")
    env.setdefault("US_CANCEL_WINDOW_SECONDS", "60")  # the US remittance rule's 30 minutes, shortened for a demo
    # Official rates: the live NBKR feed when NBKR_RATES_URL is set, else the bundled recorded file as today's.
    env.setdefault("RATES_SOURCE", "nbkr" if env.get("NBKR_RATES_URL") else "recorded")
    started = []

    def log(name):
        return open(VAR / "log" / f"{name}.log", "ab")

    try:
        redis_url = env.get("REDIS_URL", "redis://127.0.0.1:6379/0")
        if services.redis_answers(redis_url):
            print(f"redis: using {redis_url}")
        else:
            rport = 6379 if not services.port_open(6379) else services.free_port()
            proc, redis_url = services.start_redis(rport, data_dir=VAR / "redis", log=log("redis"))
            started.append(proc)
            print(f"redis: started redis-server at {redis_url}")
        env["REDIS_URL"] = redis_url

        if "CHAIN_RPC_URL" not in os.environ:
            aport = 8545 if not services.port_open(8545) else services.free_port()
            proc, env["CHAIN_RPC_URL"] = services.start_anvil(aport, state_file=VAR / "anvil-state.json", log=log("anvil"))
            started.append(proc)
            print(f"chain: started anvil at {env['CHAIN_RPC_URL']} (1-second blocks)")
            if "CHAIN_RPCS" not in os.environ:
                # USDKG's chain (Ethereum's stand-in): a second anvil with its own chain id, wallets and nonces.
                uport = 8546 if not services.port_open(8546) else services.free_port()
                proc, usdkg_url = services.start_anvil(uport, state_file=VAR / "anvil-usdkg-state.json",
                                                       log=log("anvil-usdkg"), chain_id=services.DEV_USDKG_CHAIN_ID)
                started.append(proc)
                env["CHAIN_RPCS"] = f"{services.DEV_USDKG_CHAIN_ID}={usdkg_url}"
                print(f"chain: started anvil for USDKG at {usdkg_url} (chain id {services.DEV_USDKG_CHAIN_ID})")

        if "STRIPE_API_BASE" not in os.environ:
            sport = 8420 if not services.port_open(8420) else services.free_port()
            proc, env["STRIPE_API_BASE"] = services.start_localstripe(sport, store=VAR / "localstripe.pickle",
                                                                      log=log("localstripe"))
            started.append(proc)
            env["STRIPE_JS_URL"] = f"{env['STRIPE_API_BASE']}/js.stripe.com/v3/"
            print(f"stripe: started localstripe at {env['STRIPE_API_BASE']}")

        record_runtime(env, secret_values)
        print(f"recorded in {VAR / envfile.RUN_ENV}: manage.py and celery in another shell use this stack")

        def manage(*args):
            subprocess.run([PY, "manage.py", *args], cwd=REPO, env=env, check=True)

        manage("migrate", "--no-input", "-v", "0")
        usdkg = ["--usdkg-chain-id", str(services.DEV_USDKG_CHAIN_ID)] if env.get("CHAIN_RPCS", "").startswith(
            f"{services.DEV_USDKG_CHAIN_ID}=") else []
        manage("devsetup", "--demo-key-file", str(VAR / "demo_api_key"), *usdkg)
        demo_key = (VAR / "demo_api_key").read_text().strip()
        base = env["PUBLIC_BASE_URL"]
        print(f"""
tulpar is starting:
  sender form     {base}/
  admin           {base}/admin/   user: admin   password: {env['DEV_ADMIN_PASSWORD']}
                  two-factor code: `{PY} -m gateway.dev.totp` prints the current one, or add
                  {totp.uri(env['DEV_ADMIN_TOTP_KEY'])} to an authenticator app
  API docs        {base}/api/v1/docs/
  health          {base}/healthz   {base}/readyz
  metrics         curl -s {base}/metrics -H 'Authorization: Bearer {env['METRICS_TOKEN']}'
  demo API key    Authorization: Api-Key {demo_key}
  try it          curl -s -X POST {base}/api/v1/quotes -H 'Authorization: Api-Key {demo_key}' \\
                    -H 'Content-Type: application/json' \\
                    -d '{{"source_currency": "RUB", "source_amount": "15000.00", "target_currency": "KGS"}}'
Ctrl-C stops everything.
""", flush=True)

        manager = Manager()
        manager.add_process("web", f"{PY} manage.py runserver 127.0.0.1:{port} --noreload", cwd=str(REPO), env=env)
        # One worker consumes every queue locally; docs/architecture.md "Queues and workers" splits them in production.
        queues = worker_queue_arg(env.get("CELERY_QUEUE", "tulpar"))
        manager.add_process("worker", f"{PY} -m celery -A gateway worker -l info --concurrency 2 -Q {queues}",
                            cwd=str(REPO), env=env)
        manager.add_process("beat", f"{PY} -m celery -A gateway beat -l info -s {VAR / 'celerybeat-schedule'}",
                            cwd=str(REPO), env=env)
        # Tracks and builds on each new head (onchain/heads.py); if it stops, beat's passes carry on alone.
        manager.add_process("heads", f"{PY} manage.py chain_heads", cwd=str(REPO), env=env)
        manager.loop()
        return manager.returncode
    finally:
        for proc in reversed(started):
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)  # anvil writes its state file on SIGINT
        for proc in reversed(started):
            services.stop(proc)


if __name__ == "__main__":
    sys.exit(main())
