"""The name index screening searches, built once per list version per process.

The names are the current list versions' (payments.sanctions.lists: `listed_names()`, fingerprinted by
`lists_fingerprint()`, which changes when a new version loads). Until any list is loaded (a fresh development
database) the bundled sample file (settings.SANCTIONS_SAMPLE_FILE) stands in. Building 40,000 names takes seconds,
so it happens when the version changes, not per transfer.
"""

import json
import os
import threading

from django.conf import settings

from payments.sanctions.lists import listed_names, lists_fingerprint
from payments.sanctions.matching import NameIndex
from payments.sanctions.types import ListedName

_lock = threading.Lock()
_cached = {"fingerprint": None, "index": None}


def _sample_fingerprint():
    path = settings.SANCTIONS_SAMPLE_FILE
    stat = os.stat(path)
    return ("sample", path, stat.st_mtime_ns, stat.st_size)


def _sample_names():
    """The sample file's names, each its own entry (version 0)."""
    with open(settings.SANCTIONS_SAMPLE_FILE, encoding="utf-8") as f:
        data = json.load(f)
    source = "sample"
    return [ListedName(entry_id=i, version_id=0, source=source, source_id=str(i), name=name, is_alias=False,
                       primary_name=name, kind="person")
            for i, name in enumerate(data.get("names", []), start=1)]


def _source():
    """(fingerprint of the list versions in force, a callable giving their ListedNames)."""
    versions = lists_fingerprint()
    if versions:
        return ("lists", *versions), listed_names
    return _sample_fingerprint(), _sample_names


def current_index():
    """The NameIndex of the list version in force; rebuilt only when that version changes."""
    fingerprint, names = _source()
    index = _cached["index"]
    if index is not None and _cached["fingerprint"] == fingerprint:
        return index
    with _lock:
        if _cached["index"] is None or _cached["fingerprint"] != fingerprint:
            _cached["index"] = NameIndex.build(names())
            _cached["fingerprint"] = fingerprint
        return _cached["index"]
