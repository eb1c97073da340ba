"""Operator alerts delivered to people: by e-mail (ALERT_EMAILS) and to a chat or incident webhook (ALERT_WEBHOOK_URL,
Slack-compatible `{"text": ...}`), once when raised, then again every ALERT_RESEND_MINUTES while the alert stays open
and nobody has acknowledged it.

Persist, then act: a round's rows (AlertDelivery, one per channel) are written in the transaction that raises the
alert or in the sweep; tasks send them after commit, claiming each row with a lease so two workers never send the same
row at once. A worker that dies mid-send leaves the row to the sweep once its lease runs out (an alert may then arrive
twice, never not at all). The webhook URL is a secret: it is read from settings at send time and never logged,
stored or passed to a task (tasks carry delivery ids)."""

import logging
from datetime import timedelta

import requests
from celery import current_app
from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from onchain.models import OperatorAlert
from onchain.models_alerts import AlertDelivery

log = logging.getLogger(__name__)

DELIVER_TASK = "onchain.alert_deliver"
Channel, Status = AlertDelivery.Channel, AlertDelivery.Status
LOST_AFTER = timedelta(minutes=10)


class AlertDeliveryFailed(Exception):
    """A channel did not take the alert this time (the task retries). Internal to the worker: never an API answer,
    so not an ApplicationError (whose codes are the API's documented problem types). `detail`: what to record (a
    status or an exception's class name, never a URL)."""

    def __init__(self, detail):
        super().__init__(detail)
        self.detail = detail


def alert_channels():
    """The channels configured now: e-mail with recipients, the webhook with a URL."""
    channels = []
    if settings.ALERT_EMAILS:
        channels.append(Channel.EMAIL)
    if settings.ALERT_WEBHOOK_URL:
        channels.append(Channel.WEBHOOK)
    return channels


def _round_due(alert, now):
    every = settings.ALERT_RESEND_MINUTES
    if every <= 0:
        return 0
    return max(int((now - alert.created_at) / timedelta(minutes=every)), 0)


def alert_deliveries_plan(*, alert, now):
    """The rows of the round due at `now` for an open, unacknowledged alert (round 0 when raised, round n from
    n × ALERT_RESEND_MINUTES after it; rounds missed while nothing ran are not made up). Idempotent: a round's rows
    exist once. Sends them after the caller's transaction commits. Returns the ids of rows planned now."""
    if alert.resolved_at is not None or alert.acknowledged_at is not None:
        return []
    round_ = _round_due(alert, now)
    rows = [AlertDelivery(alert=alert, channel=c, round=round_, created_at=now) for c in alert_channels()]
    if not rows:
        return []
    AlertDelivery.objects.bulk_create(rows, ignore_conflicts=True)
    ids = list(AlertDelivery.objects.filter(alert=alert, round=round_, status=Status.PENDING, created_at=now)
               .values_list("pk", flat=True))
    if ids:
        transaction.on_commit(lambda: [current_app.send_task(DELIVER_TASK, args=[pk]) for pk in ids])
    return ids


def alerts_sweep(*, now=None):
    """The beat's pass: the reminder rounds now due, and rows whose task was lost (pending, lease run out).
    Returns the delivery ids it sent to the queue."""
    now = now or timezone.now()
    planned = []
    open_alerts = OperatorAlert.objects.filter(resolved_at__isnull=True, acknowledged_at__isnull=True)
    for alert in open_alerts.order_by("pk").iterator():
        with transaction.atomic():
            planned += alert_deliveries_plan(alert=alert, now=now)
    # Rows queued a while ago and not being sent: their task was lost (a retry's wait is shorter than this).
    lost = list(AlertDelivery.objects.filter(status=Status.PENDING, created_at__lt=now - LOST_AFTER)
                .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now)).exclude(pk__in=planned)
                .order_by("pk").values_list("pk", flat=True)[:500])
    for pk in lost:
        current_app.send_task(DELIVER_TASK, args=[pk])
    return planned + lost


