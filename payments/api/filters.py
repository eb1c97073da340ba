"""The transfer list's query parameters, parsed strictly: a value we cannot read is a 400 problem naming the parameter,
never a silently ignored filter (a partner reconciling by status must not get every transfer back for a typo).

Five parameters do not justify django-filter (not a dependency): it would still need our own messages and problem
format for each. docs/api.md "Listing and filtering" documents them."""

import re
from datetime import UTC, datetime

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework.exceptions import ValidationError

from payments.models import SOURCE_CURRENCIES, TARGET_CURRENCIES, Transfer

# A `+` of an unencoded UTC offset arrives as a space (form decoding): "…T10:00:00 05:00" is "…T10:00:00+05:00".
_OFFSET_AS_SPACE = re.compile(r"(T[\d:.]+) (\d\d(:?\d\d)?)$")


def _statuses(raw):
    values = list(dict.fromkeys(v.strip() for v in raw.split(",") if v.strip()))  # a repeat filters nothing more
    unknown = [v[:30] for v in values if v not in Transfer.Status.values][:3]  # echo a few, short: not the input
    if unknown or not values:
        raise ValidationError({"status": [f"Unknown status {', '.join(map(repr, unknown)) or '(empty)'}: use one or "
                                          f"several of {', '.join(Transfer.Status.values)}, comma-separated."]})
    return values


def _moment(name, raw):
    """ISO 8601 date-time (`Z` or an offset; none means UTC) or a date alone (its midnight UTC)."""
    text = _OFFSET_AS_SPACE.sub(r"\1+\2", raw.strip())
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationError({name: [f"Not an ISO 8601 date-time: {raw[:40]!r} (e.g. 2026-11-29T10:00:00Z)."]}) from None
    value = value if value.tzinfo else value.replace(tzinfo=UTC)
    try:
        value.astimezone(UTC)  # 0001-01-01T00:00+05:00 has no UTC moment (OverflowError)
    except OverflowError:
        raise ValidationError({name: [f"Out of range: {raw[:40]!r}."]}) from None
    return value


CORRIDORS = [f"{s}-{t}" for s, _n in SOURCE_CURRENCIES for t, _m in TARGET_CURRENCIES]


def _corridor(raw):
    source, _, target = raw.upper().partition("-")
    if source not in dict(SOURCE_CURRENCIES) or target not in dict(TARGET_CURRENCIES):
        raise ValidationError({"corridor": [f"Unknown corridor {raw[:20]!r}: use one of {', '.join(CORRIDORS)}."]})
    return source, target


FILTERS = ("status", "created_after", "created_before", "corridor", "source_currency", "reference")


def transfer_list_filters(params):
    """Query parameters → keyword arguments of selectors.transfers_of_partner. Raises ValidationError (a 400 problem
    naming the parameter) for any value it cannot read."""
    out = {}
    # One value per parameter: `?status=bogus&status=funded` must not quietly become `funded`.
    repeated = [name for name in FILTERS if len(params.getlist(name)) > 1]
    if repeated:
        raise ValidationError({name: ["Give this parameter once."] for name in repeated})
    if "status" in params:
        out["statuses"] = _statuses(params["status"])
    for name in ("created_after", "created_before"):
        if name in params:
            out[name] = _moment(name, params[name])
    if "created_after" in out and "created_before" in out and out["created_after"] >= out["created_before"]:
        raise ValidationError({"created_before": ["created_before must be later than created_after."]})
    if "corridor" in params:
        out["source_currency"], out["target_currency"] = _corridor(params["corridor"])
    if "source_currency" in params:
        currency = params["source_currency"].upper()
        if currency not in dict(SOURCE_CURRENCIES):
            raise ValidationError({"source_currency": [f"Unknown source currency {params['source_currency'][:10]!r}: "
                                                       f"use one of {', '.join(dict(SOURCE_CURRENCIES))}."]})
        if out.get("source_currency", currency) != currency:
            raise ValidationError({"source_currency": ["source_currency contradicts corridor."]})
        out["source_currency"] = currency
    if "reference" in params:
        reference = params["reference"].strip()  # as a stored reference is (the create body's is trimmed)
        if not reference or len(reference) > 64 or not reference.isprintable():  # a NUL is a 500 on PostgreSQL
            raise ValidationError({"reference": ["A reference is 1 to 64 printable characters."]})
        out["reference"] = reference
    return out


LIST_PARAMETERS = [
    OpenApiParameter("status", OpenApiTypes.STR, description="One or several statuses, comma-separated "
                     "(`funded,held`). An unknown status is a 400 problem."),
    OpenApiParameter("created_after", OpenApiTypes.DATETIME,
                     description="Created at or after this ISO 8601 instant (no offset means UTC)."),
    OpenApiParameter("created_before", OpenApiTypes.DATETIME,
                     description="Created strictly before this ISO 8601 instant."),
    OpenApiParameter("corridor", OpenApiTypes.STR, description="`RUB-KGS` or `USD-KGS`."),
    OpenApiParameter("source_currency", OpenApiTypes.STR, description="`RUB` or `USD`."),
    OpenApiParameter("reference", OpenApiTypes.STR, description="Your own reference, exactly."),
    OpenApiParameter("limit", OpenApiTypes.INT, description="Transfers per page, 1 to 100 (default 50)."),
]
