"""Idempotency-Key for the partner API, as the IETF draft (draft-ietf-httpapi-idempotency-key-header) and Stripe do
it: the first request with a key claims an IdempotencyRecord (unique per partner and key in the database), runs, and
stores its response; a retry with the same body replays that response byte for byte; another body or endpoint is
422; a retry while the first is still running is 409. Answers that say nothing final (5xx, an exception, 400, 409,
429) release the key so a retry runs again. A record whose holder died becomes claimable when its lease runs out."""

import hashlib
import json
import logging
import uuid
from contextlib import nullcontext
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from payments.errors import IdempotencyInFlight, IdempotencyKeyInvalid, IdempotencyMismatch
from payments.models import IdempotencyRecord

log = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
KEY_MAX_LENGTH = 255
# Response headers replayed with the body; the rest (security headers, Vary, Allow) the middleware adds to every answer.
STORED_HEADERS = ("Content-Type", "Content-Language", "Location", "Link")
# Not final for the key: a malformed request (400: the client fixes the body and may reuse the key, as Stripe keeps no
# result for failed validation), a conflict or a rate limit that may pass (409, 429), a timeout (408, 425); and every
# 5xx. Released, so the next request with the key runs again.
NOT_STORED = frozenset({400, 408, 409, 425, 429})
IN_FLIGHT_RETRY_AFTER_SECONDS = 1


def request_fingerprint(data):
    """sha256 of the request's canonical JSON: the same body gives the same fingerprint, whatever its key order."""
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


def key_parse(raw, *, required, name=HEADER):
    """The key from the header's value (None when absent and optional). The draft sends it as a Structured Field
    string (`"abc"`), Stripe bare (`abc`): both are the same key. Empty, over 255 characters or with control
    characters: a 400 naming the header."""
    if raw is None:
        if required:
            raise IdempotencyKeyInvalid(f"Send an {name} header of 1 to {KEY_MAX_LENGTH} characters.", field=name)
        return None
    key = raw.strip()
    if len(key) >= 2 and key[0] == key[-1] == '"':
        key = key[1:-1]
    if not key or len(key) > KEY_MAX_LENGTH or not key.isprintable() or not key.isascii():
        raise IdempotencyKeyInvalid(f"{name} must be 1 to {KEY_MAX_LENGTH} printable ASCII characters.", field=name)
    return key


def _lease():
    return timedelta(seconds=settings.IDEMPOTENCY_LEASE_SECONDS)


def idempotency_claim(*, partner, key, method, path, fingerprint, livemode=True):
    """The record for (partner, mode, key) (a test key's records never meet a live key's): ours and in flight (run
    the request, then idempotency_complete or idempotency_release), or done (replay it). Refuses another body or
    endpoint (IdempotencyMismatch, 422) and a key whose first request is still running (IdempotencyInFlight, 409).
    An expired record counts as absent."""
    for _attempt in range(5):
        now = timezone.now()
        token = uuid.uuid4()
        try:
            # Outside a transaction the INSERT commits on its own (no BEGIN and COMMIT round trips); inside one, a
            # savepoint keeps a taken key from breaking the caller's transaction.
            with transaction.atomic() if connection.in_atomic_block else nullcontext():
                return IdempotencyRecord.objects.create(
                    partner=partner, livemode=livemode, key=key, method=method, path=path, fingerprint=fingerprint,
                    lease_token=token,
                    locked_until=now + _lease(), created_at=now,
                    expires_at=now + timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS))
        except IntegrityError:
            pass  # the key is taken: look at who holds it
        record = IdempotencyRecord.objects.filter(partner=partner, livemode=livemode, key=key).first()
        if record is None:
            continue  # released or purged since our insert failed
        if record.expires_at <= now:
            IdempotencyRecord.objects.filter(pk=record.pk, expires_at=record.expires_at).delete()
            continue
        if (record.method, record.path) != (method, path):
            raise IdempotencyMismatch(f"This {HEADER} was used on another endpoint ({record.method} {record.path}).",
                                      field=HEADER)
        if record.fingerprint != fingerprint:
            raise IdempotencyMismatch(f"This {HEADER} was used with a different request body.", field=HEADER)
        if record.state == IdempotencyRecord.State.DONE:
            return record
        if record.locked_until and record.locked_until > now:
            raise IdempotencyInFlight(f"The first request with this {HEADER} is still in progress: retry shortly.",
                                      retry_after=IN_FLIGHT_RETRY_AFTER_SECONDS)
        # Its holder outlived the lease (a killed process): the request runs again under our lease. What the first
        # run may have committed is found again by the endpoint's own guarantee (a transfer's key is unique).
        if IdempotencyRecord.objects.filter(pk=record.pk, state=IdempotencyRecord.State.IN_FLIGHT,
                                            lease_token=record.lease_token).update(lease_token=token,
                                                                                   locked_until=now + _lease()):
            log.warning("idempotency_lease_taken_over partner=%s record=%s", partner.pk, record.pk)
            record.lease_token, record.locked_until = token, now + _lease()
            return record
    raise IdempotencyInFlight(f"This {HEADER} is busy: retry shortly.", retry_after=IN_FLIGHT_RETRY_AFTER_SECONDS)


def idempotency_complete(*, record, status, headers, body, storable=True):
    """Store the response of our in-flight record for replays, or release the key when the answer is not final."""
    if not storable or status >= 500 or status in NOT_STORED:
        idempotency_release(record=record)
        return False
    kept = {name: headers[name] for name in STORED_HEADERS if name in headers}
    stored = IdempotencyRecord.objects.filter(
        pk=record.pk, state=IdempotencyRecord.State.IN_FLIGHT, lease_token=record.lease_token,
    ).update(state=IdempotencyRecord.State.DONE, locked_until=None, response_status=status, response_headers=kept,
             response_body=bytes(body))
    if not stored:
        log.warning("idempotency_lease_lost record=%s: another request took the key over", record.pk)
    return bool(stored)


def idempotency_release(*, record):
    """Forget our in-flight record (only if we still hold it): the next request with the key runs again."""
    IdempotencyRecord.objects.filter(pk=record.pk, state=IdempotencyRecord.State.IN_FLIGHT,
                                     lease_token=record.lease_token).delete()


def idempotency_purge(*, now=None, batch=5000):
    """Delete records past their expiry (kept IDEMPOTENCY_KEY_TTL_HOURS), in batches; returns how many."""
    now = now or timezone.now()
    deleted = 0
    while True:
        ids = list(IdempotencyRecord.objects.filter(expires_at__lte=now).values_list("pk", flat=True)[:batch])
        if not ids:
            break
        deleted += IdempotencyRecord.objects.filter(pk__in=ids).delete()[0]
    if deleted:
        log.info("idempotency_purged records=%s", deleted)
    return deleted
