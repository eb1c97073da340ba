"""One conversion for every amount: exact Decimal → integer units, refusing what would need rounding."""

from decimal import Decimal

import pytest

from common.money import to_units
from payments.models import to_minor


@pytest.mark.parametrize(("amount", "digits", "units"), [
    ("15000.00", 2, 1500000), ("0.01", 2, 1), ("16969.66", 18, 16969660000000000000000),
    ("1", 0, 1), ("123.4", 2, 12340),
])
def test_amounts_convert_exactly(amount, digits, units):
    """Fiat minor units and token base units come out of the same exact scaling."""
    assert to_units(Decimal(amount), digits) == units


@pytest.mark.parametrize(("amount", "digits"), [("0.001", 2), ("1.5", 0), ("NaN", 2), ("Infinity", 18)])
def test_finer_than_the_unit_or_not_a_number_is_refused(amount, digits):
    """Nothing is rounded away silently: a sub-unit fraction (or a non-number) raises."""
    with pytest.raises(ValueError, match="precision"):
        to_units(Decimal(amount), digits)


def test_fiat_minor_units_follow_the_currency():
    assert to_minor(Decimal("87.45"), "USD") == 8745
    with pytest.raises(ValueError, match="precision"):
        to_minor(Decimal("87.455"), "KGS")
