"""schemathesis hooks for the partner API's schema (tests/payments/test_schemathesis.py, `make test-schema-deep`):
strategies for the string formats whose validity a pattern cannot say, so schema-valid data really is valid."""

import phonenumbers
import schemathesis
from eth_utils import to_checksum_address
from hypothesis import strategies as st

from payments.validators import PHONE_COUNTRY_CODES

_TYPES = (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE)
_FORMATS = (phonenumbers.PhoneNumberFormat.E164, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
# phonenumbers' own example numbers for every region of the accepted country codes (+7, +996, +1), as E.164 and
# spaced: every one passes payments.validators.validate_phone.
PHONES = sorted({
    phonenumbers.format_number(number, fmt)
    for code in PHONE_COUNTRY_CODES for region in phonenumbers.region_codes_for_country_code(code)
    for kind in _TYPES if (number := phonenumbers.example_number_for_type(region, kind)) is not None
    for fmt in _FORMATS})

_addresses = st.binary(min_size=20, max_size=20).map(lambda raw: "0x" + raw.hex())
# EIP-55 checksummed, all lower case or all upper case: the three spellings the server accepts.
schemathesis.openapi.format("evm-address", st.one_of(
    _addresses, _addresses.map(to_checksum_address), _addresses.map(lambda a: "0x" + a[2:].upper())))
schemathesis.openapi.format("phone", st.sampled_from([p for p in PHONES if len(p) <= 20]))
