"""Contracts over a chain's web3 connection (onchain.rpc: one per chain, failover across its URLs, timeouts).

`chain` everywhere here is a Chain row, its EVM chain id, or None for the default connection (CHAIN_RPC_URL(S)):
every engine call names the chain of the wallet or token it works for, so chains never share a node."""

import functools

from onchain.contracts.compile import load_artifact
from onchain.rpc import web3 as _web3_for


@functools.cache
def abi(name):
    return load_artifact(name)["abi"]


def chain_key(chain):
    """The EVM chain id of `chain` (a Chain, an int, or None for the default connection)."""
    if chain is None or isinstance(chain, int):
        return chain
    return chain.chain_id


def web3(chain=None):
    return _web3_for(chain_key(chain))


def erc20(address, chain=None):
    return web3(chain).eth.contract(address=address, abi=abi("KGST"))


def batch_payout(address, chain=None):
    return web3(chain).eth.contract(address=address, abi=abi("BatchPayout"))


__all__ = ["abi", "batch_payout", "chain_key", "erc20", "web3"]
