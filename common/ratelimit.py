"""Fixed-window rate limits shared by every process: a counter per (scope, who, window) in the cache (Redis),
incremented atomically, so concurrent requests in many web processes cannot overrun a limit."""

import hashlib
import time

from django.conf import settings
from django.core.cache import cache


def _key(scope, ident, window):
    digest = hashlib.sha256(str(ident).encode()).hexdigest()[:32]  # no raw keys or addresses in cache keys
    return f"rl:{settings.RATE_LIMIT_NAMESPACE}:{scope}:{window}:{digest}"


def _window(scope):
    limit, seconds = settings.RATE_LIMITS[scope]
    now = time.time()
    window = int(now // seconds)
    return limit, seconds, window, max(int((window + 1) * seconds - now), 1)


def rate_limit_hit(*, scope, ident, limit=None):
    """Count one hit of `ident` in `scope` (settings.RATE_LIMITS: scope → (limit, seconds); `limit` overrides the
    count for this ident, e.g. a partner key's own). Returns None while within the limit, else the seconds until the
    window ends (for Retry-After)."""
    default, seconds, window, retry_after = _window(scope)
    limit = default if limit is None else limit
    count = cache.counter_hit(_key(scope, ident, window), timeout=seconds + 1)  # common/cache.py
    return retry_after if count > limit else None


def rate_limit_exceeded(*, scope, ident):
    """Without counting: is `ident` over its limit in this window? Returns the seconds to wait, or None."""
    limit, _seconds, window, retry_after = _window(scope)
    return retry_after if (cache.get(_key(scope, ident, window)) or 0) >= limit else None


def client_ip(request):
    """The client's address: REMOTE_ADDR, or behind our own proxy (SECURE_PROXY_SSL_HEADER set) the last
    X-Forwarded-For hop, which that proxy appends (earlier hops are whatever the client sent)."""
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if settings.SECURE_PROXY_SSL_HEADER and forwarded:
        return forwarded.split(",")[-1].strip()
    return request.META.get("REMOTE_ADDR", "")
