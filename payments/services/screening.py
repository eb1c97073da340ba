"""Screening of a funded transfer: the recipient wallet exactly against the denylist and the lists' addresses
(reject), frozen identities (reject), then sender and recipient names fuzzily against every listed name and alias
across Cyrillic and Latin (payments.sanctions.matching, docs/compliance.md "Matching"): a hit scoring at least
SANCTIONS_HOLD_THRESHOLD holds the transfer for review with its hits; a name matching cannot read (empty, only
punctuation, another script) holds too, never clears. A name whose letters come from more than one script is held
for review. Names never reject on their own: a person decides."""

import functools
import json
import re
from dataclasses import dataclass

import icu
from django.conf import settings
from django.utils.translation import gettext as _

from payments.models import TravelRuleRecord
from payments.sanctions.lists import denied_address, denied_addresses, listed_address_exists, lists_fingerprint
from payments.sanctions.matching import ScreeningInputError
from payments.sanctions.provider import current_index
from payments.services.fraud import (
    frozen_reason,
    identities_frozen_many,
    settlement_addresses_among,
    transfer_identities,
)
from payments.services.limits import limits_check_many

CLEAR, HOLD, REJECT = "clear", "hold", "reject"


@dataclass(frozen=True)
class ScreeningHit:
    """One listed name a transfer's name matched, flat so it can be stored and shown side by side."""

    role: str            # sender or recipient
    screened_name: str   # the name as the transfer gave it
    listed_name: str     # the listed name or alias that matched
    primary_name: str    # the entry's main name (the same as listed_name unless that is an alias)
    is_alias: bool
    score: float
    rule: str            # which variant classes explain it, e.g. "transliteration+reordered"
    explanation: str
    source: str
    source_id: str
    entry_id: int
    version_id: int
    kind: str = ""
    birth_dates: tuple = ()
    nationalities: tuple = ()

    @classmethod
    def of(cls, role, screened_name, hit):
        listed = hit.listed
        return cls(role=role, screened_name=screened_name, listed_name=listed.name, primary_name=listed.primary_name,
                   is_alias=listed.is_alias, score=hit.score, rule=hit.rule, explanation=hit.explanation,
                   source=listed.source, source_id=listed.source_id, entry_id=listed.entry_id,
                   version_id=listed.version_id, kind=listed.kind, birth_dates=tuple(listed.birth_dates),
                   nationalities=tuple(listed.nationalities))


@dataclass(frozen=True)
class Outcome:
    decision: str
    reason: str = ""
    hits: tuple = ()  # ScreeningHits at or above the hold threshold, best first


@functools.cache
def _lists():
    with open(settings.SANCTIONS_SAMPLE_FILE, encoding="utf-8") as f:
        data = json.load(f)
    addresses = frozenset(a.lower() for a in data.get("addresses", [])) | frozenset(settings.WALLET_DENYLIST)
    return addresses


def name_scripts(name):
    """The scripts of a name's letters (Common and Inherited, e.g. spaces and hyphens, do not count)."""
    scripts = {icu.Script.getScript(c).getName() for c in name if c.isalpha()}
    return scripts - {"Common", "Inherited"}


def wallet_is_denied(address, *, listed=None):
    """On the denylist (WALLET_DENYLIST: A7A5's contracts), a current sanctions list's digital-currency addresses, or
    (until any list is loaded: development) the bundled sample's; exact, case-insensitive. `listed`: whether a
    current list names it, when already read (lists.listed_address_exists)."""
    if denied_address(address, listed=listed):
        return True
    # The bundled sample is in memory: ask the database whether any list is loaded only for an address it names.
    return address.lower() in _lists() and not lists_fingerprint()


def wallet_listed(address):
    """wallet_is_denied's question to the database, as an expression read with another statement (its `listed`)."""
    return listed_address_exists(address)


def wallets_denied(addresses):
    """The addresses among `addresses` that wallet_is_denied refuses, with one query for all of them (and one more
    only if the bundled sample names one)."""
    denied = set(denied_addresses(addresses))
    sample = [a for a in addresses if a not in denied and a.lower() in _lists()]
    if sample and not lists_fingerprint():
        denied.update(sample)
    return denied


def names_screen(*, names, birth_dates=None, nationalities=None, index=None):
    """Screen (role, name) pairs against the current list version (`index`: current_index(), when the caller screens
    many at once). Returns (hits at or above the hold threshold, best first; the reason a name could not be screened,
    or "").
    """
    birth_dates, nationalities = birth_dates or {}, nationalities or {}
    index = index or current_index()
    threshold = settings.SANCTIONS_HOLD_THRESHOLD
    hits, problems = [], []
    for role, name in names:
        try:
            found = index.search(name, birth_date=birth_dates.get(role), nationality=nationalities.get(role), limit=5)
        except ScreeningInputError as exc:
            problems.append(f"{role} name cannot be screened: {exc}")
            continue
        hits.extend(ScreeningHit.of(role, name, hit) for hit in found if hit.score >= threshold)
    hits.sort(key=lambda h: -h.score)
    return tuple(hits), "; ".join(problems)


