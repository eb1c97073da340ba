"""Notifications to senders and recipients (payments/services/notifications.py): one outbox row per visible status
change, person and channel, written with the change; the task sends it in the transfer's language with that person's
status link, retries what is worth retrying, records a final failure, and sends once however often it runs; the sweep
hands on rows whose task was lost. Also Stripe's own receipt e-mail (`receipt_email` on the PaymentIntent)."""

import email
import email.policy
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.core import mail
from django.db import transaction
from django.utils import timezone, translation

from common import sms
from payments.models import Notification, Transfer
from payments.services import notifications
from payments.services.quotes import quote_create
from payments.services.transfers import request_fingerprint, transfer_create
from payments.tasks_notifications import notification_send, notifications_sweep
from tests.common import test_sms
from tests.conftest import QUOTE_BODY, new_recipient, stripe_requests
from tests.helpers import force_status, staff_login
from tests.payments import test_payout_partners

pytestmark = pytest.mark.django_db
S = Transfer.Status
SENDER_EMAIL = "aibek@example.com"
# A real HTTP server playing the SMS provider (tests/common/test_sms.py), and HTTPBackend pointed at it.
provider, http_backend = test_sms.provider, test_sms.http_backend
bank = test_payout_partners.bank  # a payout partner (Demir Bank) with its operator's key


@pytest.fixture
def notify(settings):
    """Notifications on (the suite switches them off), SMS kept in memory, retries 5 s then 30 s."""
    settings.NOTIFY_CHANNELS = ["email", "sms"]
    settings.SMS_BACKEND = "common.sms.LocmemBackend"
    settings.NOTIFY_RETRY_SCHEDULE = [5.0, 30.0]
    settings.DEFAULT_FROM_EMAIL = "tulpar <noreply@tulpar.test>"
    settings.PUBLIC_BASE_URL = "https://tulpar.test"
    sms.outbox.clear()
    return settings


def make_transfer(language="en", key="web-1", wallet=None):
    """A web transfer (no partner) made in `language`, its PaymentIntent at localstripe; `wallet` "" for one to a
    phone alone (a claim)."""
    with translation.override(language):
        quote = quote_create(partner=None, source_currency="RUB", source_amount=Decimal("15000.00"))
        transfer, _ = transfer_create(
            partner=None, idempotency_key=key, fingerprint=request_fingerprint({"key": key}), quote_id=quote.id,
            sender={"name": "Aibek Usenov", "phone": "+79161234567", "email": SENDER_EMAIL},
            recipient={"name": "Gulnara Usenova", "phone": "+996555123456",
                       "wallet_address": new_recipient() if wallet is None else wallet})
    return transfer


def funded(transfer):
    transfer.mark_funded(timezone.now())
    transfer.save()
    return transfer


def rows(transfer):
    return sorted(Notification.objects.filter(transfer=transfer).values_list("event", "role", "channel"))


def row(transfer, event, role, channel):
    return Notification.objects.get(transfer=transfer, event=event, role=role, channel=channel)


# The outbox --------------------------------------------------------------------------------------------------------

def test_a_visible_change_writes_one_row_per_person_and_channel_once(notify, pricing, stripe_server):
    """Funding tells the sender (e-mail and SMS) and the recipient (SMS: no e-mail address is collected); telling the
    same change again adds nothing (unique per transfer, event, channel and role). Creation tells nobody."""
    transfer = make_transfer()
    assert rows(transfer) == []
    funded(transfer)
    expected = [("funded", "recipient", "sms"), ("funded", "sender", "email"), ("funded", "sender", "sms")]
    assert rows(transfer) == expected
    notifications.notifications_record(changes=[(transfer.pk, S.AWAITING_FUNDING, S.FUNDED)],
                                       transfers={transfer.pk: transfer})
    assert rows(transfer) == expected


def test_a_hold_tells_only_the_sender_and_a_rejection_nobody(notify, pricing, stripe_server):
    """Held is told to the sender alone (neutral "being checked"); the rejection itself is not told (its refund is,
    to both, since the recipient had been told the money was coming)."""
    transfer = funded(make_transfer())
    transfer.mark_held("name matched a listed entry")
    transfer.save()
    transfer.mark_rejected("compliance rejected it")
    transfer.save()
    transfer.mark_refunding()
    transfer.save()
    told = [r for r in rows(transfer) if r[0] != "funded"]
    assert told == [("held", "sender", "email"), ("held", "sender", "sms"), ("refunding", "recipient", "sms"),
                    ("refunding", "sender", "email"), ("refunding", "sender", "sms")]
    held = Notification.objects.get(transfer=transfer, event="held", channel="email")
    subject, body, _link, _context = notifications.message_render(held, transfer)
    assert not any(word in (subject + body).lower() for word in ("sanction", "compliance", "review", "list"))


