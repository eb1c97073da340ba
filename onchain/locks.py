"""Single-runner locks for periodic jobs (one tracker, one batcher per token at a time), in Redis.
Correctness never depends on them (row locks and guarded transitions do that); they stop duplicate work."""

import contextlib
import functools

import redis
from django.conf import settings


@functools.cache
def _redis():
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=5)


@contextlib.contextmanager
def only_one(name, timeout=60):
    """Yields True when this process holds the lock, False when another does."""
    lock = _redis().lock(f"tulpar:lock:{settings.CELERY_TASK_DEFAULT_QUEUE}:{name}", timeout=timeout, blocking=False)
    acquired = lock.acquire()
    try:
        yield acquired
    finally:
        if acquired:
            with contextlib.suppress(redis.exceptions.LockError):
                lock.release()
