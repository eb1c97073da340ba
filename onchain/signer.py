"""One signing interface for hot wallets. The local implementation reads the key from the environment
variable the wallet names (or an encrypted keystore); a KMS or HSM signer implements the same two members."""

import functools
import json
import os
from typing import Protocol

from eth_account import Account

from onchain.errors import SignerUnavailable


class Signer(Protocol):
    address: str

    def sign_transaction(self, tx: dict) -> tuple[bytes, str]:
        """Return (raw signed bytes, 0x transaction hash)."""


class LocalKeySigner:
    def __init__(self, account):
        self._account = account
        self.address = account.address

    def __repr__(self):
        return f"LocalKeySigner({self.address})"

    def sign_transaction(self, tx):
        signed = self._account.sign_transaction(tx)
        return bytes(signed.raw_transaction), "0x" + signed.hash.hex().removeprefix("0x")


@functools.cache
def signer_for(key_env):
    """`key_env` names an environment variable holding a hex key, or `<NAME>_KEYSTORE` + `<NAME>_KEYSTORE_PASSWORD`."""
    key = os.environ.get(key_env)
    if key:
        return LocalKeySigner(Account.from_key(key))
    keystore, password = os.environ.get(f"{key_env}_KEYSTORE"), os.environ.get(f"{key_env}_KEYSTORE_PASSWORD")
    if keystore and password is not None:
        with open(keystore, encoding="utf-8") as f:
            return LocalKeySigner(Account.from_key(Account.decrypt(json.load(f), password)))
    raise SignerUnavailable(f"Set {key_env} (or {key_env}_KEYSTORE and {key_env}_KEYSTORE_PASSWORD) for this hot wallet.")


def signer_for_wallet(wallet):
    signer = signer_for(wallet.key_env)
    if signer.address != wallet.address:
        raise SignerUnavailable(f"The key in {wallet.key_env} does not belong to hot wallet {wallet.address}.")
    return signer
