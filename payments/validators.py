"""Input checks shared by the web forms and the partner API: phone numbers and people's names."""

import unicodedata

import phonenumbers
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

# Russia/Kazakhstan (+7), Kyrgyzstan (+996), USA/Canada (+1).
PHONE_COUNTRY_CODES = {7, 996, 1}
_PHONE_PUNCTUATION = set(" -().\u00a0")
# Control, format (zero-width and bidi marks), surrogate, private-use and unassigned code points: invisible or
# meaningless in a name, and the way to slip a listed name past screening.
_HIDDEN_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


def validate_phone(value):
    """A +7, +996 or +1 number that the phonenumbers data says is valid, returned in E.164 (ASCII digits).
    Spaces, dashes, dots and brackets are allowed as typed; letters (vanity numbers) are not."""
    raw = (value or "").strip()
    if raw.startswith("00"):
        raw = "+" + raw[2:]
    message = _("Enter a phone number with its country code: +7…, +996… or +1…")
    body = raw[1:] if raw.startswith("+") else None
    if not body or any(not (c in _PHONE_PUNCTUATION or unicodedata.category(c) == "Nd") for c in body):
        raise ValidationError(message, code="phone")
    try:
        number = phonenumbers.parse(raw, None)
    except phonenumbers.NumberParseException:
        raise ValidationError(message, code="phone") from None
    if number.country_code not in PHONE_COUNTRY_CODES or not phonenumbers.is_valid_number(number):
        raise ValidationError(message, code="phone")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def validate_person_name(value):
    """Refuse invisible and control characters in a name (zero-width spaces, bidi marks, private-use glyphs)."""
    if any(unicodedata.category(c) in _HIDDEN_CATEGORIES for c in value or ""):
        raise ValidationError(_("Remove the invisible or control characters from the name."), code="name_characters")
