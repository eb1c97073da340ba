"""Telling senders and recipients what happened to their transfer (docs/notifications.md).

Persist, then act: a common.status.StatusListener writes one outbox row per (transfer, event, channel, role) in the
transaction of the status change (a unique constraint makes a repeat a no-op); after commit a task per row sends it;
the beat sweep hands on rows whose task was lost (a crash between commit and enqueue) and retries that are due.
Sending claims the row (`sending`, under a lease) before asking the provider and marks it `sent` after, so a task
that runs twice sends once; a worker that dies mid-send leaves the row to be sent again when the lease runs out, with
the same SMS idempotency key and the same e-mail Message-ID (a provider or mail client that honours them shows one).
Task arguments carry the row id only: addresses and text are read from the transfer when sending."""

import logging
import smtplib
from datetime import timedelta

from celery import current_app
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import formats, timezone, translation

from common import sms
from common.status import status_listener_register
from payments.models import Notification, PartnerPayout, Transfer
from payments.services.notification_texts import MESSAGES, RECIPIENT, RECIPIENT_ONLY_IF_TOLD, SENDER

log = logging.getLogger(__name__)
S = Transfer.Status
SEND_TASK = "payments.notification_send"
PENDING, SENDING, SENT, FAILED = (Notification.State.PENDING, Notification.State.SENDING, Notification.State.SENT,
                                  Notification.State.FAILED)
# The recipient gave no e-mail address: SMS only.
CHANNELS_OF = {SENDER: (Notification.Channel.EMAIL, Notification.Channel.SMS), RECIPIENT: (Notification.Channel.SMS,)}
# The sweep leaves a row this long to the task enqueued at its commit.
SWEEP_GRACE = timedelta(minutes=1)



class SendError(Exception):
    def __init__(self, message, *, retryable):
        super().__init__(message)
        self.retryable = retryable


def lease_seconds():
    # A send cannot outlive its task's hard time limit; past it, the claim is surely a dead worker's.
    return settings.CELERY_TASK_TIME_LIMIT + 60


# Recording (in the status change's transaction) -----------------------------------------------------------------------

def notifications_wanted(transfer, status, source=None):
    """(role, channel) pairs to tell about `transfer` reaching `status` from `source`, per docs/notifications.md."""
    if not transfer.livemode or status not in MESSAGES:
        return []
    # Nobody is told anything before money was paid: an unpaid transfer's phone and e-mail are whatever a form was
    # given, and texts to any number at our cost (SMS pumping) must not be one form post away.
    if transfer.funded_at is None:
        return []
    if transfer.partner_id is not None and not settings.NOTIFY_PARTNER_TRANSFERS:
        return []
    # "funded" says the money is on its way: not with no destination yet (`awaiting_claim` follows at once and says
    # what to do), nor on the way back from a claim (both were told already).
    if status == S.FUNDED and (not transfer.recipient_wallet or source == S.AWAITING_CLAIM):
        return []
    roles = [role for role in MESSAGES[status]
             if not (role == RECIPIENT and status in RECIPIENT_ONLY_IF_TOLD and not _recipient_was_told(transfer))]
    return [(role, channel) for role in roles for channel in CHANNELS_OF[role]
            if channel in settings.NOTIFY_CHANNELS]


def _recipient_was_told(transfer):
    """Whether the recipient heard of this transfer (a phone-only transfer held and rejected before its claim message
    never reached them: its refund must not be the first they hear of it)."""
    return Notification.objects.filter(transfer_id=transfer.pk, role=RECIPIENT).exists()


def notifications_record(*, changes, transfers):
    """In the caller's transaction: the outbox rows for `changes` ((pk, source, target) per transfer), enqueued on
    commit. Returns the rows' ids."""
    now = timezone.now()
    rows = [Notification(transfer_id=pk, event=target, channel=channel, role=role, next_attempt_at=now)
            for pk, source, target in changes if pk in transfers and source != target
            for role, channel in notifications_wanted(transfers[pk], target, source)]
    if not rows:
        return []
    # A repeat (the same status told again) changes nothing: the unique constraint keeps the first row.
    Notification.objects.bulk_create(rows, ignore_conflicts=True)
    ids = list(Notification.objects.filter(
        transfer_id__in={r.transfer_id for r in rows}, event__in={r.event for r in rows}, state=PENDING,
        attempts=0).values_list("pk", flat=True))
    # robust: a broker that is down must not turn a committed status change into an error; the sweep sends it.
    transaction.on_commit(lambda: _enqueue(ids), robust=True)
    return ids