def test_a_batch_completion_notifies_through_the_compare_and_set(notify, pricing, stripe_server):
    """The compare-and-set that completes a batch of settling transfers (no instance) writes their rows too."""
    transfer = funded(make_transfer())
    force_status(Transfer.objects.filter(pk=transfer.pk), S.SETTLING)
    assert Transfer.objects.filter(pk=transfer.pk).mark_completed(timezone.now()) == 1
    assert [r for r in rows(transfer) if r[0] == "completed"] == [
        ("completed", "recipient", "sms"), ("completed", "sender", "email"), ("completed", "sender", "sms")]


def test_a_payout_partners_transfer_names_the_partner_to_both(notify, api, partner, pricing, bank):
    """Paid to a payout partner (onchain reports the payout final: the compare-and-set path), both people are told,
    naming the partner; with NOTIFY_PARTNER_TRANSFERS off, a partner's transfers tell nobody."""
    transfer = test_payout_partners.awaiting(api, partner)
    told = row(transfer, "awaiting_payout_confirmation", "recipient", "sms")
    notification_send(told.pk)
    [message] = sms.outbox
    assert message.to == "+996555123456" and "is at Demir Bank" in message.body
    subject, body, _link, _context = notifications.message_render(
        row(transfer, "awaiting_payout_confirmation", "sender", "email"), transfer)
    assert "Demir Bank" in subject and "Demir Bank" in body
    notify.NOTIFY_PARTNER_TRANSFERS = False
    assert notifications.notifications_wanted(transfer, S.COMPLETED) == []


def test_rows_roll_back_with_the_change(notify, pricing, stripe_server):
    """The outbox rows are written in the status change's transaction: a change rolled back leaves none."""
    transfer = make_transfer()
    with pytest.raises(RuntimeError), transaction.atomic():
        funded(Transfer.objects.get(pk=transfer.pk))
        assert len(rows(transfer)) == 3
        raise RuntimeError("the rest of the step failed")
    assert rows(transfer) == []


def test_switched_off_channels_write_nothing(notify, pricing, stripe_server):
    """No channel configured (NOTIFY_CHANNELS empty, as the rest of the suite runs): nothing is written."""
    notify.NOTIFY_CHANNELS = []
    transfer = funded(make_transfer())
    assert rows(transfer) == []


# Sending -----------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("language", "subject_start"), [
    ("en", "Payment received"), ("ru", "Платёж получен"), ("ky", "Төлөм алынды")])
def test_the_email_is_in_the_transfers_language_with_the_senders_link(notify, pricing, stripe_server, language,
                                                                      subject_start):
    """The language chosen when the transfer was made is stored and the e-mail (text and HTML) is written in it, with
    the sender's status link (never the recipient's) and a Message-ID derived from the row (stable across retries)."""
    transfer = funded(make_transfer(language))
    assert Transfer.objects.get(pk=transfer.pk).language == language
    mail.outbox.clear()
    notification_send(row(transfer, "funded", "sender", "email").pk)
    [message] = mail.outbox
    assert message.to == [SENDER_EMAIL]
    assert message.subject.startswith(subject_start)
    sender_link = f"https://tulpar.test/t/{transfer.sender_token}"
    assert sender_link in message.body and transfer.recipient_token not in message.body
    html, mimetype = message.alternatives[0]
    assert mimetype == "text/html" and f'<html lang="{language}">' in html and sender_link in html
    assert message.extra_headers["Message-ID"] == f"<ntf.{transfer.pk}.funded.email.sender@tulpar.test>"
    parsed = email.message_from_bytes(message.message().as_bytes(), policy=email.policy.default)
    assert parsed["Message-ID"].strip() == message.extra_headers["Message-ID"]  # (folded: the id is long)
    assert row(transfer, "funded", "sender", "email").state == "sent"


def test_the_recipients_sms_has_the_recipient_link_in_the_transfers_language(notify, pricing, stripe_server):
    """The recipient's text goes to the recipient's phone with the recipient's status link, keyed by the row."""
    transfer = funded(make_transfer("ru"))
    notification = row(transfer, "funded", "recipient", "sms")
    notification_send(notification.pk)
    [message] = sms.outbox
    assert message.to == "+996555123456"
    assert message.idempotency_key == notification.key
    assert "Aibek отправляет вам" in message.body
    assert f"https://tulpar.test/r/{transfer.recipient_token}" in message.body
    assert transfer.sender_token not in message.body


def test_running_the_task_twice_sends_once(notify, pricing, stripe_server):
    """A sent row is not sent again, and a row claimed by a live worker (lease running) is left to it."""
    transfer = funded(make_transfer())
    mail.outbox.clear()
    emailed = row(transfer, "funded", "sender", "email")
    notification_send(emailed.pk)
    notification_send(emailed.pk)
    assert len(mail.outbox) == 1
    texted = row(transfer, "funded", "sender", "sms")
    Notification.objects.filter(pk=texted.pk).update(state="sending",
                                                     lease_until=timezone.now() + timedelta(minutes=2))
    notification_send(texted.pk)
    assert sms.outbox == [] and row(transfer, "funded", "sender", "sms").state == "sending"


