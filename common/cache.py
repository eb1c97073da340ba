"""The cache backend (settings.CACHES): Django's Redis cache, keeping one redis client per connection pool.

Django's client builds a new `redis.Redis` for every call, and building one (its table of response callbacks) cost
more CPU than the command it sent: an API request makes three cache calls (common/ratelimit.py,
payments/services/api_keys.py). A client over a pool is thread-safe, and after a fork the pool reconnects by itself.
"""

from django.core.cache.backends.redis import RedisCache, RedisCacheClient


class _KeptClient(RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients = {}

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None:
            client = self._clients[id(pool)] = self._client(connection_pool=pool)
        return client


class KeptClientRedisCache(RedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = _KeptClient

    def counter_hit(self, key, timeout):
        """Count one hit of the counter `key` that lives `timeout` seconds from its first hit; returns the count. One
        round trip, atomic (MULTI: the counter cannot expire between its creation and its increment)."""
        key = self.make_and_validate_key(key)
        pipe = self._cache.get_client(key, write=True).pipeline(transaction=True)
        pipe.set(key, 0, ex=timeout, nx=True)
        pipe.incr(key)
        return pipe.execute()[1]