def _screened_names(transfer, record=None):
    """(role, name) of every person the transfer names: sender and recipient, and the travel rule's originator and
    beneficiary where they are written differently (a partner may send them apart from the parties' names).
    `record`: the (originator, beneficiary) names of its TravelRuleRecord, or None, when the caller read them."""
    names = [("sender", transfer.sender_name), ("recipient", transfer.recipient_name)]
    if record is None:
        record = (TravelRuleRecord.objects.filter(transfer=transfer)
                  .values_list("originator_name", "beneficiary_name").first())
    if record:
        names += [(role, name) for role, name in zip(("originator", "beneficiary"), record, strict=True)
                  if name and name not in dict(names).values()]
    return tuple(names)


def screening_check(*, transfer):
    return screening_check_many(transfers=[transfer])[0]


def screening_check_many(*, transfers):
    """The screening Outcome of each transfer, in order: exactly what screening_check says of each, with each table
    read once for all of them (limits, denied wallets, payout partners' addresses, freezes, travel-rule names, the
    lists in force) instead of once per transfer."""
    transfers = list(transfers)
    if not transfers:
        return []
    # --- limits and KYC tiers (payments/services/limits.py): a tier hold, returned only if nothing below decides ---
    tiers = limits_check_many(transfers=transfers)
    # --- end of limits and KYC tiers ---
    wallets = [t.recipient_wallet for t in transfers]
    denied = wallets_denied(wallets)
    settlement = settlement_addresses_among(wallets)
    frozen_of = identities_frozen_many([transfer_identities(t, settlement=settlement) for t in transfers])
    records = {}
    for transfer_id, *names in (TravelRuleRecord.objects.filter(transfer__in=[t.pk for t in transfers])
                                .values_list("transfer_id", "originator_name", "beneficiary_name").order_by("-pk")):
        records[transfer_id] = tuple(names)  # the lowest pk last: first() of each
    index = None
    outcomes = []
    for transfer, tier, frozen in zip(transfers, tiers, frozen_of, strict=True):
        if transfer.recipient_wallet in denied:
            outcomes.append(Outcome(REJECT, "recipient wallet is on a denylist"))
            continue
        if frozen:  # a dispute or fraud warning froze sender, card or wallet
            outcomes.append(Outcome(REJECT, frozen_reason(frozen)))
            continue
        index = index or current_index()
        names = _screened_names(transfer, record=records.get(transfer.pk, ()))
        outcomes.append(_names_outcome(transfer, names, index) or Outcome(tier.decision, tier.reason))
    return outcomes


def _names_outcome(transfer, names, index):
    """A hold for the names (a list hit, a name that cannot be screened, mixed scripts), or None: the tier decides."""
    hits, problem = names_screen(names=names, index=index)
    if hits:
        best = hits[0]
        roles = " and ".join(dict.fromkeys(h.role for h in hits))
        return Outcome(HOLD, f"{roles} name matches a sanctions list entry (best: “{best.listed_name}”, "
                             f"score {best.score:.2f}, {best.rule})", hits)
    if problem:
        return Outcome(HOLD, problem)
    for role, name in (("sender", transfer.sender_name), ("recipient", transfer.recipient_name)):
        if len(name_scripts(name)) > 1:
            return Outcome(HOLD, f"{role} name mixes scripts ({', '.join(sorted(name_scripts(name)))})")
    return None


_ADDRESS_FORMS = (re.compile(r"0x[0-9a-fA-F]{40}"), re.compile(r"T[1-9A-HJ-NP-Za-km-z]{33}"))


def _hit_dict(hit):
    listed = hit.listed
    return {"listed_name": listed.name, "primary_name": listed.primary_name, "alias": listed.is_alias,
            "score": hit.score, "rule": hit.rule, "source": listed.source, "source_id": listed.source_id,
            "explanation": hit.explanation}


def screening_lookup(*, name=None, birth_date=None, nationality=None, address=None, limit=10):
    """What screening says about a name (and optionally an address) typed by a person: the command and the admin
    form. {"name", "decision": clear|hold|reject, "score": best score or None, "hits": [...]} (plus "address" when
    one is given). Hits below the hold threshold are listed too (down to matching.MIN_SCORE) so a near miss shows;
    only the threshold decides. Raises ScreeningInputError for a name, date, country or address it cannot check.
    """
    result = {}
    decision = CLEAR
    if address is not None:
        address = address.strip()
        if not any(form.fullmatch(address) for form in _ADDRESS_FORMS):
            raise ScreeningInputError(_("“%(address)s” is not a wallet address (0x and 40 hex digits, or a Tron "
                                        "address).") % {"address": address}, field="address")
        result["address"] = address
        if wallet_is_denied(address):
            decision = REJECT
    if name is not None:
        # The decision comes from the best hit whatever `limit` says: it only trims what is listed.
        hits = current_index().search(name, birth_date=birth_date, nationality=nationality, limit=max(limit, 1))
        result = {"name": name, **result}
        result["score"] = hits[0].score if hits else None
        result["hits"] = [_hit_dict(h) for h in hits[:max(limit, 0)]]
        if decision == CLEAR and hits and hits[0].score >= settings.SANCTIONS_HOLD_THRESHOLD:
            decision = HOLD
    ordered = {"name": result.pop("name")} if "name" in result else {}
    return {**ordered, "decision": decision, **result}
