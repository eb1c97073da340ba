"""The arguments of `BatchPayout.payout(batchId, unit, width, packed)`, shared by the batch builder, revert isolation,
the access list and the settlement benchmark.

Each payout is `20 + width` bytes of `packed`: the recipient, then `units` big-endian, with `amount = units * unit`;
`unit` is the greatest common divisor of the batch's amounts and `width` the fewest bytes that hold its largest
`units`. Why: calldata costs 16 gas per non-zero byte and 4 per zero byte; amounts in tiyin of an 18-decimal token
are multiples of 10^16, so `units` is ~3 bytes where the amount in base units was ~8, and nothing is padded to 32
bytes (with the contract's leaner loop, ~140 gas less per payout than a word of `(amount << 160) | recipient`;
bench/README.md).
"""

from math import gcd

from eth_abi import decode as abi_decode
from eth_hash.auto import keccak
from eth_utils import function_signature_to_4byte_selector, to_checksum_address

AMOUNT_BITS = 96  # `units` has at most 12 bytes; units <= amount, so any amount below 2^96 fits
PAYOUT_TYPES = ["bytes32", "uint256", "uint256", "bytes"]
PAYOUT_SELECTOR = function_signature_to_4byte_selector(f"payout({','.join(PAYOUT_TYPES)})")


def payout_args(batch_id, entries):
    """[batchId, unit, width, packed] for `payout`, from (recipient address, amount in base units) pairs in call
    order."""
    amounts = [int(amount) for _to, amount in entries]
    unit = gcd(*amounts) or 1
    units = [amount // unit for amount in amounts]
    width = max(1, (max(units).bit_length() + 7) // 8)
    packed = b"".join(int(to, 16).to_bytes(20, "big") + u.to_bytes(width, "big")
                      for (to, _amount), u in zip(entries, units, strict=True))
    return [batch_id, unit, width, packed]


def payout_entries(unit, width, packed):
    """The (recipient, lower-case 0x address; amount in base units) pairs of a call's arguments, in its order."""
    stride = 20 + width
    return [("0x" + packed[i:i + 20].hex(), int.from_bytes(packed[i + 20:i + stride], "big") * unit)
            for i in range(0, len(packed), stride)]


def balance_key(holder, slot):
    """Storage key of `holder`'s entry in a Solidity `mapping(address => uint256)` at `slot`. (eth_hash's keccak of
    bytes: eth_utils' wrapper doubles the cost, and a batch's access list hashes 201 keys under the wallet's lock.)"""
    return "0x" + keccak(int(holder, 16).to_bytes(32, "big") + slot.to_bytes(32, "big")).hex()


def payout_access_list(token, to, data):
    """EIP-2930 access list of a batch call (`to` = the token's batch contract): the token and the balance slots of
    the contract and of every recipient. A listed slot costs 1,900 gas up front and 100 when read, a cold read 2,100;
    the listed token 2,400 instead of 2,600: ~100 gas less per payout. Derived from the call data, so a fee-bumped
    replacement carries the same list. None when the token's balance slot is unknown or this is not a batch call
    (a plain transfer's `to` is the token, warm already: listing it would cost 2,400 for nothing)."""
    if token.balance_slot is None or not token.batch_contract or to.lower() != token.batch_contract.lower():
        return None
    data = bytes(data)
    if data[:4] != PAYOUT_SELECTOR:
        raise ValueError("not a BatchPayout.payout call")
    # eth_abi directly: the contract object's decode_function_input runs web3's formatters (~10 ms a batch, signed
    # under the wallet's row lock).
    _batch_id, unit, width, packed = abi_decode(PAYOUT_TYPES, data[4:])
    recipients = [to for to, _amount in payout_entries(unit, width, packed)]
    holders = dict.fromkeys([token.batch_contract.lower(), *recipients])
    return [{"address": to_checksum_address(token.address),
             "storageKeys": [balance_key(h, token.balance_slot) for h in holders]}]
