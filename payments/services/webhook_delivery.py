"""Sending webhook deliveries, at least once, in order per subject: a delivery is claimed under a lease (a killed
worker's claim runs out and the sweep hands it to another, with the same webhook-id), signed with every current
secret, POSTed to the checked address, and its answer recorded. A 2xx delivers it; anything else schedules the next
attempt (WEBHOOK_RETRY_SCHEDULE with jitter, never sooner than a 429/503's Retry-After) until the schedule ends;
an endpoint that keeps failing is disabled, and the partner and operators are told."""

import email.utils
import json
import logging
import random
from datetime import UTC, timedelta

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from onchain.api import operator_alert_raise
from payments.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from payments.services import webhook_net
from payments.services.webhooks import DELIVER_TASK, ENDPOINT_DISABLED, endpoint_signing_secrets, event_record

log = logging.getLogger(__name__)
PENDING, DELIVERED, FAILED = WebhookDelivery.State.values[:3]
_jitter = random.Random()


def message_body(event):
    """The signed body (the same on every attempt): Standard Webhooks' {type, timestamp, data}."""
    return json.dumps({"type": event.type, "timestamp": event.created_at.astimezone(UTC).isoformat(),
                       "data": event.payload}, separators=(",", ":"), sort_keys=True)


def sign(*, secrets, msg_id, timestamp, body):
    """`webhook-signature`: one `v1,<base64>` per secret, space separated."""
    return " ".join(Webhook(secret).sign(msg_id=msg_id, timestamp=timestamp, data=body) for secret in secrets)


def _earlier_pending():
    # An earlier event about the same subject still pending for the same endpoint: this one waits for it.
    return Exists(WebhookDelivery.objects.filter(
        endpoint=OuterRef("endpoint"), state=PENDING, event__subject=OuterRef("event__subject"),
        event__id__lt=OuterRef("event_id")).exclude(event__subject=""))


def _due(now):
    return WebhookDelivery.objects.filter(state=PENDING, endpoint__enabled=True, next_attempt_at__lte=now).filter(
        Q(lease_until__isnull=True) | Q(lease_until__lt=now))


def _claim(delivery_id, now):
    with transaction.atomic():
        delivery = (_due(now).filter(pk=delivery_id).annotate(blocked=_earlier_pending())
                    .select_for_update(skip_locked=True, of=("self",)).select_related("endpoint", "event").first())
        if delivery is None or delivery.blocked:
            return None
        delivery.attempts += 1
        delivery.lease_until = now + timedelta(seconds=settings.WEBHOOK_LEASE_SECONDS)
        delivery.save(update_fields=["attempts", "lease_until"])
        return delivery


def _retry_after(headers, now):
    value = {k.lower(): v for k, v in headers.items()}.get("retry-after")
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # "²" is a digit to isdigit(); 10,000 digits would not fit the clock
        return int(value[:9])
    try:
        return max(0, int((email.utils.parsedate_to_datetime(value) - now).total_seconds()))
    except (TypeError, ValueError):
        return None


def next_delay(*, attempts, retry_after=None):
    """Seconds before attempt `attempts + 1`, or None when the schedule is spent."""
    schedule = settings.WEBHOOK_RETRY_SCHEDULE
    if attempts > len(schedule):
        return None
    delay = schedule[attempts - 1] * _jitter.uniform(1 - settings.WEBHOOK_RETRY_JITTER,
                                                      1 + settings.WEBHOOK_RETRY_JITTER)
    if retry_after is not None:
        delay = max(delay, min(retry_after, settings.WEBHOOK_RETRY_AFTER_MAX_SECONDS))
    return delay


def delivery_attempt(*, delivery_id):
    """One attempt at one delivery, if it is due and not claimed (returns the attempt, or None)."""
    now = timezone.now()
    delivery = _claim(delivery_id, now)
    if delivery is None:
        return None
    endpoint, event = delivery.endpoint, delivery.event
    body = message_body(event)
    sent_at = timezone.now()
    headers = {"content-type": "application/json", "user-agent": "tulpar-webhooks/1",
               "webhook-id": event.msg_id, "webhook-timestamp": str(int(sent_at.timestamp())),
               "webhook-signature": sign(secrets=endpoint_signing_secrets(endpoint=endpoint, at=sent_at),
                                         msg_id=event.msg_id, timestamp=sent_at, body=body)}
    answer = webhook_net.post(endpoint.url, body=body.encode(), headers=headers)
    return _record(delivery.pk, answer)


