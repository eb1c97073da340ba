"""Operator alerts reach people: one e-mail and one chat-webhook POST (real HTTP to a local server) per alert, no
second notice for the same open condition, reminders every ALERT_RESEND_MINUTES while it stays open, none once
acknowledged (with a reason, in admin); resolving needs a reason. Time is driven through `now`, never slept."""

import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core import mail
from django.utils import timezone

from onchain.api import operator_alert_raise
from onchain.models import AlertDelivery, OperatorAlert
from onchain.services.alert_delivery import AlertDeliveryFailed, alert_delivery_attempt, alerts_sweep
from staff.models import AuditEntry
from tests.helpers import staff_login
from tests.security.factories import staff_user

pytestmark = pytest.mark.django_db
ALERTS = "/admin/onchain/operatoralert/"


class ChatServer:
    """A Slack-compatible incoming-webhook receiver on 127.0.0.1: records each POSTed JSON body and answers the next
    status of `statuses` (then 200)."""

    def __init__(self):
        self.bodies, self.statuses = [], []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                server.bodies.append(json.loads(body))
                status = server.statuses.pop(0) if server.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # The path stands for the secret part of a real incoming-webhook URL.
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/services/T000/B000/s3cr3t-hook-token"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def chat(settings):
    server = ChatServer()
    settings.ALERT_WEBHOOK_URL = server.url
    settings.ALERT_EMAILS = ["ops@example.com", "oncall@example.com"]
    settings.ALERT_RESEND_MINUTES = 60
    settings.ALERT_DELIVERY_ATTEMPTS = 3
    yield server
    server.close()


def deliver_pending(now=None):
    """What the worker does for each queued delivery: one attempt per pending row."""
    return [alert_delivery_attempt(delivery_id=pk, now=now)
            for pk in AlertDelivery.objects.filter(status="pending").order_by("pk").values_list("pk", flat=True)]


def raise_stale_rates():
    return operator_alert_raise(kind="rates", message="nbkr rates not refreshed: HTTP 503")


def test_a_raised_alert_sends_one_email_and_one_webhook_post(chat, django_capture_on_commit_callbacks):
    """Raising an alert plans one delivery per channel and queues them after commit; delivering them sends one
    e-mail (to every ALERT_EMAILS address) and one `{"text": ...}` POST naming the kind, the message and the admin
    page. Raising the same open condition again (the next pass) plans and sends nothing more."""
    with django_capture_on_commit_callbacks() as queued:
        alert = raise_stale_rates()
    assert len(queued) == 1
    assert sorted(AlertDelivery.objects.values_list("channel", "round")) == [("email", 0), ("webhook", 0)]
    assert deliver_pending() == ["sent", "sent"]
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["ops@example.com", "oncall@example.com"]
    assert "official rates not fetched or stale" in mail.outbox[0].subject
    assert "HTTP 503" in mail.outbox[0].body
    assert len(chat.bodies) == 1 and set(chat.bodies[0]) == {"text"}
    assert "HTTP 503" in chat.bodies[0]["text"] and f"/operatoralert/{alert.pk}/change/" in chat.bodies[0]["text"]

    with django_capture_on_commit_callbacks() as queued_again:
        assert raise_stale_rates().pk == alert.pk
    assert queued_again == [] and AlertDelivery.objects.count() == 2
    assert deliver_pending() == []
    assert (len(mail.outbox), len(chat.bodies)) == (1, 1)


def test_a_changing_figure_is_one_alert_not_one_per_pass(chat):
    """Low gas names a fixed subject: a lower balance on the next pass updates the open alert's message instead of
    opening (and sending) a second one."""
    from onchain.services.alerts import alert_raise

    first = alert_raise(kind="low_gas", message="gas balance 90 wei is below 100", subject="below floor")
    again = alert_raise(kind="low_gas", message="gas balance 80 wei is below 100", subject="below floor")
    assert again.pk == first.pk and OperatorAlert.objects.get(pk=first.pk).message.startswith("gas balance 80")
    assert OperatorAlert.objects.count() == 1 and AlertDelivery.objects.count() == 2


def test_reminders_while_open_then_none_once_acknowledged(chat, client):
    """Still open an interval later, the alert is sent again (round 1, marked as a reminder), once however often the
    sweep runs; not before the interval. An operator acknowledges it in admin with a reason (audit trail): the next
    interval sends nothing."""
    alert = raise_stale_rates()
    deliver_pending()
    start = OperatorAlert.objects.get(pk=alert.pk).created_at

    assert alerts_sweep(now=start + timedelta(minutes=59)) == []
    planned = alerts_sweep(now=start + timedelta(minutes=61))
    assert len(planned) == 2
    assert alerts_sweep(now=start + timedelta(minutes=62)) == []
    assert deliver_pending(now=start + timedelta(minutes=61)) == ["sent", "sent"]
    assert len(mail.outbox) == 2 and "reminder 1" in mail.outbox[1].subject
    assert len(chat.bodies) == 2 and "reminder 1" in chat.bodies[1]["text"]

    staff_login(client, staff_user("operator"))
    action = {"action": "acknowledge", "_selected_action": [alert.pk], "post": "yes"}
    client.post(ALERTS, {**action, "reason": "NBKR is down, typing rates by hand"})
    alert.refresh_from_db()
    assert alert.acknowledged_at is not None and alert.resolved_at is None
    entry = AuditEntry.objects.get(action="onchain.acknowledge_alert")
    assert entry.reason == "NBKR is down, typing rates by hand" and entry.outcome == "done"

    assert alerts_sweep(now=start + timedelta(minutes=121)) == []
    assert deliver_pending() == []
    assert (len(mail.outbox), len(chat.bodies)) == (2, 2)


