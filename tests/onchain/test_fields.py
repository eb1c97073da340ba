"""Typed chain fields: wallet address validation and exact 256-bit storage."""

import pytest
from django.core.exceptions import ValidationError

from onchain.fields import validate_address
from onchain.models import Chain, HotWallet

GOOD = "0x52908400098527886E0F7030069857D2E4169EE7"  # an EIP-55 test vector


@pytest.mark.parametrize("value", [GOOD, GOOD.lower(), "0x" + GOOD[2:].upper()])
def test_valid_addresses_are_accepted_and_checksummed(value):
    """Checksummed, all-lower and all-upper case addresses are valid and normalise to the checksum form."""
    assert validate_address(value) == GOOD


@pytest.mark.parametrize("value,code", [
    (GOOD[:-1], "address_format"),
    (GOOD + "0", "address_format"),
    ("52908400098527886E0F7030069857D2E4169EE7", "address_format"),
    ("0x52908400098527886E0F7030069857D2E4169EZZ"[:42], "address_hex"),
    ("0x52908400098527886e0F7030069857D2E4169EE7", "address_checksum"),
])
def test_invalid_addresses_are_refused_with_a_reason(value, code):
    """Wrong length, non-hex characters and a wrong mixed-case checksum are each refused with their own code."""
    with pytest.raises(ValidationError) as info:
        validate_address(value)
    assert info.value.code == code


def test_a_refusal_is_given_each_time_in_the_callers_language():
    """Answers are remembered for valid addresses only: the same bad address asked again (after a good one) is
    refused again, in the language active at that call."""
    from django.utils import translation

    bad = "0x52908400098527886e0F7030069857D2E4169EE7"
    assert validate_address(GOOD.lower()) == validate_address(GOOD.lower()) == GOOD
    messages = []
    for language in ("en", "ru", "en"):
        with translation.override(language), pytest.raises(ValidationError) as info:
            validate_address(bad)
        assert info.value.code == "address_checksum"
        messages.append(info.value.messages[0])
    assert messages[0] == messages[2] != messages[1]


@pytest.mark.django_db
def test_uint256_round_trips_beyond_64_bits():
    """Base units far above 2**63 are stored and read back exactly (numeric(78,0))."""
    chain = Chain.objects.create(chain_id=999, name="t")
    big = 2**256 - 1
    HotWallet.objects.create(chain=chain, address=GOOD, max_tx_base_units=big)
    assert HotWallet.objects.get().max_tx_base_units == big
    assert HotWallet.objects.filter(max_tx_base_units=big).exists()
