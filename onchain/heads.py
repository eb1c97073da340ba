"""A new head → a tracking pass at once, instead of at beat's next tick; beside it, a builder thread.

One runner per chain (Redis single-runner lock `heads:<chain id>`), started by `manage.py chain_heads` beside the
workers and beat. It subscribes to `newHeads` over the node's websocket (CHAIN_WS_URL; by default the RPC URL with
ws://, where anvil and geth serve both). When the subscription is refused, cannot connect, or goes silent for
`_silence(chain)` seconds, it polls eth_blockNumber every POLL_SECONDS instead and tries the subscription again
after WS_RETRY_SECONDS. Its builder thread builds queued payouts after each head and every BUILD_EVERY_SECONDS.
Beat's `settlement_track` stands aside while the runner's passes are fresh and takes over when they are not: if this
process dies, tracking falls back to beat's pace (SETTLEMENT_TRACK_MS) and nothing else changes. Correctness never
depends on it (locks, row locks and guarded transitions do that); it only removes the wait between a block and our
look at it.
"""

import json
import logging
import threading
import time

from django.conf import settings
from django.db import close_old_connections, connections
from websockets.exceptions import WebSocketException
from websockets.sync.client import connect

from onchain import rpc
from onchain.locks import only_one
from onchain.models import Chain
from onchain.services.passes import build_queued, heads_alive, track_once

log = logging.getLogger(__name__)
POLL_SECONDS = 0.2  # the fallback's eth_blockNumber interval
WS_RETRY_SECONDS = 10  # how long the fallback polls before trying the subscription again
LOCK_WAIT = 2  # a head's pass waits this long for a beat pass holding the tracker's lock
BUILD_EVERY_SECONDS = 0.25  # the builder thread's pass when no head pokes it


class SubscriptionUnavailable(Exception):
    pass


def ws_url(chain):
    """Where to subscribe for `chain`'s heads; None: poll only (CHAIN_WS_URL=off, or an RPC URL with no ws twin).
    CHAIN_WS_URL names the default chain's socket; a chain CHAIN_RPCS names subscribes at its own first URL."""
    configured = settings.CHAIN_WS_URL
    if configured == "off":
        return None
    if configured and not settings.CHAIN_RPCS.get(chain.chain_id):
        return configured
    url = rpc.rpc_urls(chain.chain_id)[0]
    for http, ws in (("https://", "wss://"), ("http://", "ws://")):
        if url.startswith(http):
            return ws + url[len(http):]
    return None


def _silence(chain):
    """No head for this long means the subscription is dead (a node may drop it without closing the socket)."""
    return max(10.0, 5 * (chain.block_time_ms or 1000) / 1000)


def head_seen(chain_id):
    """One head: a tracking pass now. Never raises."""
    close_old_connections()  # a long-running loop: the database may have closed our connection meanwhile
    try:
        if track_once(chain_id, wait=LOCK_WAIT):
            heads_alive(Chain.objects.get(pk=chain_id))
    except Exception:  # noqa: BLE001 - a failing pass (node down) is beat's to retry; the runner goes on
        log.warning("heads_pass_failed chain=%s", chain_id, exc_info=True)


class Builder(threading.Thread):
    """Builds the chain's queued payouts beside the tracking passes (both wait mostly on the node and the database):
    after each head (`poke`: a mined batch frees its wallet) and every BUILD_EVERY_SECONDS (a payout just queued, or
    one waiting for company that is due now). Not through Celery: a backlog of transfers' tasks in the settlement
    queue does not delay it. The trigger's task and beat build too; one builder per token at a time (onchain.locks)."""

    def __init__(self, chain_id, stop):
        super().__init__(daemon=True, name=f"heads-build-{chain_id}")
        self.chain_id, self.stop, self.poked = chain_id, stop, threading.Event()

    def poke(self):
        self.poked.set()

    def run(self):
        try:
            while not self.stop.is_set():
                self.poked.wait(BUILD_EVERY_SECONDS)
                self.poked.clear()
                close_old_connections()
                try:
                    build_queued(self.chain_id, here=True)
                except Exception:  # noqa: BLE001 - beat's and the trigger's builds remain; this thread goes on
                    log.warning("heads_build_failed chain=%s", self.chain_id, exc_info=True)
        finally:
            connections.close_all()