def test_resolving_needs_a_reason_and_closes_the_alert(chat, client):
    """Resolving without a reason re-shows the confirmation page with the message and changes nothing; with one,
    the alert is closed, no reminder follows, and the same condition raised later is a new alert, sent again."""
    alert = raise_stale_rates()
    deliver_pending()
    staff_login(client, staff_user("operator"))
    action = {"action": "resolve", "_selected_action": [alert.pk], "post": "yes"}
    refused = client.post(ALERTS, {**action, "reason": "  "})
    assert refused.status_code == 200
    assert "Give a reason: it goes into the audit trail with your name." in refused.content.decode()
    assert OperatorAlert.objects.get(pk=alert.pk).resolved_at is None

    client.post(ALERTS, {**action, "reason": "feed back, today's rates fetched"})
    assert OperatorAlert.objects.get(pk=alert.pk).resolved_at is not None
    assert alerts_sweep(now=timezone.now() + timedelta(hours=3)) == []

    again = raise_stale_rates()
    assert again.pk != alert.pk
    assert deliver_pending() == ["sent", "sent"]
    assert (len(mail.outbox), len(chat.bodies)) == (2, 2)


def test_a_refusing_webhook_is_retried_and_its_url_never_recorded(chat, caplog):
    """The chat endpoint answers 500 then 200: the first attempt raises (the task retries) and records only
    "HTTP 500"; the retry sends it. The webhook URL (a secret) is in no delivery row and no log line. After
    ALERT_DELIVERY_ATTEMPTS refusals a row is given up, not retried for ever."""
    chat.statuses = [500]
    raise_stale_rates()
    webhook = AlertDelivery.objects.get(channel="webhook")
    with pytest.raises(AlertDeliveryFailed):
        alert_delivery_attempt(delivery_id=webhook.pk)
    webhook.refresh_from_db()
    assert (webhook.status, webhook.attempts, webhook.last_error) == ("pending", 1, "HTTP 500")
    assert alert_delivery_attempt(delivery_id=webhook.pk) == "sent"
    assert len(chat.bodies) == 2

    other = operator_alert_raise(kind="webhook", message="webhook endpoint ep_1 of partner 1 disabled")
    chat.statuses = [503, 503, 503]
    row = AlertDelivery.objects.get(alert=other, channel="webhook")
    for _ in range(2):
        with pytest.raises(AlertDeliveryFailed):
            alert_delivery_attempt(delivery_id=row.pk)
    assert alert_delivery_attempt(delivery_id=row.pk) == "failed"
    assert alert_delivery_attempt(delivery_id=row.pk) == "failed" and len(chat.bodies) == 5

    stored = json.dumps(list(AlertDelivery.objects.values()), default=str)
    assert "s3cr3t-hook-token" not in stored and "s3cr3t-hook-token" not in caplog.text


def test_unreachable_webhook_error_does_not_leak_the_url(chat, settings):
    """A connection refused (nothing listens) records the error's kind only, not the message that names the URL."""
    chat.close()
    raise_stale_rates()
    row = AlertDelivery.objects.get(channel="webhook")
    with pytest.raises(AlertDeliveryFailed) as refused:
        alert_delivery_attempt(delivery_id=row.pk)
    row.refresh_from_db()
    assert row.last_error == "ConnectionError" and "s3cr3t" not in str(refused.value.detail)
    chat.close = lambda: None  # already closed


def test_a_delivery_whose_task_was_lost_is_queued_again_by_the_sweep(chat):
    """A row still pending long after it was planned (its task lost with a worker, or the broker flushed) is queued
    again by the sweep; one planned a moment ago, or held under a live lease, is not (its task is on its way)."""
    alert = raise_stale_rates()
    rows = list(AlertDelivery.objects.filter(alert=alert).order_by("pk"))
    start = rows[0].created_at
    assert alerts_sweep(now=start + timedelta(minutes=1)) == []
    AlertDelivery.objects.filter(pk=rows[1].pk).update(lease_until=start + timedelta(minutes=30))
    assert alerts_sweep(now=start + timedelta(minutes=11)) == [rows[0].pk]
    assert sorted(alerts_sweep(now=start + timedelta(minutes=31))) == [rows[0].pk, rows[1].pk]


def test_the_delivery_task_retries_until_the_channel_takes_it(chat):
    """The Celery task (run in this process, eagerly) retries on a refusal: the chat endpoint answers 502 twice, then
    200; the row ends sent after three attempts, and the task's only argument is the row's id."""
    from onchain.tasks import alert_deliver

    chat.statuses = [502, 502]
    raise_stale_rates()
    row = AlertDelivery.objects.get(channel="webhook")
    result = alert_deliver.apply(args=[row.pk])
    assert result.successful(), result.traceback
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("sent", 3) and len(chat.bodies) == 3


def test_a_partners_words_in_an_alert_cannot_ping_or_dress_links_in_the_chat(chat):
    """A payout partner's failure reason quoted in an alert reaches the chat with Slack's control characters escaped:
    no `<!channel>` ping, no `<url|label>` link; the e-mail keeps the text as written."""
    operator_alert_raise(kind="payout_partner", message="partner said: <!channel> <https://evil.example/|Acknowledge> & go")
    deliver_pending()
    text = chat.bodies[0]["text"]
    assert "<!channel>" not in text and "<https://evil.example/|" not in text
    assert "&lt;!channel&gt; &lt;https://evil.example/|Acknowledge&gt; &amp; go" in text
    assert "<!channel>" in mail.outbox[0].body
