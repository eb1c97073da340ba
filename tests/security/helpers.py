"""Chain pieces for the security tests: a stablecoin with an issuer blacklist in place of the dev KGST, and
addresses of every kind a payout must never go to (or may), made real on the session's anvil."""

from eth_account import Account
from eth_utils import to_checksum_address

from onchain.contracts.compile import load_artifact
from onchain.models import HotWallet, Token
from onchain.services.token_gas import token_gas_measure
from tests.conftest import new_recipient, second_wallet

ZERO = "0x0000000000000000000000000000000000000000"
FLOAT = 10**9 * 10**18


def _mined(w3, tx_hash):
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30, poll_latency=0.1)
    assert receipt["status"] == 1, receipt
    return receipt


def deploy(w3, name, *args):
    artifact = load_artifact(name)
    factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    receipt = _mined(w3, factory.constructor(*args).transact({"from": w3.eth.accounts[0]}))
    return w3.eth.contract(address=receipt["contractAddress"], abi=artifact["abi"])


def use_blacklist_token(chain):
    """Settle in a KGST whose issuer can blacklist accounts (KGSTWithBlacklist, like USDC/USDT/A7A5): deploy it and
    a BatchPayout for it, make the hot wallets operators, fund the float (and the wallets, for batching off), point
    the KGST Token row at them and measure its gas per payout. Returns (token contract, batch contract). The
    session's dev KGST is untouched; the next test's bootstrap registers it again (the test's database changes are
    rolled back)."""
    w3, owner = chain["w3"], chain["w3"].eth.accounts[0]
    token = deploy(w3, "KGSTWithBlacklist", "Kyrgyz Som Token (blacklist)", "KGST", 18)
    batch = deploy(w3, "BatchPayout", token.address, owner)
    for wallet in HotWallet.objects.filter(chain=chain["chain"], is_active=True):
        _mined(w3, batch.functions.setOperator(wallet.address, True).transact({"from": owner}))
        _mined(w3, token.functions.mint(wallet.address, FLOAT).transact({"from": owner}))  # batching off pays from here
    _mined(w3, token.functions.mint(batch.address, FLOAT).transact({"from": owner}))
    Token.objects.filter(pk=chain["token"].pk).update(address=token.address, batch_contract=batch.address)
    token_gas_measure(token_id=chain["token"].pk)  # as registering a token does: the blacklist check costs more
    chain["token"].refresh_from_db()
    return token, batch


def blacklist(w3, token, address, listed=True):
    _mined(w3, token.functions.setBlacklisted(address, listed).transact({"from": w3.eth.accounts[0]}))


def low(value):
    """The address whose 160-bit value is `value` (precompiles and system contracts live at small ones)."""
    return to_checksum_address(f"0x{value:040x}")


def with_code(w3, code):
    """A fresh address holding `code` (anvil_setCode), as if something had been deployed or delegated there."""
    address = new_recipient()
    response = w3.provider.make_request("anvil_setCode", [address, code])
    assert "error" not in response, response
    assert w3.eth.get_code(address).hex() == code.removeprefix("0x")
    return address


def address_of(kind, chain):
    """A real address of `kind` on the session's anvil (see tests/security/test_recipients.py for the list)."""
    w3, token = chain["w3"], chain["token"]
    if kind == "zero":
        return ZERO
    if kind.startswith("system-"):
        return low(int(kind.removeprefix("system-"), 16))
    if kind == "above-system-range":
        return low(0x10000)
    if kind == "token":
        return token.address
    if kind == "batch-contract":
        return token.batch_contract
    if kind == "hot-wallet":
        return chain["wallet"].address
    if kind == "second-hot-wallet":
        return second_wallet(chain).address
    if kind == "retired-hot-wallet":
        address = Account.create().address
        HotWallet.objects.create(chain=chain["chain"], address=address, key_env="RETIRED_KEY", is_active=False)
        return address
    if kind == "deployed-contract":
        return deploy(w3, "KGST", "Somebody's token", "SMB", 6).address
    if kind == "eof-style-code":
        return with_code(w3, "0xef000101000402000100030400000000800001600080fd")
    if kind == "eip7702-delegated-eoa":
        return with_code(w3, "0xef0100" + new_recipient()[2:].lower())
    if kind == "eoa":
        return new_recipient()
    raise AssertionError(kind)
