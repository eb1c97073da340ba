"""Screening outcomes and their review (docs/compliance.md, "Review").

- `screening_result_record`: every screening run of a transfer becomes a ScreeningResult (append-only): decision,
  reason, the lists in force and each hit explained. The pipeline calls it in the transaction that applies the
  decision (inline at funding, and when a new list version loads: pipeline_rescreen.transfers_rescreen).
- `review_decision_record`: a compliance officer's decision on a held transfer (approved and released, or rejected
  and refunded), linked to the result it decided. Called by the guarded actions (payments/guarded.py) inside their
  transaction, after the pipeline moved the transfer; staff.services keeps the AuditEntry beside it.
- `review_queue`: held transfers, oldest hold first, with when they were held.
This module reads and writes review records only; moving a transfer is the pipeline's (payments/pipeline*.py).
"""

import hashlib
import json
import os
from functools import cache

from django.conf import settings
from django.db.models import Min, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from payments.models import ReviewDecision, ScreeningResult, Transfer
from payments.sanctions.lists import current_versions
from staff.models import ApprovalRequest

INLINE, MANUAL, RESCREEN = "inline", "manual", "rescreen"
TRIGGER_MAX = 120


def rescreen_trigger(list_version):
    """The trigger of a re-screening for a new list version: `rescreen:<list version>`."""
    return f"{RESCREEN}:{list_version}"[:TRIGGER_MAX]


# Lists in force ----------------------------------------------------------------------------------------------------

@cache
def _file_digest(path, mtime_ns, size):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 16), b""):
            digest.update(chunk)
    return digest.hexdigest()


def lists_in_force(outcome=None):
    """(fingerprint, versions) of the lists a screening used. An outcome that names its lists (`list_versions`, a
    mapping of source to version) is taken at its word; otherwise the list store's current versions (what screening's
    index is built from); with none loaded, the sample list file's sha256 stands for them."""
    versions = dict(getattr(outcome, "list_versions", None) or {}) or {
        version.source: version.pk for version in current_versions()}
    if versions:
        canonical = json.dumps(versions, sort_keys=True, default=str).encode()
        return hashlib.sha256(canonical).hexdigest(), versions
    path = settings.SANCTIONS_SAMPLE_FILE
    try:
        stat = os.stat(path)
    except OSError:
        return "", {}
    fingerprint = _file_digest(path, stat.st_mtime_ns, stat.st_size)
    return fingerprint, {"sample": fingerprint[:16]}


# Hits ----------------------------------------------------------------------------------------------------------------

def hit_as_json(hit, *, transfer):
    """One hit (a screening.ScreeningHit) as stored with its result: enough to explain it side by side without the
    list it came from. `transfer` is kept for callers; the hit names its party and the screened name itself."""
    return {
        "party": hit.role,
        "screened_name": hit.screened_name,
        "listed_name": hit.listed_name,
        "is_alias": bool(hit.is_alias),
        "primary_name": hit.primary_name,
        "kind": hit.kind,
        "score": round(float(hit.score), 4),  # a similarity, not money
        "rule": hit.rule,
        "explanation": hit.explanation,
        "source": hit.source,
        "source_id": str(hit.source_id),
        "entry_id": hit.entry_id,
        "version_id": hit.version_id,
        "birth_dates": list(hit.birth_dates),
        "nationalities": list(hit.nationalities),
    }


# Recording -----------------------------------------------------------------------------------------------------------

def screening_result_record(*, transfer, outcome, trigger):
    """Record one screening run of `transfer` (a screening.Outcome) as it was applied: call it after the decision's
    transition, inside the same transaction, so the result and the transfer's status commit together."""
    fingerprint, versions = lists_in_force(outcome)
    return ScreeningResult.objects.create(
        transfer=transfer, trigger=trigger[:TRIGGER_MAX], decision=outcome.decision, reason=outcome.reason[:300],
        status_after=transfer.status, list_fingerprint=fingerprint, list_versions=versions,
        hits=[hit_as_json(hit, transfer=transfer) for hit in (getattr(outcome, "hits", ()) or ())])


def screening_results_record(*, applied, trigger):
    """screening_result_record of each (transfer, outcome) in `applied`, with one read of the lists in force and one
    insert for all of them (a batch screened in one transaction)."""
    rows, in_force = [], None
    for transfer, outcome in applied:
        if getattr(outcome, "list_versions", None):
            fingerprint, versions = lists_in_force(outcome)
        else:
            in_force = in_force or lists_in_force()
            fingerprint, versions = in_force
        rows.append(ScreeningResult(
            transfer=transfer, trigger=trigger[:TRIGGER_MAX], decision=outcome.decision, reason=outcome.reason[:300],
            status_after=transfer.status, list_fingerprint=fingerprint, list_versions=versions,
            hits=[hit_as_json(hit, transfer=transfer) for hit in (getattr(outcome, "hits", ()) or ())]))
    return ScreeningResult.objects.bulk_create(rows)


def latest_result(transfer):
    return ScreeningResult.objects.filter(transfer=transfer).order_by("-run_at", "-pk").first()


def latest_result_id(transfer):
    """The id of the transfer's latest screening result, or "-": part of what a second officer approves (a
    re-screening after the request makes the request stale)."""
    return str(ScreeningResult.objects.filter(transfer=transfer).order_by("-run_at", "-pk")
               .values_list("pk", flat=True).first() or "-")


def review_decision_record(*, transfer, decision, reason, actor, permission):
    """Keep a compliance officer's decision on `transfer` (already moved by the pipeline in this transaction). For a
    four-eyes approval the request still pending for `permission` names who asked (and why); `actor` approved."""
    approval = pending_request(transfer, permission)
    return ReviewDecision.objects.create(
        transfer=transfer, screening_result=latest_result(transfer), decision=decision,
        reason=approval.reason if approval else reason, decided_by=actor, decided_by_username=actor.get_username(),
        requested_by=approval.requested_by if approval else None,
        requested_by_username=approval.requested_by.get_username() if approval else "", approval=approval)


# The queue -----------------------------------------------------------------------------------------------------------

def review_queue(queryset=None):
    """Held transfers waiting for a decision, oldest hold first, each annotated with `held_since` (its first hold's
    screening result; for a hold recorded before results were kept, its last change)."""
    queryset = Transfer.objects.all() if queryset is None else queryset
    first_hold = (ScreeningResult.objects.filter(transfer=OuterRef("pk"), decision=ScreeningResult.Decision.HOLD)
                  .values("transfer").annotate(at=Min("run_at")).values("at"))
    return (queryset.filter(status=Transfer.Status.HELD)
            .annotate(held_since=Coalesce(Subquery(first_hold), "updated_at"))
            .order_by("held_since", "pk"))


def held_for(held_since, now=None):
    """How long a transfer has waited, in words ("3 d 4 h", "2 h 5 min", "7 min")."""
    seconds = max(int(((now or timezone.now()) - held_since).total_seconds()), 0)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min"


def pending_request(transfer, permission):
    return ApprovalRequest.objects.filter(action=permission, target_id=str(transfer.pk),
                                          status=ApprovalRequest.Status.PENDING).select_related("requested_by").first()

