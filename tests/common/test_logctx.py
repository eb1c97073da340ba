"""Structured logs (common/logctx.py, settings LOGGING): JSON lines carrying the request id (the client's
X-Request-ID or a new one, echoed) and the transfer id, in web requests and in Celery tasks, whose messages carry
the publisher's request id in a header."""

import io
import json
import logging
import uuid

import pytest
from celery import current_app
from django.conf import settings

from common import logctx, ops_state
from tests.conftest import wait_for


@pytest.fixture
def json_lines():
    """The lines the configured console handler would write (its formatter and filter), collected."""
    console = next(h for h in logging.getLogger().handlers
                   if any(isinstance(f, logctx.ContextFilter) for f in h.filters))
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(console.formatter)
    for f in console.filters:
        handler.addFilter(f)
    logging.getLogger().addHandler(handler)
    yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines()]
    logging.getLogger().removeHandler(handler)


def test_request_id_is_echoed_and_bad_ones_replaced(client):
    """A plain X-Request-ID comes back as it was; a missing or unsafe one (spaces, newlines, too long) is replaced
    by a new one."""
    assert client.get("/healthz", HTTP_X_REQUEST_ID="edge-7f3a.1")["X-Request-ID"] == "edge-7f3a.1"
    for bad in (None, "a b", "x\ny", "z" * 129):
        headers = {"HTTP_X_REQUEST_ID": bad} if bad else {}
        echoed = client.get("/healthz", **headers)["X-Request-ID"]
        assert echoed != bad and len(echoed) == 32


@pytest.mark.django_db
def test_web_request_lines_are_json_with_request_and_transfer_ids(api, json_lines):
    """A request for a transfer's URL logs JSON lines (production's LOG_FORMAT default) with the request id and
    that transfer's id; a request about no transfer carries the request id and a null transfer id."""
    assert settings.LOG_FORMAT == "json"
    transfer_id = str(uuid.uuid4())
    response = api.get(f"/api/v1/transfers/{transfer_id}", HTTP_X_REQUEST_ID="req-web-1")
    assert response.status_code == 404 and response["X-Request-ID"] == "req-web-1"
    api.get("/api/v1/transfers", HTTP_X_REQUEST_ID="req-web-2")
    lines = json_lines()
    mine = [line for line in lines if line["request_id"] == "req-web-1"]
    assert mine and all(line["transfer_id"] == transfer_id for line in mine), lines
    assert any(line["logger"] == "tulpar.http" and "status=404" in line["message"] for line in mine)
    other = [line for line in lines if line["request_id"] == "req-web-2"]
    assert other and all(line["transfer_id"] is None for line in other), lines
    assert str(transfer_id) not in json.dumps(other)


@pytest.mark.django_db(transaction=True)
def test_celery_task_lines_carry_the_publishers_request_id_and_the_transfer_id(celery_processes):
    """A transfer task published inside a request (its id in the message header) logs, in the worker, JSON lines
    with that request id and the task's transfer id; its failure is counted for /metrics; the worker consumes the
    settlement queue the task is routed to, and beat's heartbeat reaches Redis through the default queue."""
    log = settings.VAR_DIR / "worker.log"
    start = log.stat().st_size if log.exists() else 0
    transfer_id = str(uuid.uuid4())  # no such transfer: the task fails, which it logs
    before = ops_state.task_failures().get("payments.transfer_advance", 0)
    ops_state.beat_heartbeat_record(now=0)  # an old tick: only this worker and beat can bring it back
    token = logctx.request_id_var.set("req-celery-1")
    try:
        current_app.send_task("payments.transfer_advance", args=[transfer_id])
    finally:
        logctx.request_id_var.reset(token)

    def task_lines():
        lines = []
        for raw in log.read_bytes()[start:].decode(errors="replace").splitlines():
            try:
                line = json.loads(raw)
            except ValueError:
                continue
            if isinstance(line, dict) and line.get("transfer_id") == transfer_id:
                lines.append(line)
        return [line for line in lines if line.get("level") == "ERROR"] and lines

    lines = wait_for(task_lines, timeout=60, what="the worker's lines about the task")
    assert all(line["request_id"] == "req-celery-1" for line in lines), lines
    wait_for(lambda: ops_state.task_failures().get("payments.transfer_advance", 0) >= before + 1, timeout=60,
             what="the failure counted")
    wait_for(lambda: (ops_state.beat_heartbeat_age() or 999) < 30, timeout=30, what="beat's heartbeat")