def test_a_send_interrupted_by_a_crash_is_sent_again_with_the_same_key(notify, pricing, stripe_server):
    """A worker that died after claiming (row `sending`, lease run out): the next run sends it with the same
    idempotency key, so a provider that honours the key (LocmemBackend does) delivers one message."""
    transfer = funded(make_transfer())
    texted = row(transfer, "funded", "sender", "sms")
    sms.send_sms("+79161234567", "first try", idempotency_key=texted.key)  # the dead worker's send reached it
    Notification.objects.filter(pk=texted.pk).update(state="sending", attempts=1,
                                                     lease_until=timezone.now() - timedelta(seconds=1))
    notification_send(texted.pk)
    assert len(sms.outbox) == 1
    texted.refresh_from_db()
    assert texted.state == "sent" and texted.attempts == 2


def test_a_row_whose_worker_keeps_dying_is_failed_not_sent_forever(notify, pricing, stripe_server):
    """A row found mid-send after more crashes than the retry schedule allows is failed for an operator to see."""
    transfer = funded(make_transfer())
    texted = row(transfer, "funded", "sender", "sms")
    Notification.objects.filter(pk=texted.pk).update(state="sending", attempts=3,
                                                     lease_until=timezone.now() - timedelta(seconds=1))
    notification_send(texted.pk)
    texted.refresh_from_db()
    assert texted.state == "failed" and "mid-send" in texted.last_error and sms.outbox == []


def test_a_retryable_provider_error_is_retried_after_the_backoff(notify, http_backend, pricing, stripe_server):
    """A 503 from the SMS provider leaves the row pending for 5 s (not sent before then); the retry sends it with the
    same Idempotency-Key."""
    transfer = funded(make_transfer())
    texted = row(transfer, "funded", "sender", "sms")
    http_backend["answers"] += [(503, {}), (200, {"id": "msg_9"})]
    before = timezone.now()
    notification_send(texted.pk)
    texted.refresh_from_db()
    assert texted.state == "pending" and texted.attempts == 1 and "503" in texted.last_error
    assert before + timedelta(seconds=4) < texted.next_attempt_at <= timezone.now() + timedelta(seconds=5)
    notification_send(texted.pk)  # not due yet
    assert len(http_backend["requests"]) == 1
    Notification.objects.filter(pk=texted.pk).update(next_attempt_at=timezone.now())
    notification_send(texted.pk)
    texted.refresh_from_db()
    assert texted.state == "sent" and texted.provider_id == "msg_9" and texted.last_error == ""
    keys = [r["headers"]["Idempotency-Key"] for r in http_backend["requests"]]
    assert keys == [texted.key, texted.key]


@pytest.mark.parametrize(("answers", "attempts"), [([(400, {})], 1), ([(503, {})] * 3, 3)])
def test_a_final_failure_is_recorded(notify, http_backend, pricing, stripe_server, answers, attempts):
    """A final refusal (400) fails the row at once; retryable errors fail it once the schedule (2 retries) is spent.
    A failed row is not tried again."""
    transfer = funded(make_transfer())
    texted = row(transfer, "funded", "sender", "sms")
    http_backend["answers"] += answers
    for _ in range(attempts):
        Notification.objects.filter(pk=texted.pk).update(next_attempt_at=timezone.now())
        notification_send(texted.pk)
    texted.refresh_from_db()
    assert texted.state == "failed" and texted.attempts == attempts and texted.last_error
    notification_send(texted.pk)
    assert len(http_backend["requests"]) == attempts


def test_the_sweep_hands_on_rows_older_than_a_minute_that_are_due(notify, pricing, stripe_server):
    """A row whose task was lost (a crash between commit and enqueue) is handed on once a minute has passed; a young
    row (its own task is on the way), a sent one, and one claimed by a live worker are not."""
    transfer = funded(make_transfer())
    lost, _young, claimed = (row(transfer, "funded", "sender", "email"), row(transfer, "funded", "sender", "sms"),
                            row(transfer, "funded", "recipient", "sms"))
    old = timezone.now() - timedelta(minutes=2)
    Notification.objects.filter(pk__in=[lost.pk, claimed.pk]).update(created_at=old)
    Notification.objects.filter(pk=claimed.pk).update(state="sending",
                                                      lease_until=timezone.now() + timedelta(minutes=1))
    assert notifications.notifications_sweep() == [lost.pk]
    notification_send(lost.pk)
    assert notifications.notifications_sweep() == []
    notifications_sweep()  # the beat task runs the same


