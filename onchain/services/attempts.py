"""Signing and storing one attempt at a batch's nonce: the first transaction and every fee-bumped replacement
go through here, so both carry exactly the same call and both are committed before anything is broadcast."""

from onchain.models import ChainTransaction
from onchain.services.payout_call import payout_access_list
from onchain.signer import signer_for_wallet


def attempt_sign(*, batch, wallet, to, data, gas, fees, replaces=None):
    """Sign (to, data, gas) at `batch.nonce` with `fees` and store the raw bytes and hash. Call inside the caller's
    transaction, under its lock: the caller commits the attempt with the state change that needs it."""
    data = bytes(data)
    tx = {"chainId": wallet.chain.chain_id, "nonce": batch.nonce, "to": to, "value": 0, "data": data, "gas": gas,
          **fees, "type": 2 if "maxFeePerGas" in fees else 0}
    access_list = payout_access_list(batch.token, to, data) if tx["type"] == 2 else None
    if access_list:
        tx["accessList"] = access_list
    raw, tx_hash = signer_for_wallet(wallet).sign_transaction(tx)
    return ChainTransaction.objects.create(
        batch=batch, wallet=wallet, nonce=batch.nonce, tx_hash=tx_hash, raw_tx=raw, tx_type=tx["type"], to_address=to,
        data=data, gas_limit=gas, max_fee_per_gas=fees.get("maxFeePerGas", fees.get("gasPrice")),
        max_priority_fee_per_gas=fees.get("maxPriorityFeePerGas", 0), replaces=replaces)
