"""/healthz and /readyz (gateway/health.py): liveness without dependencies; readiness over the database, Redis, the
chain's RPC and head, Stripe, beat's heartbeat and the queues, failing by name when one is stopped and passing again
when it returns."""

import time

import pytest
from django.db.utils import ConnectionHandler

from common import ops_state
from gateway import health
from gateway.dev import services

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def beat_ticked():
    """What beat's heartbeat task does every 10 s (common/tasks.py)."""
    from common.tasks import beat_heartbeat

    beat_heartbeat()


@pytest.fixture
def active_chain(chain, settings):
    """The session's chain with its hot wallet, answered by a private anvil this test may stop."""
    port = services.free_port()
    proc, url = services.start_anvil(port, block_time=1)
    settings.CHAIN_RPC_URLS = [url]
    node = {"proc": proc, "port": port, "url": url}
    yield node
    services.stop(node["proc"])  # the node a test started again in its place, not only the first (it was left running)


@pytest.fixture(autouse=True)
def fresh_readiness(settings):
    """Each call computes (the per-process cache is pinned by its own test)."""
    settings.READYZ_CACHE_SECONDS = 0


def test_a_hammered_readyz_computes_once_per_cache_window(client, settings, monkeypatch):
    """Ten /readyz calls inside READYZ_CACHE_SECONDS run the checks once; after the window they run again."""
    from gateway import health

    settings.READYZ_CACHE_SECONDS = 60
    calls = []
    monkeypatch.setattr(health, "readiness", lambda: calls.append(1) or (True, {"database": {"ok": True}}))
    monkeypatch.setitem(health._cached, "value", None)
    for _ in range(10):
        assert client.get("/readyz").status_code == 200
    assert len(calls) == 1
    settings.READYZ_CACHE_SECONDS = 0
    client.get("/readyz")
    assert len(calls) == 2


def readyz(client):
    started = time.monotonic()
    response = client.get("/readyz")
    return response, response.json(), time.monotonic() - started


def test_healthz_answers_200_for_any_host_and_over_plain_http_behind_a_redirecting_proxy(client, settings):
    """The container's HEALTHCHECK calls http://localhost/healthz: no host check, no HTTPS redirect, no database."""
    settings.SECURE_SSL_REDIRECT = True
    settings.ALLOWED_HOSTS = ["gateway.example"]
    response = client.get("/healthz", HTTP_HOST="10.0.0.7:8000")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert client.get("/healthz", HTTP_HOST="gateway.example", HTTP_X_FORWARDED_PROTO="https").status_code == 200
    # Everything else is still redirected to https.
    assert client.get("/", HTTP_HOST="gateway.example").status_code == 301


def test_readyz_ready_with_every_dependency_up(client, active_chain, stripe_server, beat_ticked):
    """All checks pass: 200, each named with its detail (the chain's head and its age, the queues' depths); no
    secret or URL in the body."""
    from django.conf import settings

    response, body, elapsed = readyz(client)
    assert response.status_code == 200, body
    assert body["status"] == "ready" and body["failed"] == []
    assert set(body["checks"]) == {"database", "redis", "chains", "stripe", "beat", "queues"}
    assert body["checks"]["chains"]["chains"]["31337"]["head_age_seconds"] < 60
    assert set(body["checks"]["queues"]["depths"]) == {"default", "settlement", "stripe", "notify"}
    text = response.content.decode()
    for secret in (settings.STRIPE_SECRET_KEY, settings.STRIPE_API_BASE, active_chain["url"], settings.REDIS_URL):
        assert secret not in text
    assert elapsed < 2.5


def test_readyz_follows_redis_going_away_and_coming_back(client, settings, tmp_path, active_chain, stripe_server):
    """A private redis-server stopped: redis, beat and queues fail (503, named); started again on the same port
    (its append-only file keeps beat's heartbeat): ready again."""
    port = services.free_port()
    proc, url = services.start_redis(port, data_dir=tmp_path / "redis")
    try:
        settings.REDIS_URL = url
        ops_state.beat_heartbeat_record()
        ops_state.client().save()
        assert readyz(client)[0].status_code == 200
        services.stop(proc)
        response, body, elapsed = readyz(client)
        assert response.status_code == 503
        assert set(body["failed"]) == {"redis", "beat", "queues"}, body
        assert "unavailable" in body["checks"]["redis"]["error"]
        assert elapsed < 2.5
        proc, _ = services.start_redis(port, data_dir=tmp_path / "redis")
        response, body, _ = readyz(client)
        assert response.status_code == 200, body
    finally:
        services.stop(proc)


def test_readyz_follows_the_chain_rpc_going_away_and_coming_back(client, active_chain, stripe_server, beat_ticked):
    """The chain's only RPC node stopped: `chains` fails (no RPC answers); a node on that URL again: ready."""
    services.stop(active_chain["proc"])
    response, body, _ = readyz(client)
    assert response.status_code == 503 and body["failed"] == ["chains"], body
    assert "no RPC answers" in body["checks"]["chains"]["error"]
    active_chain["proc"], _ = services.start_anvil(active_chain["port"], block_time=1)
    response, body, _ = readyz(client)
    assert response.status_code == 200, body


