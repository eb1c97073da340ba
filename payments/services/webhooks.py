"""Outgoing webhooks: a partner's endpoints (created, changed, rotated, re-enabled) and the event outbox. An event is
recorded in the caller's transaction with one delivery row per subscribed endpoint, and the deliveries are handed
to the worker after commit (services/webhook_delivery.py sends them; the beat sweep finds any whose task was lost).
docs/webhooks.md describes what partners see."""

import logging
import threading
from contextlib import contextmanager
from datetime import timedelta

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from payments.errors_webhooks import WebhookEventTypeUnknown
from payments.models import Transfer, WebhookDelivery, WebhookEndpoint, WebhookEvent, WebhookSecret
from payments.services.webhook_crypto import secret_decrypt, secret_encrypt, secret_new
from payments.services.webhook_net import url_check

log = logging.getLogger(__name__)

DELIVER_TASK = "payments.webhook_deliver"
TRANSFER_CREATED = "transfer.created"
BALANCE_MOVEMENT = "balance.movement"
ENDPOINT_DISABLED = "webhook_endpoint.disabled"
TEST_EVENT = "webhook.test"
# Every type a partner may subscribe to: a transfer's creation and each status it can reach, balance movements, an
# endpoint of theirs disabled, and the ping.
EVENT_TYPES = ([TRANSFER_CREATED] + [f"transfer.{status}" for status in Transfer.Status.values
                                     if status != Transfer.Status.AWAITING_FUNDING]
               + [BALANCE_MOVEMENT, ENDPOINT_DISABLED, TEST_EVENT])


def event_types_check(event_types):
    """Known types (or "*"), deduplicated in the given order; anything else is refused naming it."""
    unknown = [t for t in event_types if t != "*" and t not in EVENT_TYPES]
    if unknown:
        raise WebhookEventTypeUnknown(f"Unknown event types: {', '.join(map(str, unknown))}. Known: "
                                      f"{', '.join(EVENT_TYPES)} (or \"*\" for all).")
    return list(dict.fromkeys(event_types))


# Endpoints -----------------------------------------------------------------------------------------------------------

def endpoint_create(*, partner, url, description="", event_types=()):
    """Checks the URL (form and, resolved now, its addresses) and the event types, then stores the endpoint with a
    new signing secret. Returns (endpoint, secret): the secret is shown this once and stored encrypted."""
    url_check(url)
    event_types = event_types_check(list(event_types))
    secret = secret_new()
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.create(partner=partner, url=url, description=description,
                                                  event_types=event_types)
        WebhookSecret.objects.create(endpoint=endpoint, secret_encrypted=secret_encrypt(secret))
    log.info("webhook_endpoint_created partner=%s endpoint=%s", partner.pk, endpoint.pk)
    return endpoint, secret


def endpoint_update(*, endpoint, **changes):
    if "url" in changes:
        url_check(changes["url"])
    if "event_types" in changes:
        changes["event_types"] = event_types_check(list(changes["event_types"]))
    for name, value in changes.items():
        setattr(endpoint, name, value)
    endpoint.save()
    return endpoint


def endpoint_rotate_secret(*, endpoint, overlap_seconds=None):
    """A new secret signs from now on; the current ones keep signing too until `overlap_seconds` from now
    (WEBHOOK_SECRET_OVERLAP_SECONDS by default), so a receiver can switch without losing a message. Returns the new
    secret (shown once)."""
    overlap = settings.WEBHOOK_SECRET_OVERLAP_SECONDS if overlap_seconds is None else overlap_seconds
    now = timezone.now()
    secret = secret_new()
    with transaction.atomic():
        WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        expiry = now + timedelta(seconds=overlap)
        for old in endpoint.secrets.filter(expires_at__isnull=True):
            old.expires_at = expiry
            old.save(update_fields=["expires_at"])
        WebhookSecret.objects.create(endpoint=endpoint, secret_encrypted=secret_encrypt(secret))
    log.info("webhook_secret_rotated endpoint=%s overlap_seconds=%s", endpoint.pk, overlap)
    return secret


def endpoint_signing_secrets(*, endpoint, at=None):
    """The secrets that sign now, newest first."""
    at = at or timezone.now()
    return [secret_decrypt(s.secret_encrypted) for s in endpoint.secrets.order_by("-created_at", "-pk")
            if s.expires_at is None or s.expires_at > at]


def endpoint_enable(*, endpoint):
    """Re-enable a disabled endpoint: its deliveries still pending go out again now. An enabled endpoint is left as
    it is (resetting its deliveries' attempts would let a caller skip the backoff and never let them fail)."""
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        if endpoint.enabled:
            return endpoint
        endpoint.enabled, endpoint.disabled_reason, endpoint.disabled_at, endpoint.failing_since = True, "", None, None
        endpoint.save()
        pending = list(endpoint.deliveries.filter(state=WebhookDelivery.State.PENDING).values_list("pk", flat=True))
        WebhookDelivery.objects.filter(pk__in=pending).update(next_attempt_at=timezone.now(), attempts=0,
                                                              lease_until=None)
        _send_after_commit(pending)
    log.info("webhook_endpoint_enabled endpoint=%s pending=%s", endpoint.pk, len(pending))
    return endpoint


