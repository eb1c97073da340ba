"""`make run`: start every part of the gateway that is not configured already, set it up, print how to use it.

Parts taken from the environment when set: DATABASE_URL (else a SQLite file in var/), REDIS_URL (used when it
answers, else a redis-server of our own), CHAIN_RPC_URL (else anvil), STRIPE_API_BASE (else localstripe).
Ctrl-C stops everything this started.
"""

import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path

from honcho.manager import Manager

from gateway.dev import services

REPO = services.REPO
VAR = Path(os.environ.get("TULPAR_VAR_DIR", REPO / "var"))
PY = sys.executable


def dev_secrets():
    """Generated once per checkout into var/dev.env (mode 600, git-ignored); never in the repo."""
    path = VAR / "dev.env"
    values = {}
    if path.exists():
        values = dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    generated = {
        "DJANGO_SECRET_KEY": lambda: secrets.token_urlsafe(50),
        "HOT_WALLET_PRIVATE_KEY": lambda: "0x" + secrets.token_hex(32),
        "STRIPE_SECRET_KEY": lambda: "sk_test_" + secrets.token_hex(12),
        "STRIPE_PUBLISHABLE_KEY": lambda: "pk_test_" + secrets.token_hex(12),
        "STRIPE_WEBHOOK_SECRET": lambda: "whsec_" + secrets.token_hex(16),
        "DEV_ADMIN_PASSWORD": lambda: secrets.token_urlsafe(12),
    }
    changed = False
    for name, make in generated.items():
        if not values.get(name):
            values[name], changed = make(), True
    if changed:
        path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
        path.chmod(0o600)
    return values


def main():
    VAR.mkdir(exist_ok=True)
    (VAR / "log").mkdir(exist_ok=True)
    env = dict(os.environ)
    env.update({k: v for k, v in dev_secrets().items() if k not in os.environ})
    port = int(env.get("PORT", "8000"))
    env.setdefault("DJANGO_DEBUG", "1")
    env.setdefault("PUBLIC_BASE_URL", f"http://127.0.0.1:{port}")
    env.setdefault("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost")
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

        if "STRIPE_API_BASE" not in os.environ:
            sport = 8420 if not services.port_open(8420) else services.free_port()
            proc, env["STRIPE_API_BASE"] = services.start_localstripe(sport, store=VAR / "localstripe.pickle",
                                                                      log=log("localstripe"))
            started.append(proc)
            env["STRIPE_JS_URL"] = f"{env['STRIPE_API_BASE']}/js.stripe.com/v3/"
            print(f"stripe: started localstripe at {env['STRIPE_API_BASE']}")

        def manage(*args):
            subprocess.run([PY, "manage.py", *args], cwd=REPO, env=env, check=True)

        manage("migrate", "--no-input", "-v", "0")
        manage("devsetup", "--demo-key-file", str(VAR / "demo_api_key"))
        demo_key = (VAR / "demo_api_key").read_text().strip()
        base = env["PUBLIC_BASE_URL"]
        print(f"""
tulpar is starting:
  sender form     {base}/
  admin           {base}/admin/   user: admin   password: {env['DEV_ADMIN_PASSWORD']}
  API docs        {base}/api/v1/docs/
  demo API key    Authorization: Api-Key {demo_key}
  try it          curl -s -X POST {base}/api/v1/quotes -H 'Authorization: Api-Key {demo_key}' \\
                    -H 'Content-Type: application/json' \\
                    -d '{{"source_currency": "RUB", "source_amount": "15000.00", "target_currency": "KGS"}}'
Ctrl-C stops everything.
""", flush=True)

        manager = Manager()
        manager.add_process("web", f"{PY} manage.py runserver 127.0.0.1:{port} --noreload", cwd=str(REPO), env=env)
        manager.add_process("worker", f"{PY} -m celery -A gateway worker -l info --concurrency 2", cwd=str(REPO), env=env)
        manager.add_process("beat", f"{PY} -m celery -A gateway beat -l info -s {VAR / 'celerybeat-schedule'}",
                            cwd=str(REPO), env=env)
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
