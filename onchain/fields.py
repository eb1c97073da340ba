"""Typed chain fields: 256-bit unsigned integers and checksummed addresses."""

import functools
from decimal import Decimal

from django import forms
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext as _
from eth_utils import is_address, is_checksum_address, to_checksum_address

UINT256_MAX = 2**256 - 1


def validate_address(value):
    """Accept 0x + 40 hex; all lower (or all upper) case is valid, mixed case must carry a correct EIP-55 checksum."""
    if isinstance(value, str):
        return _checksummed(value)
    return _checked(value)


# One transfer's address is checked and checksummed several times (the API's field, each query and insert naming it:
# five Keccak hashes and checks per create); the answer for a string never changes. Refusals are not cached: they
# raise, in the caller's language.
@functools.lru_cache(maxsize=4096)
def _checksummed(value):
    return _checked(value)


def _checked(value):
    if not isinstance(value, str) or not value.startswith("0x") or len(value) != 42:
        raise ValidationError(_("A wallet address is 0x followed by 40 hexadecimal characters."), code="address_format")
    if not is_address(value.lower()):
        raise ValidationError(_("A wallet address may only contain hexadecimal characters (0-9, a-f)."), code="address_hex")
    body = value[2:]
    if body != body.lower() and body != body.upper() and not is_checksum_address(value):
        raise ValidationError(_("The address checksum (its mix of upper and lower case) is wrong: check for a typo."),
                              code="address_checksum")
    return to_checksum_address(value)


class AddressField(models.CharField):
    """Stores the EIP-55 checksum form, so equal addresses compare equal."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("max_length", 42)
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs.pop("max_length", None)
        return name, path, args, kwargs

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value in (None, ""):
            return value
        return validate_address(value)


class Uint256Field(models.Field):
    """Token base units: numeric(78,0) on PostgreSQL; text on SQLite, whose NUMERIC would round past 2**63."""

    description = "Unsigned 256-bit integer"

    def db_type(self, connection):
        return "numeric(78,0)" if connection.vendor == "postgresql" else "varchar(78)"

    def from_db_value(self, value, expression, connection):
        return None if value is None else int(value)

    def to_python(self, value):
        if value is None or value == "":
            return None
        if isinstance(value, int):
            return value
        try:
            return int(Decimal(str(value)))
        except ArithmeticError as exc:
            raise ValidationError(_("Not an integer.")) from exc

    def formfield(self, **kwargs):
        return super().formfield(**{"form_class": forms.IntegerField, "min_value": 0, "max_value": UINT256_MAX,
                                    **kwargs})

    def get_db_prep_value(self, value, connection, prepared=False):
        value = self.to_python(value)
        if value is None:
            return None
        if not 0 <= value <= UINT256_MAX:
            raise ValueError(f"{value} is outside uint256")
        return Decimal(value) if connection.vendor == "postgresql" else str(value)
