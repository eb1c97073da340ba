"""Single-runner locks for periodic jobs (one tracker per chain, one batcher per token at a time), in Redis.
Correctness never depends on them (row locks and guarded transitions do that); they stop duplicate work.

The lock lives `ttl` seconds and a daemon thread renews it while the job runs, so a long pass keeps it but a
holder killed outright (SIGKILL, OOM, a lost node) lets it lapse within `ttl`: a crash costs seconds, not minutes.
"""

import contextlib
import functools
import threading

import redis
from django.conf import settings


@functools.cache
def _redis():
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=5)


def redis_client():
    """The locks' Redis connection, for other short-lived marks (onchain.triggers, the heads runner's liveness)."""
    return _redis()


@contextlib.contextmanager
def only_one(name, ttl=5, wait=0):
    """Yields True when this process holds the lock, False when another does (after waiting up to `wait` seconds
    for it: a triggered pass waits for the running one to end rather than leave its work to the next beat tick)."""
    # thread_local=False: the renewing thread must see the token the acquiring thread got.
    lock = _redis().lock(f"tulpar:lock:{settings.CELERY_TASK_DEFAULT_QUEUE}:{name}", timeout=ttl, blocking=wait > 0,
                         blocking_timeout=wait or None, thread_local=False)
    if not lock.acquire():
        yield False
        return
    done = threading.Event()

    def renew():
        while not done.wait(ttl / 3):
            with contextlib.suppress(redis.exceptions.RedisError):
                lock.reacquire()

    threading.Thread(target=renew, daemon=True, name=f"lock-renew-{name}").start()
    try:
        yield True
    finally:
        done.set()
        with contextlib.suppress(redis.exceptions.RedisError):
            lock.release()
