"""A Celery worker killed (SIGKILL) in the middle of a webhook delivery: the message still arrives, with the same
webhook-id, from the next worker (at least once)."""

import os
import signal
import subprocess
import sys

import pytest
from django.conf import settings
from standardwebhooks.webhooks import Webhook

from gateway.dev.services import REPO
from payments.models import WebhookDelivery
from payments.services import webhooks
from tests.conftest import _test_database_url, wait_for
from tests.payments import webhook_receiver


def _start(kind, log_name):
    env = dict(os.environ, DATABASE_URL=_test_database_url())
    args = ([sys.executable, "-m", "celery", "-A", "gateway", "worker", "-l", "info", "--pool", "solo",
             "-n", f"webhook-crash-{os.getpid()}-{log_name}@%h"] if kind == "worker" else
            [sys.executable, "-m", "celery", "-A", "gateway", "beat", "-l", "info", "-s",
             str(settings.VAR_DIR / f"beat-schedule-{log_name}")])
    return subprocess.Popen(args, cwd=REPO, env=env, stdout=open(settings.VAR_DIR / f"{log_name}.log", "ab"),
                            stderr=subprocess.STDOUT)


def _stop(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_delivery_leaves_it_to_the_next_worker_with_the_same_id(partner):
    """The first worker is killed while the receiver holds its request (before any answer): the delivery's lease runs
    out, the beat sweep hands it to a second worker, and the receiver gets the message again with the same
    webhook-id, verifying with the endpoint's secret."""
    procs = {"worker": _start("worker", "crash-worker-1"), "beat": _start("beat", "crash-beat")}
    killed = []

    def kill_first_worker(n):
        if n == 0:
            os.kill(procs["worker"].pid, signal.SIGKILL)
            procs["worker"].wait(10)
            killed.append(procs["worker"].pid)

    receiver = webhook_receiver.start(on_request=kill_first_worker)
    try:
        endpoint, secret = webhooks.endpoint_create(partner=partner, url=receiver.url)
        event = webhooks.endpoint_ping(endpoint=endpoint)
        wait_for(lambda: killed, timeout=60, what="the first worker killed mid-delivery")
        delivery = WebhookDelivery.objects.get(event=event)
        assert delivery.state == "pending" and delivery.attempts == 1 and delivery.lease_until is not None
        procs["worker2"] = _start("worker", "crash-worker-2")
        wait_for(lambda: WebhookDelivery.objects.get(event=event).state == "delivered", timeout=90,
                 what="the delivery taken over by the second worker")
        requests = receiver.received()
        assert len(requests) >= 2
        assert {r.headers["webhook-id"] for r in requests} == {event.msg_id}
        assert all(Webhook(secret).verify(r.body, r.headers)["type"] == "webhook.test" for r in requests)
    finally:
        receiver.server.shutdown()
        for proc in procs.values():
            _stop(proc)
