"""RPC access, one connection per chain: several URLs per chain, tried in order with a timeout each; a URL that
fails is skipped for a while. JSON-RPC errors (a node's answer) are not failures of the URL and are not retried
elsewhere.

Which URLs serve which chain is configuration, not data (a provider's URL often carries its API key): CHAIN_RPCS maps
chain ids to URLs (`56=https://a,https://b;1=https://c`); a chain it does not name uses CHAIN_RPC_URLS (or
CHAIN_RPC_URL), the default that a one-chain installation has always set."""

import functools
import logging
import threading
import time

import requests
from django.conf import settings
from web3 import Web3
from web3.exceptions import Web3RPCError
from web3.providers import HTTPProvider, JSONBaseProvider

log = logging.getLogger(__name__)
SKIP_SECONDS = 30
# Every URL of a chain down: one call per window probes them (and may wait out the timeout), the others fail at once
# instead of each waiting the timeout: a hanging node would otherwise hold every worker slot and web worker that
# touches its chain. The window doubles while the probes keep failing, up to SKIP_SECONDS.
PROBE_SECONDS = 2
PROBING = float("inf")  # the probe window while a call is trying the URLs: no other call may


class AllRpcUrlsDown(requests.ConnectionError):
    """Every URL of the chain failed lately and this is not the call that probes them: nothing was sent. A
    ConnectionError, so every caller treats it as the node being unreachable (retry later, 503, next pass)."""


class FailoverProvider(JSONBaseProvider):
    def __init__(self, urls, timeout):
        super().__init__()
        self.urls = list(urls)
        # No retries inside a provider: a hanging URL must cost one timeout before the next URL is tried.
        # web3 asks eth_chainId before and after every eth_call (its validation); a URL's chain id never changes, so
        # each provider keeps the answer: a recipient check is two round trips to the node instead of four.
        self._providers = [HTTPProvider(u, request_kwargs={"timeout": timeout}, exception_retry_configuration=None,
                                        cache_allowed_requests=True, cacheable_requests={"eth_chainId"})
                           for u in self.urls]
        self._down_until = [0.0] * len(self.urls)
        self._probe_at, self._probe_wait = 0.0, PROBE_SECONDS
        self._lock = threading.Lock()

    def _order(self):
        """The URLs to try, healthy first; none when every URL is down and this call is not the window's probe."""
        now = time.monotonic()
        with self._lock:
            healthy = [i for i, t in enumerate(self._down_until) if t <= now]
            if not healthy:
                if now < self._probe_at:
                    raise AllRpcUrlsDown("every RPC URL of this chain failed lately; " + (
                        "another call is trying them now" if self._probe_at == PROBING else
                        f"the next try is in {self._probe_at - now:.1f}s"))
                self._probe_at = PROBING  # this call probes; its outcome sets the next window
            return healthy + [i for i in range(len(self.urls)) if i not in healthy]

    def _answered(self, i):
        with self._lock:
            self._down_until[i] = 0.0
            self._probe_at, self._probe_wait = 0.0, PROBE_SECONDS

    def _failed(self, i):
        with self._lock:
            self._down_until[i] = time.monotonic() + SKIP_SECONDS

    def _every_url_failed(self):
        with self._lock:
            now = time.monotonic()
            if all(t > now for t in self._down_until):
                # Counted from the failure, not the start: a probe that waited out the timeout is not followed at
                # once by the next.
                self._probe_at = now + self._probe_wait
                self._probe_wait = min(self._probe_wait * 2, SKIP_SECONDS)

    def make_request(self, method, params):
        return self._failover(method, lambda provider: provider.make_request(method, params))

    def make_batch_request(self, batch):
        """[(method, params), ...] in one HTTP round trip (a JSON-RPC batch), with the same failover; returns the raw
        responses in request order (each with its own `result` or `error`: the caller reads them)."""
        responses = self._failover("batch", lambda provider: provider.make_batch_request(batch))
        if not isinstance(responses, list):  # the node refused the batch as a whole: one error object
            raise Web3RPCError(f"batch refused: {responses.get('error')!r}"[:200])
        return responses

    def _failover(self, method, call):
        last = None
        for i in self._order():
            try:
                answer = call(self._providers[i])
            except (requests.ConnectionError, requests.Timeout, requests.HTTPError) as exc:
                last = exc
                self._failed(i)
                log.warning("rpc_failover url_index=%s method=%s error=%s", i, method, type(exc).__name__)
                continue
            except BaseException:
                with self._lock:  # neither answered nor failed (garbage, a time limit): the next call probes again
                    if self._probe_at == PROBING:
                        self._probe_at = 0.0
                raise
            if self._down_until[i] or self._probe_at:
                self._answered(i)
            return answer
        self._every_url_failed()
        raise last

    def is_connected(self, show_traceback=False):
        return any(p.is_connected(show_traceback) for p in self._providers)


def rpc_urls(chain_id=None):
    """The URLs for `chain_id` (an EVM chain id), or the default ones (a chain CHAIN_RPCS does not name)."""
    if chain_id is not None and settings.CHAIN_RPCS.get(int(chain_id)):
        return list(settings.CHAIN_RPCS[int(chain_id)])
    return settings.CHAIN_RPC_URLS or [settings.CHAIN_RPC_URL]


def all_rpc_urls():
    """Every configured URL once, the default ones first (readiness asks each which chain it serves)."""
    urls = rpc_urls()
    for chain_urls in settings.CHAIN_RPCS.values():
        urls += [u for u in chain_urls if u not in urls]
    return urls


def web3(chain_id=None):
    """The connection to chain `chain_id` (None: the default URLs), one per chain and process; a chain CHAIN_RPCS does
    not name shares the default connection (one set of skipped URLs). Tests that change URLs call
    web3.cache_clear()."""
    named = chain_id is not None and bool(settings.CHAIN_RPCS.get(int(chain_id)))
    return _connection(int(chain_id) if named else None)


@functools.cache
def _connection(chain_id):
    return Web3(FailoverProvider(rpc_urls(chain_id), settings.CHAIN_RPC_TIMEOUT_SECONDS))


web3.cache_clear = _connection.cache_clear
