"""A chain whose every RPC URL hangs (onchain/rpc.py): one call per probe window waits out the timeout, every other
call fails at once without opening a connection, so a hanging node cannot hold every worker slot and web worker that
touches its chain; the first answer after it comes back restores normal calls."""

import contextlib
from urllib.parse import urlsplit

import pytest
import requests
from django.conf import settings

from onchain import rpc as onchain_rpc
from onchain.rpc import AllRpcUrlsDown, FailoverProvider
from tests.onchain.faults import silent_server
from tests.onchain.rpc_switch import RpcSwitch


def block_number(provider):
    return provider.make_request("eth_blockNumber", [])


def test_every_url_hanging_costs_one_timeout_per_probe_window(monkeypatch):
    """Two hanging URLs, 1 s timeout: the first call tries each once and fails; the next calls, inside the probe
    window, fail with AllRpcUrlsDown (a ConnectionError, as callers expect of an unreachable node) and open no
    connection; once the window has passed one call probes both again, and the window doubles."""
    monkeypatch.setattr(onchain_rpc, "PROBE_SECONDS", 600)  # the window cannot lapse while the test runs
    monkeypatch.setattr(onchain_rpc, "SKIP_SECONDS", 3600)
    with silent_server() as (a, connections_a), silent_server() as (b, connections_b):
        provider = FailoverProvider([a, b], 1)
        with pytest.raises(requests.Timeout):
            block_number(provider)
        assert (connections_a(), connections_b()) == (1, 1)
        for _ in range(5):
            with pytest.raises(AllRpcUrlsDown) as refused:
                block_number(provider)
            assert isinstance(refused.value, requests.ConnectionError)
        assert (connections_a(), connections_b()) == (1, 1), "a call inside the probe window reached a hanging URL"
        provider._probe_at = 0.0  # the window has passed
        with pytest.raises(requests.Timeout):
            block_number(provider)
        assert (connections_a(), connections_b()) == (2, 2)
        assert provider._probe_wait == 2400  # 600, then doubled after each failed probe: 1200, 2400
        with pytest.raises(AllRpcUrlsDown):
            block_number(provider)
        assert (connections_a(), connections_b()) == (2, 2)


def test_a_url_that_still_answers_is_used_while_another_hangs(monkeypatch):
    """The breaker is for a chain with no URL left: a hanging first URL and a live node behind the second answer
    every call (the hanging one skipped after its first timeout, as before)."""
    monkeypatch.setattr(onchain_rpc, "PROBE_SECONDS", 3600)
    with silent_server() as (hanging, connections):
        provider = FailoverProvider([hanging, settings.CHAIN_RPC_URL], 1)
        for _ in range(4):
            assert int(block_number(provider)["result"], 16) >= 0
        assert connections() == 1


@pytest.mark.usefixtures("chain")
def test_a_node_back_from_hanging_answers_at_the_next_probe_and_calls_flow_again(monkeypatch):
    """A node behind a relay that hangs, then relays again: while it hangs, one timeout and then immediate refusals;
    back, the next probe answers and every call after it goes to the node (no window left)."""
    monkeypatch.setattr(onchain_rpc, "PROBE_SECONDS", 3600)
    switch = RpcSwitch(urlsplit(settings.CHAIN_RPC_URL).port)
    try:
        provider = FailoverProvider([switch.url], 1)
        assert "result" in block_number(provider)
        switch.hang()
        with pytest.raises((requests.Timeout, requests.ConnectionError)) as first:
            block_number(provider)
        assert not isinstance(first.value, AllRpcUrlsDown)  # that one went to the node
        with pytest.raises(AllRpcUrlsDown):
            block_number(provider)
        switch.restore()
        with pytest.raises(AllRpcUrlsDown):  # back, but nobody has asked yet: the window still holds
            block_number(provider)
        provider._probe_at = 0.0  # the window has passed
        assert "result" in block_number(provider)
        for _ in range(3):
            assert "result" in block_number(provider)
        assert provider._probe_wait == onchain_rpc.PROBE_SECONDS and provider._down_until == [0.0]
    finally:
        with contextlib.suppress(OSError):
            switch.close()
