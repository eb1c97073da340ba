"""Local-chain bootstrap (anvil): deploy a dev token (KGST, or USDKG on a second chain) and our BatchPayout contract,
register them with hot wallets, fund the float and the gas. Used by `make run` (manage.py devsetup), the tests and the
benchmarks; never by production, where the token is the real KGST and treasury funds the float."""

import logging

from django.conf import settings
from django.db import transaction

from onchain import client
from onchain.contracts.compile import load_artifact
from onchain.models import Chain, HotWallet, ReconciliationCursor, Token
from onchain.services.token_gas import token_gas_measure
from onchain.services.treasury import treasury_check

log = logging.getLogger(__name__)

DEV_DECIMALS = 18
# The dev tokens: (name, decimals). USDKG is a USD stablecoin with 6 decimals, like USDT and USDC on Ethereum.
DEV_TOKENS = {"KGST": ("Kyrgyz Som Token (dev)", DEV_DECIMALS), "USDKG": ("USDKG gold-backed dollar (dev)", 6)}
GAS_FLOAT_WEI = 100 * 10**18
_DEPLOYED = {}


def devchain_bootstrap(*, hot_wallet_address=None, wallets=None, float_tokens=1_000_000_000, confirmations=None,
                       use_finalized_tag=True, chain_id=None, symbol="KGST", chain_name="anvil (local)"):
    """Idempotent: reuses the registered contracts while their code is on the chain, redeploys after a chain
    reset. `wallets` is [(address, key_env)]; the first form (`hot_wallet_address`) registers one wallet.
    `chain_id` picks the connection (onchain.rpc: CHAIN_RPCS; None is the default CHAIN_RPC_URL), `symbol` the dev
    token deployed there (DEV_TOKENS)."""
    w3 = client.web3(chain_id)
    wallets = wallets or [(hot_wallet_address, "HOT_WALLET_PRIVATE_KEY")]
    token_name, decimals = DEV_TOKENS[symbol]
    with transaction.atomic():
        chain, _ = Chain.objects.update_or_create(chain_id=w3.eth.chain_id, defaults={
            "name": chain_name, "use_finalized_tag": use_finalized_tag,
            # make run mines a block a second; an explorer only when one runs beside anvil (otterscan, blockscout).
            "block_time_ms": 1000, "explorer_tx_url": settings.DEV_CHAIN_EXPLORER_TX_URL,
            "confirmations": settings.CHAIN_CONFIRMATIONS if confirmations is None else confirmations})
    token = Token.objects.filter(chain=chain, symbol=symbol).first()
    if token is None or not _has_code(w3, token.address) or not _is_current_batch(w3, token.batch_contract):
        # This process deployed them already on this chain (tests flush the tables between cases): reuse.
        token_address, batch_address = _DEPLOYED.get((chain.chain_id, symbol), (None, None))
        if not (_has_code(w3, token_address) and _is_current_batch(w3, batch_address)):
            # The same KGST.sol contract: name, symbol and decimals are its constructor's parameters.
            token_address = _deploy(w3, "KGST", token_name, symbol, decimals)
            batch_address = _deploy(w3, "BatchPayout", token_address, w3.eth.accounts[0])
            _DEPLOYED[(chain.chain_id, symbol)] = (token_address, batch_address)
        Token.objects.update_or_create(chain=chain, symbol=symbol, defaults={
            "address": token_address, "decimals": decimals, "batch_contract": batch_address,
            "gas_per_payout": None, "balance_slot": None})  # contracts on a new chain: measured again below
        token = Token.objects.get(chain=chain, symbol=symbol)
        # A fresh chain: any nonce we had recorded is stale.
        HotWallet.objects.filter(chain=chain).update(next_nonce=None)
    # The chain's history before this database registered the token is not ours to reconcile (a dev chain kept
    # across a database reset, or tests that share one anvil and flush the tables between cases): start at the head.
    ReconciliationCursor.objects.get_or_create(token=token, defaults={"last_block": w3.eth.block_number})
    registered = []
    for address, key_env in wallets:
        wallet, _ = HotWallet.objects.update_or_create(chain=chain, address=address,
                                                       defaults={"key_env": key_env, "is_active": True})
        registered.append(wallet)
        _fund_gas(w3, wallet.address)
        _ensure_operator(w3, token, wallet.address)
        _fund_tokens(w3, token, wallet.address, float_tokens * 10**token.decimals)  # the single-transfer path's float
    HotWallet.objects.filter(chain=chain).exclude(pk__in=[w.pk for w in registered]).update(is_active=False)
    _fund_tokens(w3, token, token.batch_contract, float_tokens * 10**token.decimals)
    if token.gas_per_payout is None:  # registered just now: measure it, as `manage.py token_gas` does for real tokens
        token_gas_measure(token_id=token.pk)
        token.refresh_from_db(fields=["gas_per_payout", "balance_slot"])
    treasury_check(token_id=token.pk)
    return chain, token, registered[0]


def _has_code(w3, address):
    return bool(address) and w3.eth.get_code(address) not in (b"", b"\x00")


def _is_current_batch(w3, address):
    """A BatchPayout of today's code: a dev chain kept across an ABI change (its state file) holds the old one,
    which today's call data would only revert against. Compared by length: the deployed code differs from the
    artifact's only in the immutables (token, owner), which keep their size."""
    if not _has_code(w3, address):
        return False
    deployed = load_artifact("BatchPayout")["deployedBytecode"].removeprefix("0x")
    return len(w3.eth.get_code(address)) == len(deployed) // 2


def _wait(w3, tx_hash):
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30, poll_latency=0.1)
    if receipt["status"] != 1:
        raise RuntimeError(f"dev chain transaction {tx_hash.hex()} reverted")
    return receipt


def _deploy(w3, name, *args):
    artifact = load_artifact(name)
    contract = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    receipt = _wait(w3, contract.constructor(*args).transact({"from": w3.eth.accounts[0]}))
    log.info("contract_deployed name=%s address=%s", name, receipt["contractAddress"])
    return receipt["contractAddress"]


def _fund_gas(w3, address):
    if w3.eth.get_balance(address) < GAS_FLOAT_WEI // 2:
        w3.provider.make_request("anvil_setBalance", [address, hex(GAS_FLOAT_WEI)])


def _ensure_operator(w3, token, address):
    batch = client.batch_payout(token.batch_contract, token.chain)
    if not batch.functions.isOperator(address).call():
        _wait(w3, batch.functions.setOperator(address, True).transact({"from": w3.eth.accounts[0]}))


def _fund_tokens(w3, token, address, target_base_units):
    kgst = client.erc20(token.address, token.chain)
    held = kgst.functions.balanceOf(address).call()
    if held < target_base_units // 2:
        _wait(w3, kgst.functions.mint(address, target_base_units - held).transact({"from": w3.eth.accounts[0]}))
        log.info("funded address=%s base_units=%s", address, target_base_units - held)
