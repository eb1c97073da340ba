"""Fixtures for the contract tests: a private automining anvil per module (no Django, no session chain)."""

import pytest
from web3 import Web3

from gateway.dev import services


@pytest.fixture(scope="module")
def w3():
    """A fresh anvil chain (automine) owned by the module, torn down afterwards."""
    if not services.ANVIL.is_file():
        pytest.skip(f"anvil not installed at {services.ANVIL}")
    proc, url = services.start_anvil(services.free_port(), block_time=0)
    try:
        yield Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 30}))
    finally:
        services.stop(proc)