def _enqueue(ids, countdown=None):
    for pk in ids:
        current_app.send_task(SEND_TASK, args=[pk], countdown=countdown)


class TransferNotifications:
    """The StatusListener of Transfer: an outbox row per visible change, per person and channel."""

    def status_changed(self, *, model, changes, instance):
        if not settings.NOTIFY_CHANNELS:
            return
        if instance is not None:
            transfers = {instance.pk: instance}
        else:
            transfers = Transfer.objects.only("pk", "livemode", "partner_id", "funded_at").in_bulk(
                [pk for pk, _, _ in changes])
        notifications_record(changes=changes, transfers=transfers)


_LISTENER = TransferNotifications()


def connect():
    status_listener_register(Transfer, _LISTENER)


# Sending -------------------------------------------------------------------------------------------------------------

def _due(now):
    return Notification.objects.filter(state__in=[PENDING, SENDING], next_attempt_at__lte=now).filter(
        Q(lease_until__isnull=True) | Q(lease_until__lt=now))


def _claim(notification_id, now):
    with transaction.atomic():
        row = _due(now).filter(pk=notification_id).select_for_update(skip_locked=True).first()
        if row is None:
            return None  # sent, failed, not due yet, or another worker holds it
        if row.state == SENDING:
            if row.attempts > len(settings.NOTIFY_RETRY_SCHEDULE):
                # Workers keep dying on this one (a crash loop): stop, an operator sees it failed in admin.
                row.state, row.lease_until, row.last_error = FAILED, None, "the worker stopped mid-send every attempt"
                row.save(update_fields=["state", "lease_until", "last_error", "updated_at"])
                log.error("notification_failed notification=%s transfer_id=%s error=crash-loop", row.pk,
                          row.transfer_id)
                return None
            log.warning("notification_resend_after_crash notification=%s transfer_id=%s", row.pk, row.transfer_id)
        row.state, row.attempts = SENDING, row.attempts + 1
        row.lease_until = now + timedelta(seconds=lease_seconds())
        row.save(update_fields=["state", "attempts", "lease_until", "updated_at"])
        return row


def notification_send(*, notification_id):
    """One attempt at one outbox row if it is due and unclaimed. Returns the row, or None if there was nothing to do;
    a retryable failure leaves it pending with its next attempt scheduled (returned in `retry_in`)."""
    row = _claim(notification_id, timezone.now())
    if row is None:
        return None
    transfer = Transfer.objects.select_related("quote").get(pk=row.transfer_id)
    try:
        provider_id = _deliver(row, transfer)
    except SendError as exc:
        return _failed(row, exc)
    except (ValueError, KeyError, TypeError) as exc:  # a message that cannot be made (bad data): no retry helps
        log.exception("notification_unsendable notification=%s transfer_id=%s", row.pk, row.transfer_id)
        return _failed(row, SendError(f"cannot make the message: {type(exc).__name__}", retryable=False))
    Notification.objects.filter(pk=row.pk, state=SENDING).update(
        state=SENT, sent_at=timezone.now(), provider_id=provider_id[:100], lease_until=None, last_error="",
        updated_at=timezone.now())
    log.info("notification_sent notification=%s transfer_id=%s event=%s channel=%s role=%s attempt=%s", row.pk,
             row.transfer_id, row.event, row.channel, row.role, row.attempts)
    row.state, row.retry_in = SENT, None
    return row


def _failed(row, exc):
    now = timezone.now()
    schedule = settings.NOTIFY_RETRY_SCHEDULE
    delay = schedule[row.attempts - 1] if exc.retryable and row.attempts <= len(schedule) else None
    if delay is None:
        row.state = FAILED
    else:
        row.state, row.next_attempt_at = PENDING, now + timedelta(seconds=delay)
    row.last_error, row.lease_until = str(exc)[:300], None
    Notification.objects.filter(pk=row.pk, state=SENDING).update(
        state=row.state, next_attempt_at=row.next_attempt_at, last_error=row.last_error, lease_until=None,
        updated_at=now)
    log.warning("notification_failed notification=%s transfer_id=%s channel=%s attempt=%s retry_in=%s error=%s",
                row.pk, row.transfer_id, row.channel, row.attempts, delay, row.last_error)
    row.retry_in = delay
    if delay is not None and delay <= settings.NOTIFY_RETRY_INLINE_MAX_SECONDS:
        _enqueue([row.pk], countdown=delay)  # sooner ones on the task itself; the sweep finds the rest when due
    return row


