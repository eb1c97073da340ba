"""The arguments of `BatchPayout.payout(batchId, unit, packed)`, shared by the batch builder, revert isolation and
the settlement benchmark.

Each payout is one word `(recipient << 96) | units` with `amount = units * unit`, and `unit` is the greatest common
divisor of the batch's amounts. Why: calldata costs 16 gas per non-zero byte and 4 per zero byte; amounts in tiyin
of an 18-decimal token are multiples of 10^16, so `units` is ~3 bytes where the amount in base units was ~8
(measured ~60 gas less per payout; bench/README.md).
"""

from math import gcd

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
