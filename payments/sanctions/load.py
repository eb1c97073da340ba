"""Loading a sanctions list: parse every file first (payments/sanctions/formats.py), then store the new version and
make it the current one for its source in ONE transaction. The old version stays (audit) with is_current false; a
file that cannot be parsed raises SanctionsListInvalid before anything is written, so the previous version stays
in force. After the commit, lists.on_new_version runs (re-screening of unsettled transfers hooks in there)."""

import hashlib
import logging
from pathlib import Path

from django.db import IntegrityError, connection, transaction

from payments.errors import SanctionsListInvalid
from payments.models import SanctionsAddress, SanctionsEntry, SanctionsListVersion, SanctionsName
from payments.sanctions import lists
from payments.sanctions.formats import PARSERS, list_parse, read_bytes
from payments.sanctions.lists import address_normalise, name_script

log = logging.getLogger(__name__)

BATCH = 2000
SAMPLE_FILE = Path(__file__).resolve().parent.parent / "data" / "sanctions" / "sample.ftm.json"


def files_sha256(paths):
    digest = hashlib.sha256()
    for path in paths:
        digest.update(read_bytes(path))
    return digest.hexdigest()


def sanctions_list_load(*, file_format, paths, loaded_by="", source=None, encoding="utf-8", published_on=None):
    """Load one list's files as a new current version of its source (`source` overrides the format's own, e.g.
    "sample"). Returns (version, created): an upload identical to the current version's files (same sha256)
    creates nothing and returns the current version."""
    if file_format not in PARSERS:
        raise SanctionsListInvalid(f"unknown format {file_format!r}; one of: {', '.join(PARSERS)}")
    if source is not None and source not in SanctionsListVersion.Source.values:
        raise SanctionsListInvalid(f"unknown source {source!r}; one of: {', '.join(SanctionsListVersion.Source.values)}")
    paths = [Path(p) for p in paths]
    parsed = list_parse(file_format=file_format, paths=paths, encoding=encoding)
    source = source or parsed.source
    sha256 = files_sha256(paths)
    rows = _rows(parsed.entries)

    try:
        version, current = _store(source=source, file_format=file_format, parsed=parsed, rows=rows, paths=paths,
                                  sha256=sha256, loaded_by=loaded_by, published_on=published_on)
    except IntegrityError as exc:  # the first version of a source, loaded twice at once: one of them wins
        raise SanctionsListInvalid(f"another load of {source} made a version current at the same time; load again "
                                   "if this one should win") from exc
    if version is current:
        return current, False
    log.info("sanctions list loaded source=%s version=%s entries=%s names=%s addresses=%s previous=%s", source,
             version.pk, version.entry_count, version.name_count, version.address_count,
             current.pk if current else None)
    return version, True


def _store(*, source, file_format, parsed, rows, paths, sha256, loaded_by, published_on):
    """In one transaction: the new version and its rows, then the flip. Returns (version, previous current); the
    same object twice when the files are those of the current version (nothing stored)."""
    with transaction.atomic():
        _lock_source(source)
        current = SanctionsListVersion.objects.filter(source=source, is_current=True).first()
        if current is not None and current.sha256 == sha256 and current.file_format == file_format:
            return current, current
        version = SanctionsListVersion.objects.create(
            source=source, file_format=file_format, published_on=published_on or parsed.published_on,
            loaded_by=loaded_by[:150], file_names=", ".join(p.name for p in paths)[:500], sha256=sha256,
            entry_count=len(parsed.entries), name_count=sum(len(names) for _, names, _ in rows),
            alias_count=sum(1 for _, names, _ in rows for n in names if n.is_alias),
            address_count=sum(len(addresses) for _, _, addresses in rows))
        for start in range(0, len(rows), BATCH):
            chunk = rows[start:start + BATCH]
            for entry, _, _ in chunk:
                entry.version = version
            SanctionsEntry.objects.bulk_create([entry for entry, _, _ in chunk])
            names, addresses = [], []
            for entry, entry_names, entry_addresses in chunk:
                for row in entry_names:
                    row.entry = entry
                for row in entry_addresses:
                    row.entry = entry
                names += entry_names
                addresses += entry_addresses
            SanctionsName.objects.bulk_create(names)
            SanctionsAddress.objects.bulk_create(addresses)
        if current is not None:
            SanctionsListVersion.objects.filter(pk=current.pk).update(is_current=False)
        SanctionsListVersion.objects.filter(pk=version.pk).update(is_current=True)
        version.is_current = True
        transaction.on_commit(lambda: lists.on_new_version(version))
    return version, current


def _lock_source(source):
    """Loads of one source run one after the other, each reading the current version only once it holds the lock:
    on PostgreSQL a transaction-scoped advisory lock keyed by the source (there may be no row to lock yet); SQLite
    has one writer at a time anyway. The partial unique constraint stays the backstop."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"sanctions_list_load:{source}"])


def sanctions_sample_load():
    """`make run`'s sample list (fictional people, OpenSanctions' format) as source "sample"; a no-op while the file
    is unchanged. Returns (version, created)."""
    return sanctions_list_load(file_format="opensanctions", paths=[SAMPLE_FILE], source="sample", loaded_by="devsetup")


def _rows(entries):
    """Model instances (not saved) for each parsed entry: (entry, names, addresses)."""
    rows = []
    for parsed in entries:
        entry = SanctionsEntry(  # the foreign keys are set once the version and entries have ids
            version_id=None, source_id=parsed.source_id[:200], kind=parsed.kind, primary_name=parsed.primary_name[:500],
            birth_dates=[d for d in parsed.birth_dates if d], nationalities=[c for c in parsed.nationalities if c],
            countries=[c for c in parsed.countries if c], programs=parsed.programs, remarks=parsed.remarks)
        names = []
        if parsed.kind != SanctionsEntry.Kind.WALLET:  # an address-only entry's "name" is a label, not a name to match
            names.append(SanctionsName(entry_id=None, name=entry.primary_name, is_alias=False,
                                       script=name_script(entry.primary_name)))
            names += [SanctionsName(entry_id=None, name=alias[:500], is_alias=True, script=name_script(alias))
                      for alias in dict.fromkeys(parsed.aliases) if alias and alias != parsed.primary_name]
        addresses, seen = [], set()
        for currency, address in parsed.addresses:
            normalised = address_normalise(address)
            if normalised and normalised not in seen:
                seen.add(normalised)
                addresses.append(SanctionsAddress(entry_id=None, currency=currency[:20], address=address[:200],
                                                  normalised=normalised))
        rows.append((entry, names, addresses))
    return rows
