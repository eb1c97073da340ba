"""Operational facts kept in Redis, shared by every process: beat's last tick and task failures by task name.
Keys are namespaced by the default queue's name (CELERY_QUEUE), so a test run never reads a `make run`'s."""

import time

import redis
from django.conf import settings

TIMEOUT_SECONDS = 1.0


def client(url=None, timeout=TIMEOUT_SECONDS):
    return redis.Redis.from_url(url or settings.REDIS_URL, socket_timeout=timeout, socket_connect_timeout=timeout)


def _key(name):
    return f"{settings.CELERY_TASK_DEFAULT_QUEUE}:ops:{name}"


def beat_heartbeat_record(now=None):
    client().set(_key("beat-heartbeat"), repr(now if now is not None else time.time()))


def beat_heartbeat_age(conn=None, now=None):
    """Seconds since the last heartbeat task ran, or None when none ever did."""
    value = (conn or client()).get(_key("beat-heartbeat"))
    if value is None:
        return None
    return max((now if now is not None else time.time()) - float(value), 0.0)


def task_failure_record(task_name):
    client().hincrby(_key("task-failures"), task_name or "unknown", 1)


def task_failures(conn=None):
    """{task name: failures since the counter was created} (a Prometheus counter: only ever grows)."""
    raw = (conn or client()).hgetall(_key("task-failures"))
    return {k.decode(): int(v) for k, v in raw.items()}


def resend_claim(what, ids, seconds):
    """The ids (of `what`) not re-sent in the last `seconds`, each now marked as re-sent (SET NX with expiry, one
    round trip). A sweeper re-sending a lost task for every row still waiting would, behind a backlog of B seconds
    swept every S, queue each row B/S times, and the copies deepen the backlog they come from; with this, once per
    `seconds`. When Redis cannot say, every id: a duplicate task is harmless (each is idempotent), a lost one is not."""
    ids = [str(i) for i in ids]
    if not ids:
        return ids
    try:
        pipe = client().pipeline(transaction=False)
        for i in ids:
            pipe.set(_key(f"resent:{what}:{i}"), "1", nx=True, ex=seconds)
        return [i for i, fresh in zip(ids, pipe.execute(), strict=True) if fresh]
    except redis.RedisError:
        return ids


def pending_claim(what, seconds):
    """Single flight for a task that reads its work from the table: True when no `what` task is pending (and one now
    is, for at most `seconds`: a mark whose task was lost lapses), False when one is. When Redis cannot say, True: a
    second task is harmless, a missing one is not."""
    try:
        return bool(client().set(_key(f"pending:{what}"), "1", nx=True, ex=seconds))
    except redis.RedisError:
        return True


def pending_clear(what):
    """The pending `what` task starts: work committed from now on must claim (and enqueue) again."""
    try:
        client().delete(_key(f"pending:{what}"))
    except redis.RedisError:
        pass


def failing_add(what, ids, seconds):
    """Remember `ids` (of `what`) as failing for `seconds`: a batch task leaves them out meanwhile, so one row that
    keeps failing does not make every batch it would be in fail and be done again row by row."""
    ids = [str(i) for i in ids]
    if not ids:
        return
    try:
        client().zadd(_key(f"failing:{what}"), {i: time.time() + seconds for i in ids})
    except redis.RedisError:
        pass


def failing(what):
    """The ids of `what` remembered as failing and not yet due again (empty when Redis cannot say)."""
    try:
        conn, key = client(), _key(f"failing:{what}")
        conn.zremrangebyscore(key, "-inf", time.time())
        return {member.decode() for member in conn.zrange(key, 0, -1)}
    except redis.RedisError:
        return set()