# Where the language comes from, Stripe's receipt, admin ---------------------------------------------------------------

def test_an_api_transfer_stores_the_requests_language(notify, api, pricing, stripe_server):
    """A partner's transfer takes the language of its request (Accept-Language); its PaymentIntent asks Stripe to
    e-mail its receipt to the sender (`receipt_email` reaches localstripe and is kept on the PaymentIntent)."""
    quote = api.post("/api/v1/quotes", QUOTE_BODY, format="json").json()
    response = api.post("/api/v1/transfers", {
        "quote_id": quote["id"], "sender": {"name": "Aibek Usenov", "phone": "+79161234567", "email": SENDER_EMAIL},
        "recipient": {"name": "Gulnara", "phone": "+996555123456", "wallet_address": new_recipient()}},
        format="json", HTTP_IDEMPOTENCY_KEY="lang-1", HTTP_ACCEPT_LANGUAGE="ky")
    assert response.status_code == 201, response.content
    transfer = Transfer.objects.get(pk=response.json()["id"])
    assert transfer.language == "ky"
    [created] = [r for r in stripe_requests("/v1/payment_intents") if r["method"] == "POST"
                 and r["path"] == "/v1/payment_intents"]
    assert created["params"]["receipt_email"] == SENDER_EMAIL
    intent = httpx.get(f"{django_settings.STRIPE_API_BASE}/v1/payment_intents/{transfer.payment_intent_id}",
                       headers={"Authorization": f"Bearer {django_settings.STRIPE_SECRET_KEY}"}, timeout=10).json()
    assert intent["receipt_email"] == SENDER_EMAIL


def test_admin_lists_notifications_read_only(notify, client, pricing, stripe_server):
    """Operators see the outbox (event, person, channel, state) and cannot add, change or delete rows."""
    transfer = funded(make_transfer())
    user = get_user_model().objects.create_superuser("ops", "ops@example.com", "a-long-password-123")
    staff_login(client, user)
    page = client.get("/admin/payments/notification/")
    assert page.status_code == 200 and str(transfer.pk) in page.content.decode()
    notification = row(transfer, "funded", "sender", "email")
    assert client.get("/admin/payments/notification/add/").status_code == 403
    assert client.post(f"/admin/payments/notification/{notification.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Notification.objects.filter(pk=notification.pk).exists()


def test_a_transfer_to_a_phone_tells_the_recipient_to_claim_it_not_that_money_is_coming(notify, pricing, stripe_server):
    """Paid with no wallet (a claim): no "funded" message (it would say the money is on its way); `awaiting_claim`
    tells the recipient by SMS, with the recipient link, to claim it, and the sender that the recipient was told."""
    transfer = funded(make_transfer(key="claim-n", wallet=""))
    assert rows(transfer) == []
    transfer.mark_awaiting_claim()
    transfer.save()
    assert rows(transfer) == [("awaiting_claim", "recipient", "sms"), ("awaiting_claim", "sender", "email"),
                              ("awaiting_claim", "sender", "sms")]
    notification_send(notification_id=row(transfer, "awaiting_claim", "recipient", "sms").pk)
    text = sms.outbox[-1].body
    assert sms.outbox[-1].to == "+996555123456"
    assert "claim" in text and f"https://tulpar.test/r/{transfer.recipient_token}" in text
    # Claimed (a wallet named, back to funded): both already know; nothing new until it completes.
    transfer.recipient_wallet = new_recipient()
    transfer.mark_claimed()
    transfer.save()
    assert [r for r in rows(transfer) if r[0] == "funded"] == []


def test_nothing_is_sent_for_a_transfer_never_paid(notify, pricing, stripe_server):
    """A form with any phone and e-mail, then cancel or let it expire: no row, no text, no e-mail (no SMS pumping)."""
    for key, move in (("unpaid-1", lambda t: t.mark_cancelled("cancelled by the sender")),
                      ("unpaid-2", lambda t: t.mark_expired())):
        transfer = make_transfer(key=key)
        move(transfer)
        transfer.save()
        assert rows(transfer) == []
    assert sms.outbox == [] and mail.outbox == []


def test_a_rejected_phone_only_transfer_is_not_the_recipients_first_news(notify, pricing, stripe_server):
    """Paid to a phone, held and rejected before the claim message went out: the refund is told to the sender only;
    the recipient, never told of it, hears nothing."""
    transfer = funded(make_transfer(key="claim-r", wallet=""))
    transfer.mark_held("name matched a listed entry")
    transfer.save()
    transfer.mark_rejected("compliance rejected it")
    transfer.save()
    transfer.mark_refunding()
    transfer.save()
    assert [r for r in rows(transfer) if r[1] == "recipient"] == []
    assert ("refunding", "sender", "email") in rows(transfer)
