"""The cache backend (common/cache.py) on the real Redis: one client per pool for every call, and a counter hit that is
atomic and expires."""

import uuid
from concurrent.futures import ThreadPoolExecutor

from django.core.cache import cache


def _key():
    return f"test-counter:{uuid.uuid4().hex}"


def test_every_call_reuses_one_client_per_pool():
    """Django's client built a new redis.Redis per call (more CPU than the command): ours keeps one."""
    first = cache._cache.get_client("a", write=True)
    assert cache._cache.get_client("b", write=True) is first
    assert cache._cache.get_client("c") is first  # one server: reads and writes share its pool


def test_a_counter_counts_from_one_and_expires_with_its_window():
    key = _key()
    assert [cache.counter_hit(key, timeout=30) for _ in range(3)] == [1, 2, 3]
    assert cache.get(key) == 3  # the same key as the rest of the cache reads (prefix and version)
    ttl = cache._cache.get_client(write=True).ttl(cache.make_and_validate_key(key))
    assert 0 < ttl <= 30  # the first hit set the expiry; later hits did not extend it past the window


def test_concurrent_hits_lose_no_count():
    key = _key()
    with ThreadPoolExecutor(max_workers=16) as pool:
        counts = list(pool.map(lambda _: cache.counter_hit(key, timeout=30), range(800)))
    assert sorted(counts) == list(range(1, 801))  # every hit saw its own count: none lost, none doubled
    assert cache.get(key) == 800