def follow_ws(chain, url, stop, on_head=head_seen):
    """Until `stop`: a pass per new head. Raises when the subscription cannot be had or is lost."""
    silence = _silence(chain)
    with connect(url, open_timeout=5, close_timeout=1, max_size=2**22) as ws:
        ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe", "params": ["newHeads"]}))
        reply = json.loads(ws.recv(timeout=5))
        if "result" not in reply:
            raise SubscriptionUnavailable(str(reply.get("error"))[:200])
        log.info("heads_subscribed chain=%s url=%s", chain.pk, url)
        on_head(chain.pk)  # what happened before the subscription
        last = time.monotonic()
        while not stop.is_set():
            try:
                ws.recv(timeout=1)
            except TimeoutError:
                if time.monotonic() - last > silence:
                    raise SubscriptionUnavailable(f"no head for {silence:.0f}s") from None
                continue
            while True:  # heads that arrived during the last pass: one pass covers them all
                try:
                    ws.recv(timeout=0)
                except TimeoutError:
                    break
            last = time.monotonic()
            on_head(chain.pk)


def follow_polling(chain, until, stop, on_head=head_seen):
    """Until `stop` or `until` (monotonic): a pass whenever eth_blockNumber moves."""
    w3, last = rpc.web3(chain.chain_id), None
    while not stop.is_set() and time.monotonic() < until:
        try:
            number = w3.eth.block_number
        except Exception:  # noqa: BLE001 - the node is down: keep asking, beat's passes say the rest
            log.warning("heads_poll_failed chain=%s", chain.pk, exc_info=True)
            number = last
        if number != last:
            last = number
            on_head(chain.pk)
        stop.wait(POLL_SECONDS)


def heads_follow(chain_id, stop):
    """The runner for one chain, until `stop`: the subscription while it works, polling while it does not; a
    tracking pass per head, and a builder thread beside it."""
    chain = Chain.objects.get(pk=chain_id)
    builder = Builder(chain_id, stop)
    builder.start()

    def on_head(chain_id):
        head_seen(chain_id)
        builder.poke()

    try:
        while not stop.is_set():
            url = ws_url(chain)
            if url:
                try:
                    follow_ws(chain, url, stop, on_head)
                except (OSError, TimeoutError, WebSocketException, SubscriptionUnavailable, ValueError) as exc:
                    log.warning("heads_polling chain=%s url=%s reason=%s: %s", chain_id, url, type(exc).__name__,
                                exc)
            follow_polling(chain, time.monotonic() + WS_RETRY_SECONDS, stop, on_head)
    finally:
        builder.poke()
        builder.join(10)


def heads_run(chain_id, stop):
    """heads_follow under the chain's single-runner lock: a second runner waits, and takes over if the first dies."""
    while not stop.is_set():
        with only_one(f"heads:{chain_id}", ttl=10) as mine:
            if mine:
                heads_follow(chain_id, stop)
        stop.wait(5)


def heads_run_all(stop, chain_ids=None):
    """A runner thread per chain (new chains picked up every 10 s), until `stop`."""
    threads = {}
    while not stop.is_set():
        close_old_connections()
        for chain_id in chain_ids or Chain.objects.values_list("id", flat=True):
            if chain_id not in threads or not threads[chain_id].is_alive():
                threads[chain_id] = threading.Thread(target=heads_run, args=(chain_id, stop), daemon=True,
                                                     name=f"heads-{chain_id}")
                threads[chain_id].start()
        stop.wait(10)
    for thread in threads.values():
        thread.join(5)
