"""Liveness and readiness probes: /healthz and /readyz.

Both are answered by `ProbeMiddleware`, placed before the host check, the HTTPS redirect, sessions and the locale:
a container's HEALTHCHECK (plain http to localhost) and a load balancer's probe (any Host, any scheme) get an answer
without being in ALLOWED_HOSTS or behind X-Forwarded-Proto, and nothing here needs a session or an API key.

/healthz depends on nothing: the process answers. /readyz runs every check at once, each bounded by
READYZ_CHECK_TIMEOUT_SECONDS, so it answers within about that time even when a dependency hangs. The body names each
check, whether it passed and a short, secret-free detail (no URLs: they may carry credentials)."""

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

import httpx
import requests
from django.conf import settings
from django.db import connections
from django.http import HttpResponse

from common import ops_state

# Shared, so a hung dependency costs a thread until its own socket timeout, not a new pool per probe.
_POOL = ThreadPoolExecutor(max_workers=16, thread_name_prefix="readyz")


class CheckFailed(Exception):
    """A check's short, secret-free reason."""


def check_database():
    timeout = settings.READYZ_CHECK_TIMEOUT_SECONDS
    conn = connections["default"]
    try:
        with conn.cursor() as cursor:
            if conn.vendor == "postgresql":
                # set_config, not SET: the server binds parameters (settings.py), and SET takes none.
                cursor.execute("SELECT set_config('statement_timeout', %s, false)", [str(int(timeout * 1000))])
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        raise CheckFailed(f"database unavailable ({type(exc).__name__})") from exc
    finally:
        conn.close()  # a pool thread's own connection: never left open
    return {}


def _redis():
    return ops_state.client(timeout=settings.READYZ_CHECK_TIMEOUT_SECONDS)


def check_redis():
    try:
        _redis().ping()
    except Exception as exc:
        raise CheckFailed(f"redis unavailable ({type(exc).__name__})") from exc
    return {}


def check_beat():
    try:
        age = ops_state.beat_heartbeat_age(_redis())
    except Exception as exc:
        raise CheckFailed(f"beat heartbeat unreadable ({type(exc).__name__})") from exc
    if age is None:
        raise CheckFailed("no beat heartbeat recorded")
    if age > settings.READYZ_BEAT_MAX_AGE_SECONDS:
        raise CheckFailed(f"last beat tick {age:.0f} s ago (limit {settings.READYZ_BEAT_MAX_AGE_SECONDS} s)")
    return {"age_seconds": round(age, 1)}


def queue_depths(conn):
    """Messages waiting per queue. kombu's Redis transport keeps a queue as a list under its name (and, with task
    priorities, further lists named `<queue>\\x06\\x16<priority>`)."""
    depths = {}
    for kind, name in settings.CELERY_QUEUES_BY_KIND.items():
        pipe = conn.pipeline()
        for suffix in ("", "\x06\x163", "\x06\x166", "\x06\x169"):
            pipe.llen(name + suffix)
        depths[kind] = sum(pipe.execute())
    return depths


def check_queues():
    try:
        depths = queue_depths(_redis())
    except Exception as exc:
        raise CheckFailed(f"queue depth unreadable ({type(exc).__name__})") from exc
    limit = settings.READYZ_QUEUE_MAX_DEPTH
    deep = [kind for kind, depth in depths.items() if limit and depth > limit]
    if deep:
        raise CheckFailed(f"queues over {limit} messages: {', '.join(deep)}")
    return {"depths": depths}


def _rpc(url, method, params, timeout):
    response = requests.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params},
                             timeout=timeout)
    response.raise_for_status()
    body = response.json()
    if "error" in body:
        raise CheckFailed(f"{method} answered an error")
    return body["result"]