# Events ---------------------------------------------------------------------------------------------------------------

def _send_after_commit(delivery_ids):
    ids = list(delivery_ids)
    if ids:
        transaction.on_commit(lambda: [current_app.send_task(DELIVER_TASK, args=[pk]) for pk in ids])


def _partner_id(partner):
    """Events name their partner by instance or by id."""
    return getattr(partner, "pk", partner)


# endpoints_read_once's endpoints by partner id, per thread (None: not in such a block).
_read_once = threading.local()


@contextmanager
def endpoints_read_once():
    """Within this block a partner's enabled endpoints are read once, by the first event that needs them, and reused
    by every event recorded in it (a balance-funded creation records three). Each event is still written when it
    happens, so a savepoint rolled back inside the block takes its events with it; an endpoint added or changed
    inside the block is not seen by the block's events, as if it had come a moment later."""
    if getattr(_read_once, "endpoints", None) is not None:
        yield
        return
    _read_once.endpoints = {}
    try:
        yield
    finally:
        _read_once.endpoints = None


def _enabled_endpoints(partner_ids):
    """{partner id: [enabled endpoints]} for these partners: one read, or none inside endpoints_read_once for
    partners read already."""
    cache = getattr(_read_once, "endpoints", None)
    missing = set(partner_ids) if cache is None else {p for p in partner_ids if p not in cache}
    found = {p: [] for p in missing}
    if missing:
        for e in WebhookEndpoint.objects.filter(partner_id__in=missing, enabled=True).order_by("pk"):
            found[e.partner_id].append(e)
    if cache is None:
        return found
    cache.update(found)
    return {p: cache[p] for p in partner_ids}


def event_record(*, partner, type, payload, subject="", endpoints=None):
    """Record an event for `partner` in the caller's transaction, with a delivery for each enabled endpoint that
    subscribes to `type` (or for the given `endpoints` only), sent after commit. Returns the event."""
    event = WebhookEvent.objects.create(partner=partner, type=type, subject=subject, payload=payload)
    if endpoints is None:
        partner_id = _partner_id(partner)
        endpoints = [e for e in _enabled_endpoints({partner_id})[partner_id] if e.subscribes(type)]
    now = timezone.now()
    deliveries = WebhookDelivery.objects.bulk_create(
        [WebhookDelivery(endpoint=e, event=event, next_attempt_at=now) for e in endpoints])
    _send_after_commit(d.pk for d in deliveries)
    return event


def events_record(*, records):
    """Several events at once (a batch of transfers completing): `records` is a list of (partner, type, subject,
    payload); one read of the endpoints and two inserts for the lot."""
    if not records:
        return []
    endpoints = _enabled_endpoints({_partner_id(partner) for partner, *_ in records})
    events = WebhookEvent.objects.bulk_create([
        WebhookEvent(partner_id=_partner_id(partner), type=type, subject=subject,
                     payload=payload) for partner, type, subject, payload in records])
    now = timezone.now()
    deliveries = WebhookDelivery.objects.bulk_create([
        WebhookDelivery(endpoint=e, event=event, next_attempt_at=now)
        for event in events for e in endpoints.get(event.partner_id, []) if e.subscribes(event.type)])
    _send_after_commit(d.pk for d in deliveries)
    return events


def event_replay(*, event, endpoint=None):
    """Send `event` again, with the same webhook-id: to `endpoint`, or to every enabled endpoint of its partner that
    subscribes to it. A delivered or failed delivery starts a new run of attempts."""
    with transaction.atomic():
        if endpoint is not None:
            targets = [endpoint]
        else:
            targets = [e for e in WebhookEndpoint.objects.filter(partner=event.partner_id, enabled=True)
                       if e.subscribes(event.type)]
        ids = []
        for target in targets:
            delivery, created = WebhookDelivery.objects.select_for_update().get_or_create(
                endpoint=target, event=event, defaults={"next_attempt_at": timezone.now()})
            if not created and delivery.state != WebhookDelivery.State.PENDING:
                delivery.state, delivery.attempts, delivery.delivered_at = WebhookDelivery.State.PENDING, 0, None
                delivery.next_attempt_at, delivery.lease_until = timezone.now(), None
                delivery.save()
            ids.append(delivery.pk)
        _send_after_commit(ids)
    log.info("webhook_event_replayed event=%s deliveries=%s", event.msg_id, len(ids))
    return ids


def endpoint_ping(*, endpoint):
    """A `webhook.test` event to this endpoint only."""
    with transaction.atomic():
        return event_record(partner=endpoint.partner, type=TEST_EVENT, endpoints=[endpoint],
                            payload={"endpoint_id": endpoint.pk, "message": "ping"})
