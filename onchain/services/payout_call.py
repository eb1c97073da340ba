"""The arguments of `BatchPayout.payout(batchId, unit, packed)`, shared by the batch builder, revert isolation and
the settlement benchmark.

Each payout is one word `(recipient << 96) | units` with `amount = units * unit`, and `unit` is the greatest common
divisor of the batch's amounts. Why: calldata costs 16 gas per non-zero byte and 4 per zero byte; amounts in tiyin
of an 18-decimal token are multiples of 10^16, so `units` is ~3 bytes where the amount in base units was ~8
(measured ~60 gas less per payout; bench/README.md).
"""

from math import gcd

from eth_utils import keccak, to_checksum_address

AMOUNT_BITS = 96  # `units` has the word's low 96 bits; units <= amount, so any amount below 2^96 fits


def payout_unit(amounts):
    """The batch's `unit`: the greatest common divisor of its amounts (1 when they share none)."""
    return gcd(*amounts) or 1


def payout_word(to_address, amount, unit):
    return (int(to_address, 16) << 96) | (int(amount) // unit)


def payout_args(batch_id, entries):
    """[batchId, unit, packed] for `payout`, from (recipient address, amount in base units) pairs in call order."""
    unit = payout_unit([int(amount) for _to, amount in entries])
    return [batch_id, unit, [payout_word(to, amount, unit) for to, amount in entries]]


def balance_key(holder, slot):
    """Storage key of `holder`'s entry in a Solidity `mapping(address => uint256)` at `slot`."""
    return "0x" + keccak(int(holder, 16).to_bytes(32, "big") + slot.to_bytes(32, "big")).hex()


def payout_access_list(token, to, data):
    """EIP-2930 access list of a batch call (`to` = the token's batch contract): the token and the balance slots of
    the contract and of every recipient. A listed slot costs 1,900 gas up front and 100 when read, a cold read 2,100;
    the listed token 2,400 instead of 2,600: ~100 gas less per payout. Derived from the call data, so a fee-bumped
    replacement carries the same list. None when the token's balance slot is unknown or this is not a batch call
    (a plain transfer's `to` is the token, warm already: listing it would cost 2,400 for nothing)."""
    if token.balance_slot is None or not token.batch_contract or to.lower() != token.batch_contract.lower():
        return None
    from onchain import client  # lazy: client builds web3 objects, this module is also used without a node

    _fn, args = client.batch_payout(token.batch_contract).decode_function_input(bytes(data))
    holders = dict.fromkeys([token.batch_contract.lower()] + [f"0x{word >> 96:040x}" for word in args["packed"]])
    return [{"address": to_checksum_address(token.address),
             "storageKeys": [balance_key(h, token.balance_slot) for h in holders]}]
