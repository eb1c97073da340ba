"""Web and worker processes run with a sane recursion limit, whatever a library sets when imported.

py_ecc (imported by eth_account) raises the whole process's limit to 100,000; at that limit the C JSON parser
overflows the C stack on a deeply nested document and the process dies of SIGSEGV instead of raising
RecursionError. Each entry point (gunicorn's gateway.wsgi, manage.py, the Celery worker) must undo it once the
apps are loaded."""

import os
import socket
import subprocess
import sys
import uuid

import pytest
from django.conf import settings

from gateway.dev.services import REPO
from tests.conftest import wait_for

PROBE = "import sys, py_ecc, eth_account, web3; print(sys.getrecursionlimit(), 'py_ecc' in sys.modules)"
ENTRY_POINTS = {
    # gunicorn imports gateway.wsgi in each worker; importing the chain libraries again must not raise it back.
    "wsgi": [sys.executable, "-c", "import gateway.wsgi\n" + PROBE],
    "manage.py": [sys.executable, "manage.py", "shell", "-c", PROBE],
}


@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
def test_web_entry_points_run_with_the_default_recursion_limit(entry):
    """After start-up (which imports eth_account and so py_ecc), the limit is back at Python's 1,000."""
    result = subprocess.run(ENTRY_POINTS[entry], cwd=REPO, env=dict(os.environ), capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-2:] == ["1000", "True"], result.stdout


def _deep_task_message(task_id):
    """A protocol-2 task message for a real task whose body is a 100,000-level JSON array (the worker's pool
    process decodes it)."""
    from gateway.celery import app

    queue = app.amqp.queues[settings.CELERY_TASK_DEFAULT_QUEUE]
    headers = {"lang": "py", "task": "payments.tasks.transfers_sweep", "id": task_id, "root_id": task_id,
               "parent_id": None, "group": None, "retries": 0, "eta": None, "expires": None,
               "timelimit": [None, None], "argsrepr": "()", "kwargsrepr": "{}", "origin": "test"}
    with app.producer_or_acquire() as producer:
        producer.publish("[" * 100_000 + "]" * 100_000, exchange=queue.exchange, routing_key=queue.routing_key,
                         declare=[queue], serializer=None, content_type="application/json",
                         content_encoding="utf-8", headers=headers, correlation_id=task_id)


@pytest.mark.django_db(transaction=True)
def test_celery_worker_survives_a_deeply_nested_task_message(celery_processes):
    """A task message nested 100,000 deep fails to decode with an error in the log; no pool process dies of a
    signal (with late acks a crash would redeliver the message forever), and the worker still answers."""
    from gateway.celery import app

    log = settings.VAR_DIR / "worker.log"
    start = log.stat().st_size if log.exists() else 0
    task_id = f"deep-{uuid.uuid4()}"
    _deep_task_message(task_id)

    worker = celery_processes[0]

    def outcome():
        if worker.poll() is not None:
            return f"the worker process exited with {worker.returncode}"
        text = log.read_bytes()[start:].decode(errors="replace")
        return text if task_id in text else None

    text = wait_for(outcome, timeout=60, what="the worker to report the nested message")
    assert worker.poll() is None, text
    assert "SIGSEGV" not in text and "exited with" not in text and "WorkerLostError" not in text, text[-3000:]
    assert "RecursionError" in text or "DecodeError" in text, text[-3000:]
    name = f"test-{os.getpid()}@{socket.gethostname()}"  # tests/conftest.py's worker, not another run's
    replies = wait_for(lambda: app.control.ping(destination=[name], timeout=2), timeout=30,
                       what="the worker to answer a ping")
    assert replies, "the worker does not answer"
    assert all(proc.poll() is None for proc in celery_processes)
