"""Latency of the settlement path (docs/settlement.md "The path of a payout"): adaptive batching, the build trigger
on a queued payout, and the new-heads runner with its polling fallback, on the session's anvil (1-second blocks)."""

import logging
import os
import subprocess
import sys
import threading

import pytest
import redis
from django.conf import settings
from django.db import connections, transaction

from gateway.dev.services import REPO, free_port
from onchain import heads, triggers
from onchain.models import Batch, Payout
from onchain.services import batches
from tests.conftest import _test_database_url, wait_for
from tests.onchain.helpers import all_final, queue, recording_listener, send

pytestmark = pytest.mark.django_db(transaction=True)


def build(token):
    """The builder's own decision (no `force`): what beat, a trigger or a new head would run."""
    return batches.batches_build(token_id=token.pk)


def test_a_lone_payout_goes_at_once_and_payouts_wait_for_company_only_while_every_wallet_is_busy(chain, settings):
    """A wallet with fewer than BATCH_MAX_IN_FLIGHT (2 here) batches not yet mined: a lone payout is batched at once,
    although BATCH_MAX_AGE_MS (a minute here) has not passed. With two of its batches not yet mined, payouts wait for
    company; BATCH_MAX_SIZE of them go at once as one batch. Once its batches are mined, a lone payout goes at once."""
    settings.SETTLEMENT_BATCHING, settings.BATCH_MAX_SIZE, settings.BATCH_MAX_AGE_MS = True, 3, 60_000
    settings.BATCH_MAX_IN_FLIGHT = 2
    token = chain["token"]
    with recording_listener():
        queue("lone-1")
        (first,) = build(token)
        queue("lone-2")
        (second,) = build(token)  # one batch in flight: still under the limit
        assert (first.count, second.count) == (1, 1)
        queue("busy-1")
        queue("busy-2")
        assert build(token) == []  # two batches in flight: wait for company
        assert Payout.objects.filter(status=Payout.Status.QUEUED).count() == 2
        queue("busy-3")
        (full,) = build(token)  # BATCH_MAX_SIZE queued: due however young
        assert full.count == 3
        send([first, second, full])
        wait_for(lambda: not Batch.objects.exclude(status__in=[Batch.Status.MINED, Batch.Status.FINAL]).exists()
                 or (heads.head_seen(chain["chain"].pk), False)[1], timeout=30, interval=0.3, what="the batches mined")
        queue("lone-3")
        (again,) = build(token)
        assert again.count == 1
        send([again])
        all_final(chain["chain"])


def _worker(tmp_path):
    """A real Celery worker (no beat) on the test database and the session's queues."""
    from common.queues import worker_queue_arg

    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "gateway", "worker", "-l", "info", "--concurrency", "1",
         "--without-gossip", "--without-mingle", "-n", f"latency-{os.getpid()}@%h",
         "-Q", worker_queue_arg(settings.CELERY_TASK_DEFAULT_QUEUE)],
        cwd=REPO, env=dict(os.environ, DATABASE_URL=_test_database_url()),
        stdout=open(tmp_path / "worker.log", "ab"), stderr=subprocess.STDOUT)  # noqa: SIM115 - the child's


def test_a_queued_payout_is_built_and_sent_by_its_trigger_without_beat(chain, tmp_path):
    """payout_request triggers a build on commit: with a worker and no beat, the payouts are batched and broadcast.
    A burst enqueues one build task, not one per payout (the pending mark is single-flight)."""
    token = chain["token"]
    r = redis.Redis.from_url(settings.REDIS_URL)
    queue_name = settings.CELERY_QUEUES_BY_KIND["settlement"]
    r.delete(queue_name)
    with transaction.atomic():
        queue("trigger-0")
        assert r.llen(queue_name) == 0  # on commit, not before
    assert r.llen(queue_name) == 1
    for i in range(1, 20):
        queue(f"trigger-{i}")  # each in its own commit: a burst
    assert not triggers.build_kick(token.pk)
    assert r.llen(queue_name) == 1
    worker = _worker(tmp_path)
    try:
        wait_for(lambda: Payout.objects.filter(status=Payout.Status.BATCHED).count() == 20
                 and not Batch.objects.filter(status=Batch.Status.SIGNED).exists(), timeout=60,
                 what="the trigger's build and send")
    finally:
        worker.terminate()
        worker.wait(15)
    assert Batch.objects.count() == 1  # an idle wallet: the whole short queue in one batch
    with recording_listener():
        all_final(chain["chain"])


def _run_heads(chain_id):
    stop = threading.Event()

    def target():
        try:
            heads.heads_follow(chain_id, stop)
        finally:
            connections.close_all()

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return stop, thread


@pytest.mark.parametrize("ws", ["anvil", "refused"])
def test_new_heads_settle_a_payout_and_polling_takes_over_without_a_subscription(chain, settings, caplog, ws):
    """The heads runner alone (no beat, no worker, nothing driven by hand) builds, sends, tracks and reports a
    payout final: over anvil's newHeads subscription, and, where nothing answers at CHAIN_WS_URL, by polling."""
    settings.CHAIN_WS_URL = "" if ws == "anvil" else f"ws://127.0.0.1:{free_port()}"
    caplog.set_level(logging.INFO, logger="onchain.heads")
    with recording_listener() as listener:
        stop, thread = _run_heads(chain["chain"].pk)
        try:
            queue(f"heads-{ws}")
            wait_for(lambda: listener.final, timeout=60, interval=0.2, what="the payout reported final")
        finally:
            stop.set()
            thread.join(15)
    assert [ref for ref, _ in listener.final] == [f"heads-{ws}"]
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert ("heads_subscribed" in messages) == (ws == "anvil")
    assert ("heads_polling" in messages) == (ws == "refused")
