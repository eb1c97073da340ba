"""The current sanctions lists, as screening reads them: every listed name and alias with its entry's data
(`listed_names`), the listed digital-currency addresses (`listed_addresses`), and `lists_fingerprint()`, which
changes whenever a new version becomes current (a matcher's cache compares it). `denied_address` checks a wallet
against settings.WALLET_DENYLIST (A7A5's contracts) and the lists' addresses."""

import functools
import logging
import re

import icu
from celery import current_app
from django.conf import settings
from django.db.models import Exists, Value

from payments.models import SanctionsAddress, SanctionsListVersion, SanctionsName
from payments.sanctions.types import ListedName

log = logging.getLogger(__name__)

EVM_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


def address_normalise(address):
    """The form addresses are compared in: stripped and lower-cased. For EVM addresses that is the canonical form
    (the checksum is only letter case); Tron and Bitcoin addresses are case-sensitive base58, so comparing them
    lower-cased can only match more, never miss a listed one."""
    return (address or "").strip().lower()


def name_script(name):
    """The script of a name's letters ("Latin", "Cyrillic", ...), "mixed" for more than one, "" for none."""
    scripts = {_script(c) for c in name if c.isalpha()} - {"Common", "Inherited"}
    if len(scripts) > 1:
        return "mixed"
    return next(iter(scripts), "")


@functools.lru_cache(maxsize=4096)
def _script(char):
    return icu.Script.getScript(char).getName()


def current_versions():
    """The current version of each source, by source."""
    return list(SanctionsListVersion.objects.filter(is_current=True).order_by("source"))


def lists_fingerprint():
    """The current versions' ids, sorted: equal fingerprints mean the same lists are in force."""
    return tuple(sorted(SanctionsListVersion.objects.filter(is_current=True).values_list("pk", flat=True)))


def listed_names():
    """Every name and alias of every entry in the current versions, as ListedName, read in chunks."""
    rows = (SanctionsName.objects.filter(entry__version__is_current=True)
            .values_list("entry_id", "entry__version_id", "entry__version__source", "entry__source_id", "name",
                         "is_alias", "entry__primary_name", "entry__kind", "entry__birth_dates",
                         "entry__nationalities")
            .order_by("entry_id", "is_alias", "pk"))
    for entry_id, version_id, source, source_id, name, is_alias, primary, kind, births, nationalities in \
            rows.iterator(chunk_size=5000):
        yield ListedName(entry_id=entry_id, version_id=version_id, source=source, source_id=source_id, name=name,
                         is_alias=is_alias, primary_name=primary, kind=kind, birth_dates=tuple(births or ()),
                         nationalities=tuple(nationalities or ()))


def listed_addresses():
    """{normalised address: (entry id, source, primary name)} for the current versions' digital-currency
    addresses."""
    rows = (SanctionsAddress.objects.filter(entry__version__is_current=True)
            .values_list("normalised", "entry_id", "entry__version__source", "entry__primary_name").order_by("pk"))
    return {normalised: (entry_id, source, primary) for normalised, entry_id, source, primary in rows}


def _listed(normalised):
    return SanctionsAddress.objects.filter(normalised=normalised, entry__version__is_current=True)


def listed_address_exists(address):
    """Whether a current sanctions list names `address`, as an expression read with another statement (for
    denied_address's `listed`)."""
    normalised = address_normalise(address)
    return Exists(_listed(normalised)) if normalised else Value(False)


def denied_address(address, *, listed=None):
    """Why an address is refused, or None: on the configured denylist (WALLET_DENYLIST), or listed with a current
    sanctions entry. Compared exactly, case-insensitively. `listed`: listed_address_exists already read (False:
    no list entry is looked for)."""
    normalised = address_normalise(address)
    if not normalised:
        return None
    if normalised in {address_normalise(a) for a in settings.WALLET_DENYLIST}:
        return "on the wallet denylist"
    if listed is False:
        return None
    hit = _listed(normalised).values_list("entry__version__source", "entry__primary_name").first()
    if hit:
        return f"listed by {hit[0]} for {hit[1]}"
    return None


def denied_addresses(addresses):
    """denied_address of each address, as {address: why} for those refused, with one query for all of them."""
    normalised = {address: address_normalise(address) for address in addresses}
    denylist = {address_normalise(a) for a in settings.WALLET_DENYLIST}
    out = {address: "on the wallet denylist" for address, n in normalised.items() if n and n in denylist}
    asked = sorted({n for address, n in normalised.items() if n and address not in out})
    hits = {}
    if asked:
        rows = (SanctionsAddress.objects.filter(normalised__in=asked, entry__version__is_current=True)
                .values_list("normalised", "entry__version__source", "entry__primary_name").order_by("-pk"))
        hits = {n: (source, primary) for n, source, primary in rows}  # the lowest pk last: first() of each
    for address, n in normalised.items():
        if address not in out and n in hits:
            out[address] = f"listed by {hits[n][0]} for {hits[n][1]}"
    return out


def on_new_version(version):
    """Runs after a new list version has committed: every transfer not yet settled is screened again against it
    (payments.pipeline_rescreen.transfers_rescreen, as a Celery task; enqueued by name, since importing payments.tasks from
    here would make an import loop)."""
    log.info("sanctions list version now current source=%s version=%s entries=%s names=%s addresses=%s",
             version.source, version.pk, version.entry_count, version.name_count, version.address_count)
    current_app.send_task("payments.transfers_rescreen", args=[f"{version.source}:{version.pk}"])
