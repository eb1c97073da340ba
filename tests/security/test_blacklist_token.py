"""KGSTWithBlacklist, the stand-in for a stablecoin whose issuer can freeze accounts (USDC, USDT, A7A5): its committed
artifact matches the source, a listed account can neither receive nor send, only the owner lists, and the plain dev
KGST has no blacklist (so its gas figures stay those of a plain ERC-20)."""

import shutil

import pytest
from web3.exceptions import ContractCustomError

from onchain import client
from onchain.contracts.compile import compile_sources, load_artifact
from tests.conftest import new_recipient
from tests.security.helpers import _mined, blacklist, deploy


def test_committed_artifacts_match_a_fresh_compile():
    """build/KGSTWithBlacklist.json and build/KGST.json are what KGST.sol compiles to now, and the dev KGST has no
    blacklist (making its `_transfer` internal virtual left its bytecode as it was: only sourceSha256 moved)."""
    if shutil.which("node") is None:
        pytest.skip("node not installed")
    fresh = compile_sources()
    for name in ("KGSTWithBlacklist", "KGST"):
        committed = load_artifact(name)
        for key in ("bytecode", "deployedBytecode", "abi", "sourceSha256", "compiler", "settings"):
            assert committed[key] == fresh[name][key], f"build/{name}.json {key} is stale; recompile"
    assert "isBlacklisted" not in {f.get("name") for f in load_artifact("KGST")["abi"]}


def test_a_listed_account_can_neither_receive_nor_send_and_only_the_owner_lists():
    w3 = client.web3()
    owner, outsider = w3.eth.accounts[0], w3.eth.accounts[3]
    token = deploy(w3, "KGSTWithBlacklist", "Blacklist KGST", "KGST", 18)
    _mined(w3, token.functions.mint(owner, 100).transact({"from": owner}))
    listed = w3.eth.accounts[4]
    _mined(w3, token.functions.mint(listed, 10).transact({"from": owner}))
    blacklist(w3, token, listed)
    with pytest.raises(ContractCustomError):
        token.functions.transfer(listed, 1).call({"from": owner})
    with pytest.raises(ContractCustomError):
        token.functions.transfer(new_recipient(), 1).call({"from": listed})
    with pytest.raises(ContractCustomError):
        token.functions.setBlacklisted(new_recipient(), True).call({"from": outsider})
    assert token.functions.transfer(new_recipient(), 1).call({"from": owner}) is True
    blacklist(w3, token, listed, listed=False)
    assert token.functions.transfer(listed, 1).call({"from": owner}) is True
