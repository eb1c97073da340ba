"""Fees: EIP-1559 where the chain has it, legacy gas price otherwise; bumps for replacements; ceilings."""

from django.conf import settings

from onchain.errors import FeeCeilingReached


def _ceil_bump(value):
    return -(-value * (1000 + settings.FEE_BUMP_PERMILLE) // 1000)


def fee_quote(w3, chain):
    """Fees for a new transaction now: {"maxFeePerGas", "maxPriorityFeePerGas"} or {"gasPrice"}."""
    if chain.eip1559:
        base = w3.eth.get_block("latest")["baseFeePerGas"]
        priority = w3.eth.max_priority_fee
        fees = {"maxFeePerGas": 2 * base + priority, "maxPriorityFeePerGas": priority}
        if chain.max_fee_per_gas_ceiling is not None:
            if base + priority > chain.max_fee_per_gas_ceiling:
                raise FeeCeilingReached(f"Base fee {base} + tip {priority} is above the ceiling "
                                        f"{chain.max_fee_per_gas_ceiling} wei.")
            fees["maxFeePerGas"] = min(fees["maxFeePerGas"], chain.max_fee_per_gas_ceiling)
        return fees
    price = w3.eth.gas_price
    if chain.max_fee_per_gas_ceiling is not None and price > chain.max_fee_per_gas_ceiling:
        raise FeeCeilingReached(f"Gas price {price} is above the ceiling {chain.max_fee_per_gas_ceiling} wei.")
    return {"gasPrice": price}


def fee_bump(previous, current, chain):
    """Fees for a replacement: each field at least FEE_BUMP_PERMILLE above the previous attempt's (nodes refuse
    smaller bumps) and at least what the network asks now; never above the ceiling."""
    if "gasPrice" in previous:
        fees = {"gasPrice": max(_ceil_bump(previous["gasPrice"]), current.get("gasPrice", 0))}
        top = fees["gasPrice"]
    else:
        priority = max(_ceil_bump(previous["maxPriorityFeePerGas"]), current["maxPriorityFeePerGas"])
        max_fee = max(_ceil_bump(previous["maxFeePerGas"]), current["maxFeePerGas"], priority)
        fees = {"maxFeePerGas": max_fee, "maxPriorityFeePerGas": priority}
        top = max_fee
    if chain.max_fee_per_gas_ceiling is not None and top > chain.max_fee_per_gas_ceiling:
        raise FeeCeilingReached(f"A replacement would need {top} wei per gas, above the ceiling "
                                f"{chain.max_fee_per_gas_ceiling}.")
    return fees


def fees_of(tx):
    """The fee fields a stored attempt was signed with."""
    if tx.tx_type == 0:
        return {"gasPrice": tx.max_fee_per_gas}
    return {"maxFeePerGas": tx.max_fee_per_gas, "maxPriorityFeePerGas": tx.max_priority_fee_per_gas}