def _record(delivery_id, answer):
    now = timezone.now()
    ok = answer.status_code is not None and 200 <= answer.status_code < 300
    endpoint_id = WebhookDelivery.objects.values_list("endpoint_id", flat=True).get(pk=delivery_id)
    with transaction.atomic():
        # Endpoint, then delivery: the order endpoint_enable takes them in.
        endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint_id)
        delivery = WebhookDelivery.objects.select_for_update(of=("self",)).select_related("event").get(pk=delivery_id)
        attempt = WebhookAttempt.objects.create(
            delivery=delivery, number=delivery.attempt_log.count() + 1, status_code=answer.status_code,
            response_snippet=answer.body[:500], error=answer.error[:300], duration_ms=answer.duration_ms)
        delivery.last_status_code, delivery.last_error, delivery.lease_until = answer.status_code, answer.error[:300], None
        if ok:
            delivery.state, delivery.delivered_at = DELIVERED, now
            if endpoint.failing_since is not None:
                endpoint.failing_since = None
                endpoint.save(update_fields=["failing_since", "updated_at"])
            # The next event about the same subject, waiting on this one, goes now.
            following = (WebhookDelivery.objects.filter(endpoint=endpoint, state=PENDING,
                                                        event__subject=delivery.event.subject,
                                                        event__id__gt=delivery.event_id)
                         .exclude(event__subject="").order_by("event_id").values_list("pk", flat=True).first())
            if following:
                transaction.on_commit(lambda: current_app.send_task(DELIVER_TASK, args=[following]))
        else:
            retry_after = _retry_after(answer.headers, now) if answer.status_code in (429, 503) else None
            delay = next_delay(attempts=delivery.attempts, retry_after=retry_after)
            if endpoint.failing_since is None:
                endpoint.failing_since = now
                endpoint.save(update_fields=["failing_since", "updated_at"])
            failing_for = (now - endpoint.failing_since).total_seconds()
            if delay is None:
                delivery.state, delivery.next_attempt_at = FAILED, None
            else:
                delivery.next_attempt_at = now + timedelta(seconds=delay)
                if delay <= settings.WEBHOOK_RETRY_INLINE_MAX_SECONDS:
                    pk = delivery.pk
                    transaction.on_commit(lambda: current_app.send_task(DELIVER_TASK, args=[pk], countdown=delay))
            if delay is None or failing_for >= settings.WEBHOOK_DISABLE_AFTER_SECONDS:
                endpoint_disable(endpoint=endpoint, reason=(
                    f"failing since {endpoint.failing_since:%Y-%m-%d %H:%M} UTC; last: "
                    f"{answer.status_code or answer.error}")[:300])
        delivery.save()
    log.info("webhook_attempt delivery=%s event=%s endpoint=%s attempt=%s status=%s error=%s", delivery.pk,
             delivery.event.msg_id, endpoint.pk, delivery.attempts, answer.status_code, answer.error[:100])
    return attempt


def endpoint_disable(*, endpoint, reason):
    """In the caller's transaction (endpoint row locked): disabled, an operator alert, and a
    `webhook_endpoint.disabled` event to the partner's other endpoints (and its event list)."""
    if not endpoint.enabled:
        return endpoint
    endpoint.enabled, endpoint.disabled_at, endpoint.disabled_reason = False, timezone.now(), reason[:300]
    endpoint.save(update_fields=["enabled", "disabled_at", "disabled_reason", "updated_at"])
    operator_alert_raise(kind="webhook", message=f"webhook endpoint {endpoint.pk} of partner {endpoint.partner_id} "
                                                 f"disabled: {reason}")
    event_record(partner=endpoint.partner, type=ENDPOINT_DISABLED, subject=f"endpoint:{endpoint.pk}",
                 payload={"endpoint_id": endpoint.pk, "url": endpoint.url, "reason": reason})
    log.error("webhook_endpoint_disabled endpoint=%s partner=%s reason=%s", endpoint.pk, endpoint.partner_id, reason)
    return endpoint


def deliveries_sweep(*, limit=200):
    """Due deliveries whose task was lost, whose retry time came, or whose worker died mid-delivery (lease run out):
    each handed to the worker. Returns how many."""
    now = timezone.now()
    ids = list(_due(now).annotate(blocked=_earlier_pending()).filter(blocked=False).order_by("next_attempt_at")
               .values_list("pk", flat=True)[:limit])
    for pk in ids:
        current_app.send_task(DELIVER_TASK, args=[pk])
    return len(ids)
