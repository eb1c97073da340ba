"""Local-chain bootstrap (anvil): deploy the dev KGST token, register it with a hot wallet, fund both.
Used by `make run` (manage.py devsetup) and by the tests; never by production, where the token is
the real KGST and the wallet is funded by treasury."""

import logging

from django.conf import settings
from django.db import transaction

from onchain import client
from onchain.contracts.compile import load_artifact
from onchain.models import Chain, HotWallet, Token

log = logging.getLogger(__name__)

DEV_DECIMALS = 18
GAS_FLOAT_WEI = 100 * 10**18


def devchain_bootstrap(*, hot_wallet_address, key_env="HOT_WALLET_PRIVATE_KEY", float_tokens=1_000_000_000,
                       confirmations=None):
    """Idempotent: reuses the registered token while its code is on the chain, redeploys after a chain reset."""
    w3 = client.web3()
    chain_id = w3.eth.chain_id
    with transaction.atomic():
        chain, _ = Chain.objects.update_or_create(
            chain_id=chain_id,
            defaults={"name": "anvil (local)",
                      "confirmations": settings.CHAIN_CONFIRMATIONS if confirmations is None else confirmations})
    token = Token.objects.filter(chain=chain, symbol="KGST").first()
    if token is None or w3.eth.get_code(token.address) in (b"", b"\x00"):
        token_address = _deploy(w3)
        Token.objects.update_or_create(chain=chain, symbol="KGST",
                                       defaults={"address": token_address, "decimals": DEV_DECIMALS})
        token = Token.objects.get(chain=chain, symbol="KGST")
        # A fresh chain: any nonce we had recorded is stale.
        HotWallet.objects.filter(chain=chain).update(next_nonce=None)
    wallet, _ = HotWallet.objects.update_or_create(chain=chain, address=hot_wallet_address,
                                                   defaults={"key_env": key_env, "is_active": True})
    HotWallet.objects.filter(chain=chain).exclude(pk=wallet.pk).update(is_active=False)
    _fund(w3, token, wallet.address, float_tokens * 10**token.decimals)
    return chain, token, wallet


def _deploy(w3):
    artifact = load_artifact("KGST")
    contract = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    tx_hash = contract.constructor("Kyrgyz Som Token (dev)", "KGST", DEV_DECIMALS).transact({"from": w3.eth.accounts[0]})
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30, poll_latency=0.2)
    log.info("kgst_deployed address=%s", receipt["contractAddress"])
    return receipt["contractAddress"]


def _fund(w3, token, address, target_base_units):
    if w3.eth.get_balance(address) < GAS_FLOAT_WEI // 2:
        w3.provider.make_request("anvil_setBalance", [address, hex(GAS_FLOAT_WEI)])
    kgst = client.erc20(token.address)
    held = kgst.functions.balanceOf(address).call()
    if held < target_base_units // 2:
        tx_hash = kgst.functions.mint(address, target_base_units - held).transact({"from": w3.eth.accounts[0]})
        w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30, poll_latency=0.2)
        log.info("hot_wallet_funded address=%s base_units=%s", address, target_base_units - held)