def test_readyz_fails_a_chain_whose_head_is_older_than_the_limit(client, settings, active_chain, stripe_server,
                                                                 beat_ticked):
    """A node that answers but has stopped following the chain (its head older than the limit) is not ready."""
    settings.READYZ_CHAIN_HEAD_MAX_AGE_SECONDS = -1
    response, body, _ = readyz(client)
    assert response.status_code == 503 and body["failed"] == ["chains"], body
    assert "old" in body["checks"]["chains"]["error"]


def test_readyz_follows_stripe_going_away_and_coming_back(client, settings, tmp_path, active_chain, beat_ticked):
    """localstripe stopped: `stripe` fails; started again: ready."""
    port = services.free_port()
    proc, settings.STRIPE_API_BASE = services.start_localstripe(port, store=tmp_path / "ls.pickle")
    try:
        assert readyz(client)[0].status_code == 200
        services.stop(proc)
        response, body, _ = readyz(client)
        assert response.status_code == 503 and body["failed"] == ["stripe"], body
        proc, _ = services.start_localstripe(port, store=tmp_path / "ls.pickle")
        assert readyz(client)[0].status_code == 200
    finally:
        services.stop(proc)


def test_readyz_fails_when_the_database_does_not_answer(client, monkeypatch, active_chain, stripe_server,
                                                        beat_ticked):
    """The database check's connection pointed at a port where nothing listens (restarting the suite's PostgreSQL
    is the fault suite's job, TULPAR_FAULTS_PG_RESTART): `database` fails; pointed back: ready."""
    from django.db import connections

    dead = ConnectionHandler({"default": {**connections["default"].settings_dict, "PORT": services.free_port()}})
    monkeypatch.setattr(health, "connections", dead)
    response, body, _ = readyz(client)
    assert response.status_code == 503 and body["failed"] == ["database"], body
    monkeypatch.undo()
    assert readyz(client)[0].status_code == 200


def test_readyz_answers_in_time_when_a_dependency_hangs(client, settings, active_chain, beat_ticked):
    """Stripe's address accepts connections but never answers: /readyz still answers within about the check
    timeout, naming stripe as failed."""
    import socket

    with socket.socket() as hang:
        hang.bind(("127.0.0.1", 0))
        hang.listen(8)
        settings.STRIPE_API_BASE = f"http://127.0.0.1:{hang.getsockname()[1]}"
        settings.READYZ_CHECK_TIMEOUT_SECONDS = 1.0
        response, body, elapsed = readyz(client)
    assert response.status_code == 503 and body["failed"] == ["stripe"], body
    assert elapsed < 2.0


def test_readyz_fails_without_a_recent_beat_tick(client, settings, active_chain, stripe_server):
    """No heartbeat within READYZ_BEAT_MAX_AGE_SECONDS (beat stopped, or nobody consumes the default queue)."""
    ops_state.beat_heartbeat_record(now=time.time() - 600)
    response, body, _ = readyz(client)
    assert response.status_code == 503 and body["failed"] == ["beat"], body
    ops_state.beat_heartbeat_record()
    assert readyz(client)[0].status_code == 200


def test_readyz_judges_queue_depth_only_when_a_limit_is_set(client, settings, active_chain, stripe_server,
                                                            beat_ticked):
    """Depths are reported; with READYZ_QUEUE_MAX_DEPTH set, a deeper queue fails `queues` by name."""
    conn = ops_state.client()
    name = settings.CELERY_QUEUES_BY_KIND["notify"] + "-readyz-test"
    settings.CELERY_QUEUES_BY_KIND = {**settings.CELERY_QUEUES_BY_KIND, "notify": name}
    conn.rpush(name, *[b"x"] * 3)
    try:
        body = readyz(client)[1]
        assert body["checks"]["queues"]["depths"]["notify"] == 3 and body["status"] == "ready", body
        settings.READYZ_QUEUE_MAX_DEPTH = 2
        response, body, _ = readyz(client)
        assert response.status_code == 503 and "notify" in body["checks"]["queues"]["error"], body
    finally:
        conn.delete(name)


def test_readyz_checks_each_chain_on_its_own_rpc(client, settings, active_chain, stripe_server, beat_ticked):
    """Two chains with active hot wallets, the second (USDKG's, chain id 31338) on its own node named in CHAIN_RPCS:
    both heads reported; that node stopped: `chains` fails naming chain 31338 only."""
    from eth_account import Account

    from onchain.models import Chain, HotWallet

    port = services.free_port()
    proc, url = services.start_anvil(port, block_time=1, chain_id=services.DEV_USDKG_CHAIN_ID)
    try:
        settings.CHAIN_RPCS = {services.DEV_USDKG_CHAIN_ID: [url]}
        second = Chain.objects.create(chain_id=services.DEV_USDKG_CHAIN_ID, name="USDKG chain")
        HotWallet.objects.create(chain=second, address=Account.create().address, key_env="HOT_WALLET_USDKG_PRIVATE_KEY")
        response, body, _ = readyz(client)
        assert response.status_code == 200, body
        assert set(body["checks"]["chains"]["chains"]) == {"31337", "31338"}
        assert url not in response.content.decode()
        services.stop(proc)
        response, body, _ = readyz(client)
        assert response.status_code == 503 and body["failed"] == ["chains"], body
        assert body["checks"]["chains"]["error"] == "chain 31338: no RPC answers"
    finally:
        services.stop(proc)
