"""A production-like web process for the hostile-input tests: gunicorn (as in the Dockerfile) in a subprocess, so a
request that crashes or hangs it cannot take pytest down with it, and its worker's pid shows whether it survived."""

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from django.core.management import call_command

from gateway.dev.services import REPO, free_port
from payments.services.setup import corridors_seed, partner_create, rates_seed
from tests.conftest import _test_database_url, wait_for


@dataclass
class Gunicorn:
    url: str
    proc: subprocess.Popen
    log: Path
    api_key: str

    def workers(self):
        """The pids of the master's worker processes (a crashed or timed-out worker is replaced by a new pid)."""
        if self.proc.poll() is not None:
            return []
        return sorted(Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split())

    def answers(self):
        try:
            return httpx.get(f"{self.url}/", timeout=10).status_code == 200
        except httpx.HTTPError:
            return False


@pytest.fixture(scope="module")
def gunicorn(django_db_setup, django_db_blocker, tmp_path_factory):
    """gunicorn with one sync worker on the test database, priced corridors and a partner key committed for it."""
    with django_db_blocker.unblock():
        corridors_seed()
        rates_seed()
        _partner, key = partner_create(name="hostile")
    log = tmp_path_factory.mktemp("gunicorn") / "gunicorn.log"
    port = free_port()
    env = dict(os.environ, DATABASE_URL=_test_database_url(), DJANGO_DEBUG="0")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "gateway.wsgi:application", "-c", "python:gateway.gunicorn",
         "--bind", f"127.0.0.1:{port}", "--workers", "1", "--timeout", "30", "--no-control-socket", "--error-logfile", str(log)],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = Gunicorn(url=f"http://127.0.0.1:{port}", proc=proc, log=log, api_key=key)
    try:
        wait_for(server.answers, timeout=180, what="gunicorn to answer")
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        with django_db_blocker.unblock():
            call_command("flush", interactive=False, verbosity=0)