def check_chains():
    """Each chain with an active hot wallet: some RPC URL answers with its chain id, and its latest block is recent
    (a node that stopped syncing answers, but with an old head)."""
    from onchain.models import Chain
    from onchain.rpc import all_rpc_urls

    try:
        chain_ids = sorted(set(Chain.objects.filter(hot_wallets__is_active=True).values_list("chain_id", flat=True)))
    finally:
        connections["default"].close()
    if not chain_ids:
        return {"chains": {}, "note": "no active chain"}
    timeout = settings.READYZ_CHECK_TIMEOUT_SECONDS
    heads = {}
    for url in all_rpc_urls():  # the default URLs and each chain's (CHAIN_RPCS); each says which chain it serves
        try:
            chain_id = int(_rpc(url, "eth_chainId", [], timeout), 16)
            block = _rpc(url, "eth_getBlockByNumber", ["latest", False], timeout)
        except Exception:  # noqa: BLE001,S112 - the next URL may answer; a chain no URL answers for is reported below
            continue
        heads.setdefault(chain_id, (int(block["number"], 16), time.time() - int(block["timestamp"], 16)))
    result, failed = {}, []
    for chain_id in chain_ids:
        if chain_id not in heads:
            failed.append(f"chain {chain_id}: no RPC answers")
            continue
        number, age = heads[chain_id]
        result[str(chain_id)] = {"head": number, "head_age_seconds": round(max(age, 0.0), 1)}
        if age > settings.READYZ_CHAIN_HEAD_MAX_AGE_SECONDS:
            failed.append(f"chain {chain_id}: head {age:.0f} s old (limit {settings.READYZ_CHAIN_HEAD_MAX_AGE_SECONDS} s)")
    if failed:
        raise CheckFailed("; ".join(failed))
    return {"chains": result}


def check_stripe():
    """Stripe's API answers at all (any status below 500: an unauthenticated probe may well get 401 or 404)."""
    try:
        response = httpx.get(f"{settings.STRIPE_API_BASE.rstrip('/')}/v1/balance",
                             headers={"Authorization": f"Bearer {settings.STRIPE_SECRET_KEY}"},
                             timeout=settings.READYZ_CHECK_TIMEOUT_SECONDS)
    except Exception as exc:
        raise CheckFailed(f"stripe unreachable ({type(exc).__name__})") from exc
    if response.status_code >= 500:
        raise CheckFailed(f"stripe answered {response.status_code}")
    return {}


CHECKS = {
    "database": check_database,
    "redis": check_redis,
    "chains": check_chains,
    "stripe": check_stripe,
    "beat": check_beat,
    "queues": check_queues,
}


def readiness():
    """(ready, {name: {"ok": bool, ...}}), every check run at once and given at most the timeout (plus a margin)."""
    started = time.monotonic()
    deadline = started + settings.READYZ_CHECK_TIMEOUT_SECONDS + 0.5
    futures = {name: _POOL.submit(check) for name, check in CHECKS.items()}
    results = {}
    for name, future in futures.items():
        try:
            results[name] = {"ok": True, **future.result(timeout=max(deadline - time.monotonic(), 0.0))}
        except FutureTimeout:
            future.cancel()  # not started yet (the pool was busy): it never runs
            results[name] = {"ok": False, "error": "timed out"}
        except CheckFailed as exc:
            results[name] = {"ok": False, "error": str(exc)}
        except Exception as exc:  # noqa: BLE001 - an unexpected error is a failed check, never a 500
            results[name] = {"ok": False, "error": type(exc).__name__}
    return all(r["ok"] for r in results.values()), results


_cached = {"at": float("-inf"), "value": None}
_cached_lock = threading.Lock()


def readiness_cached():
    """readiness(), computed at most once per READYZ_CACHE_SECONDS per process: a client hammering /readyz holds one
    worker for one computation, not every worker for one each (each asks the database, Redis, the nodes and Stripe)."""
    with _cached_lock:
        if time.monotonic() - _cached["at"] >= settings.READYZ_CACHE_SECONDS or _cached["value"] is None:
            _cached["value"] = readiness()
            _cached["at"] = time.monotonic()
        return _cached["value"]


def _json(status, body):
    response = HttpResponse(json.dumps(body), status=status, content_type="application/json")
    response["Cache-Control"] = "no-store"
    return response


class ProbeMiddleware:
    PATHS = {"/healthz", "/readyz"}

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path_info not in self.PATHS or request.method not in ("GET", "HEAD"):
            return self.get_response(request)
        if request.path_info == "/healthz":
            return _json(200, {"status": "ok"})
        ready, checks = readiness_cached()
        failed = sorted(name for name, r in checks.items() if not r["ok"])
        return _json(200 if ready else 503, {"status": "ready" if ready else "unready", "failed": failed,
                                             "checks": checks})
