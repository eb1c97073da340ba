"""Contracts over the process's web3 connection (onchain.rpc: failover across RPC URLs, timeouts)."""

import functools

from onchain.contracts.compile import load_artifact
from onchain.rpc import web3


@functools.cache
def abi(name):
    return load_artifact(name)["abi"]


def erc20(address):
    return web3().eth.contract(address=address, abi=abi("KGST"))


def batch_payout(address):
    return web3().eth.contract(address=address, abi=abi("BatchPayout"))


__all__ = ["abi", "batch_payout", "erc20", "web3"]
