"""Screening, thin for now: exact wallet matches against the denylist and sample sanctions list,
normalised exact name matches. The compliance work replaces the name match with fuzzy,
script-aware matching and loads the real lists."""

import functools
import json
import unicodedata
from dataclasses import dataclass

from django.conf import settings

CLEAR, HOLD, REJECT = "clear", "hold", "reject"


@dataclass(frozen=True)
class Outcome:
    decision: str
    reason: str = ""


@functools.cache
def _lists():
    with open(settings.SANCTIONS_SAMPLE_FILE, encoding="utf-8") as f:
        data = json.load(f)
    names = frozenset(_normalise(n) for n in data.get("names", []))
    addresses = frozenset(a.lower() for a in data.get("addresses", [])) | frozenset(settings.WALLET_DENYLIST)
    return names, addresses


def _normalise(name):
    folded = unicodedata.normalize("NFKC", name).casefold()
    return " ".join(folded.split())


def wallet_is_denied(address):
    return address.lower() in _lists()[1]


def screening_check(*, transfer):
    names, _ = _lists()
    if wallet_is_denied(transfer.recipient_wallet):
        return Outcome(REJECT, "recipient wallet is on a denylist")
    for role, name in (("sender", transfer.sender_name), ("recipient", transfer.recipient_name)):
        if _normalise(name) in names:
            return Outcome(HOLD, f"{role} name matches a sanctions list entry")
    return Outcome(CLEAR)
