"""A real gunicorn, as the Dockerfile runs it, on a free port against the test database, for tests that race requests
across processes (tests/payments/test_balances_concurrency.py, test_idempotency.py)."""

import contextlib
import os
import subprocess
import sys

import httpx
import redis
from django.conf import settings

from gateway.dev.services import REPO, free_port
from tests.conftest import _test_database_url, wait_for


@contextlib.contextmanager
def gunicorn_server(name, *, workers=4, args=(), env=None):
    """Yields (base URL, process). Its after-commit tasks go to a queue of their own, emptied afterwards, so no later
    worker picks them up; its log is var/gunicorn-<name>.log."""
    port, queue = free_port(), f"{settings.CELERY_TASK_DEFAULT_QUEUE}-gunicorn"
    env = dict(os.environ, DATABASE_URL=_test_database_url(), CELERY_QUEUE=queue, RATE_API_PER_MINUTE="100000",
               **(env or {}))
    log = open(settings.VAR_DIR / f"gunicorn-{name}.log", "ab")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "gateway.wsgi:application", "-c", "python:gateway.gunicorn",
                             "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--timeout", "120", *args],
                            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"

    def answers():
        try:
            # A cheap answer (401 before any query): the schema took seconds to build, and on a loaded machine
            # every probe of it outran its own timeout, so gunicorn "never answered".
            return httpx.get(f"{url}/api/v1/transfers", timeout=10).status_code == 401
        except httpx.TransportError:
            return proc.poll() is not None  # exited: fail below rather than wait out the timeout

    try:
        wait_for(answers, timeout=180, what="gunicorn to answer")
        assert proc.poll() is None, f"gunicorn exited ({proc.returncode}); see {log.name}"
        yield url, proc
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        redis.Redis.from_url(settings.CELERY_BROKER_URL).delete(queue)
