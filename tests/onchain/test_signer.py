"""The signer interface: keys from the environment or an encrypted keystore, never shown, checked against the
wallet they sign for."""

import json

import pytest
from eth_account import Account

from onchain.errors import SignerUnavailable
from onchain.models import Chain, HotWallet
from onchain.signer import signer_for, signer_for_wallet


@pytest.fixture(autouse=True)
def fresh_cache():
    signer_for.cache_clear()
    yield
    signer_for.cache_clear()


def test_keystore_signer_signs_like_the_key(tmp_path, monkeypatch):
    """An encrypted keystore plus its password (two environment variables) yields the same signatures as the
    raw key, and the signer's repr shows only the address."""
    account = Account.create()
    keystore = tmp_path / "wallet.json"
    keystore.write_text(json.dumps(Account.encrypt(account.key, "correct horse", kdf="pbkdf2", iterations=1000)))
    monkeypatch.setenv("KS_WALLET_KEYSTORE", str(keystore))
    monkeypatch.setenv("KS_WALLET_KEYSTORE_PASSWORD", "correct horse")
    signer = signer_for("KS_WALLET")
    tx = {"chainId": 31337, "nonce": 0, "to": account.address, "value": 0, "gas": 21000, "maxFeePerGas": 10**9,
          "maxPriorityFeePerGas": 10**9, "type": 2}
    raw, tx_hash = signer.sign_transaction(tx)
    assert bytes(account.sign_transaction(tx).raw_transaction) == raw
    assert signer.address == account.address
    assert account.key.hex().removeprefix("0x") not in repr(signer)


def test_missing_key_is_a_clear_error(monkeypatch):
    """No variable set: SignerUnavailable names what to set."""
    monkeypatch.delenv("NOPE_KEY", raising=False)
    with pytest.raises(SignerUnavailable, match="NOPE_KEY"):
        signer_for("NOPE_KEY")


@pytest.mark.django_db
def test_key_for_another_address_is_refused(monkeypatch):
    """A wallet row whose variable holds some other key refuses to sign (no payout from the wrong wallet)."""
    monkeypatch.setenv("OTHER_KEY", Account.create().key.hex())
    wallet = HotWallet(chain=Chain(chain_id=1, name="x"), address=Account.create().address, key_env="OTHER_KEY")
    with pytest.raises(SignerUnavailable, match="does not belong"):
        signer_for_wallet(wallet)