def _text(alert, round_):
    where = " ".join(x for x in (alert.wallet and f"wallet {alert.wallet.address}",
                                 alert.token and f"token {alert.token.symbol}") if x)
    again = f" (reminder {round_}: still open, not acknowledged)" if round_ else ""
    link = f"{settings.PUBLIC_BASE_URL}/admin/onchain/operatoralert/{alert.pk}/change/"
    subject = f"[tulpar] {alert.get_kind_display()}{again}"
    body = (f"{alert.get_kind_display()}{again}\n{alert.message}\n{where}\nraised {alert.created_at:%Y-%m-%d %H:%M} "
            f"UTC; acknowledge or resolve it (with a reason): {link}").replace("\n\n", "\n")
    return subject, body


def slack_escape(text):
    """Slack's control characters escaped: a message quoting a partner's words cannot ping a channel (<!channel>) or
    dress a link (<https://…|Acknowledge>) in our alert."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _send(delivery):
    subject, body = _text(delivery.alert, delivery.round)
    if delivery.channel == Channel.EMAIL:
        send_mail(subject, body, settings.ALERT_EMAIL_FROM or settings.DEFAULT_FROM_EMAIL, settings.ALERT_EMAILS,
                  fail_silently=False)
        return
    try:
        response = requests.post(settings.ALERT_WEBHOOK_URL, json={"text": slack_escape(body)}, allow_redirects=False,
                                 timeout=(5, settings.ALERT_WEBHOOK_TIMEOUT_SECONDS))
    except requests.RequestException as exc:
        # Never str(exc): requests puts the (secret) URL in its messages.
        raise AlertDeliveryFailed(type(exc).__name__) from None
    if not 200 <= response.status_code < 300:
        raise AlertDeliveryFailed(f"HTTP {response.status_code}")


def alert_delivery_attempt(*, delivery_id, now=None):
    """One attempt at one row. Sent: done. Refused by the channel: AlertDeliveryFailed (the task retries), or, after
    ALERT_DELIVERY_ATTEMPTS, the row is given up (logged; the next reminder round tries again). Acknowledged or
    resolved meanwhile: skipped. Returns the row's status."""
    now = now or timezone.now()
    lease = now + timedelta(seconds=settings.ALERT_WEBHOOK_TIMEOUT_SECONDS + 30)
    claimed = (AlertDelivery.objects.filter(pk=delivery_id, status=Status.PENDING)
               .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
               .update(lease_until=lease, attempts=F("attempts") + 1))
    delivery = AlertDelivery.objects.select_related("alert__wallet", "alert__token").get(pk=delivery_id)
    if not claimed:
        return delivery.status  # sent, given up, or another worker holds it
    alert = delivery.alert
    if alert.resolved_at is not None or alert.acknowledged_at is not None:
        AlertDelivery.objects.filter(pk=delivery.pk).update(status=Status.SKIPPED, lease_until=None)
        return Status.SKIPPED
    try:
        _send(delivery)
    except Exception as exc:  # noqa: BLE001 - SMTP, HTTP and DNS errors alike: record the kind, retry
        detail = exc.detail if isinstance(exc, AlertDeliveryFailed) else type(exc).__name__
        gave_up = delivery.attempts >= settings.ALERT_DELIVERY_ATTEMPTS
        AlertDelivery.objects.filter(pk=delivery.pk).update(
            lease_until=None, last_error=detail[:200], status=Status.FAILED if gave_up else Status.PENDING)
        log.error("alert_delivery_failed alert=%s channel=%s round=%s attempt=%s error=%s gave_up=%s", alert.pk,
                  delivery.channel, delivery.round, delivery.attempts, detail, gave_up)
        if gave_up:
            return Status.FAILED
        raise AlertDeliveryFailed(detail) from None
    AlertDelivery.objects.filter(pk=delivery.pk).update(status=Status.SENT, sent_at=timezone.now(), lease_until=None,
                                                        last_error="")
    log.info("alert_delivered alert=%s channel=%s round=%s", alert.pk, delivery.channel, delivery.round)
    return Status.SENT
