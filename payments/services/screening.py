"""Screening, thin for now: exact wallet matches against the denylist and sample sanctions list, and exact
matches of names compared by their confusable skeletons (Unicode TR39, through ICU), so a Cyrillic letter that
looks Latin, or an invisible character, does not slip a listed name through. A name whose letters come from
more than one script is held for review. The compliance work replaces the exact match with fuzzy,
cross-script matching and loads the real lists."""

import functools
import json
import unicodedata
from dataclasses import dataclass

import icu
from django.conf import settings

from payments.services.fraud import frozen_reason, identities_frozen, transfer_identities

CLEAR, HOLD, REJECT = "clear", "hold", "reject"


@dataclass(frozen=True)
class Outcome:
    decision: str
    reason: str = ""
    hits: tuple = ()


@functools.cache
def _lists():
    with open(settings.SANCTIONS_SAMPLE_FILE, encoding="utf-8") as f:
        data = json.load(f)
    names = frozenset(_normalise(n) for n in data.get("names", []))
    addresses = frozenset(a.lower() for a in data.get("addresses", [])) | frozenset(settings.WALLET_DENYLIST)
    return names, addresses


@functools.cache
def _spoof_checker():
    return icu.SpoofChecker()


def _normalise(name):
    """Case-folded, compatibility-normalised, invisible characters and spaces dropped, then the TR39 skeleton: two
    names that look the same get the same key, whatever their code points (a zero-width space may stand in for a
    space, so spacing does not count either)."""
    folded = unicodedata.normalize("NFKC", name).casefold()
    visible = "".join(c for c in folded if unicodedata.category(c) not in ("Cf", "Cc", "Co", "Cs", "Cn"))
    return "".join(_spoof_checker().getSkeleton(0, visible).split())


def name_scripts(name):
    """The scripts of a name's letters (Common and Inherited, e.g. spaces and hyphens, do not count)."""
    scripts = {icu.Script.getScript(c).getName() for c in name if c.isalpha()}
    return scripts - {"Common", "Inherited"}


def wallet_is_denied(address):
    return address.lower() in _lists()[1]


def screening_check(*, transfer):
    names, _ = _lists()
    if wallet_is_denied(transfer.recipient_wallet):
        return Outcome(REJECT, "recipient wallet is on a denylist")
    frozen = identities_frozen(transfer_identities(transfer))  # a dispute or fraud warning froze sender, card or wallet
    if frozen:
        return Outcome(REJECT, frozen_reason(frozen))
    for role, name in (("sender", transfer.sender_name), ("recipient", transfer.recipient_name)):
        if _normalise(name) in names:
            return Outcome(HOLD, f"{role} name matches a sanctions list entry")
    for role, name in (("sender", transfer.sender_name), ("recipient", transfer.recipient_name)):
        if len(name_scripts(name)) > 1:
            return Outcome(HOLD, f"{role} name mixes scripts ({', '.join(sorted(name_scripts(name)))})")
    return Outcome(CLEAR)
