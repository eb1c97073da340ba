"""The web3 connection, one per process, with a timeout on every RPC call."""

import functools

from django.conf import settings
from web3 import Web3

from onchain.contracts.compile import load_artifact


@functools.cache
def web3():
    return Web3(Web3.HTTPProvider(settings.CHAIN_RPC_URL,
                                  request_kwargs={"timeout": settings.CHAIN_RPC_TIMEOUT_SECONDS}))


@functools.cache
def erc20_abi():
    return load_artifact("KGST")["abi"]


def erc20(address):
    return web3().eth.contract(address=address, abi=erc20_abi())
