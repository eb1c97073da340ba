import re

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

# Russia/Kazakhstan (+7, 10 digits), Kyrgyzstan (+996, 9 digits), USA/Canada (+1, 10 digits).
_PHONE = re.compile(r"^\+(7\d{10}|996\d{9}|1[2-9]\d{9})$")


def validate_phone(value):
    """Normalise spaces, dashes and brackets away; accept +7, +996 and +1 numbers in E.164."""
    compact = re.sub(r"[\s\-()]", "", value or "")
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    if not _PHONE.match(compact):
        raise ValidationError(_("Enter a phone number with its country code: +7…, +996… or +1…"), code="phone")
    return compact
