"""Exact amounts: Decimal major units ↔ integer units (fiat minor units, token base units). Never float."""

from decimal import Decimal


def from_units(units, digits):
    """Integer units → Decimal major units with exactly `digits` decimals (exact: no float, no rounding)."""
    return Decimal(units).scaleb(-digits).quantize(Decimal(1).scaleb(-digits))


def to_units(amount, digits):
    """Decimal `amount` → integer units at `digits` decimals, refusing anything finer (no silent rounding)."""
    amount = Decimal(amount)
    scaled = amount.scaleb(digits)
    if not scaled.is_finite() or scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} has more precision than {digits} decimals")
    return int(scaled)