def notifications_sweep(*, limit=500):
    """Rows due whose task was lost (older than a minute: the task enqueued at commit had its chance), whose retry
    came, or whose worker died mid-send (lease run out): each handed to the worker. Returns their ids."""
    now = timezone.now()
    ids = list(_due(now).filter(created_at__lte=now - SWEEP_GRACE).order_by("next_attempt_at")
               .values_list("pk", flat=True)[:limit])
    _enqueue(ids)
    if ids:
        log.info("notifications_swept count=%s", len(ids))
    return ids


# Content ------------------------------------------------------------------------------------------------------------

def _money(amount, currency):
    return f"{formats.number_format(amount, 2, use_l10n=True, force_grouping=True)}\u00a0{currency}"


def status_link(transfer, role):
    name, token = (("web:sender_status", transfer.sender_token) if role == SENDER
                   else ("web:recipient_status", transfer.recipient_token))
    return settings.PUBLIC_BASE_URL + reverse(name, kwargs={"token": token})


def message_render(row, transfer):
    """(subject, body, link, context) in the transfer's language."""
    with translation.override(transfer.language):
        subject, body = MESSAGES[row.event][row.role]
        partner = (PartnerPayout.objects.select_related("payout_partner").filter(transfer=transfer)
                   .values_list("payout_partner__name", flat=True).first())
        quote = transfer.quote
        values = {"source": _money(quote.source_amount, quote.source_currency),
                  "target": _money(quote.target_amount, quote.target_currency),
                  "name": transfer.recipient_name, "sender": (transfer.sender_name.split() or [""])[0],
                  "partner": partner or ""}
        # One line: a name with a line break must not break the Subject header (or the text).
        subject, body = " ".join((str(subject) % values).split()), str(body) % values
        link = status_link(transfer, row.role)
        context = {"subject": subject, "body": body, "link": link, "language": transfer.language,
                   "greeting_name": transfer.sender_name if row.role == SENDER else transfer.recipient_name}
        return subject, body, link, context


def _deliver(row, transfer):
    subject, body, link, context = message_render(row, transfer)
    if row.channel == Notification.Channel.SMS:
        to = transfer.sender_phone if row.role == SENDER else transfer.recipient_phone
        try:
            return sms.send_sms(to, f"tulpar: {subject}. {link}", idempotency_key=row.key)
        except sms.SMSError as exc:
            raise SendError(f"sms: {exc}", retryable=exc.retryable) from None
    with translation.override(transfer.language):
        text = render_to_string("notifications/email.txt", context)
        html = render_to_string("notifications/email.html", context)
    domain = settings.DEFAULT_FROM_EMAIL.rpartition("@")[2].strip(">") or "localhost"
    message = EmailMultiAlternatives(
        subject=subject, body=text, from_email=settings.DEFAULT_FROM_EMAIL, to=[transfer.sender_email],
        headers={"Message-ID": f"<{row.key}@{domain}>", "Auto-Submitted": "auto-generated",
                 "Content-Language": transfer.language})
    message.attach_alternative(html, "text/html")
    try:
        message.send()
    except (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError) as exc:
        raise SendError(f"email: {type(exc).__name__}", retryable=True) from None
    except smtplib.SMTPResponseException as exc:
        # 4xx is the server's "try again later"; 5xx a permanent refusal.
        raise SendError(f"email: {type(exc).__name__} {exc.smtp_code}", retryable=400 <= exc.smtp_code < 500) from None
    except smtplib.SMTPException as exc:  # recipients refused, and the rest: final
        raise SendError(f"email: {type(exc).__name__}", retryable=False) from None
    except OSError as exc:  # the network (SMTPException is an OSError too, hence last)
        raise SendError(f"email: {type(exc).__name__}", retryable=True) from None
    return row.key
