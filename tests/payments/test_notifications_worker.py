"""Notifications through the real worker and beat: the task enqueued when the status change commits sends each row,
and a row whose task was lost (a crash between commit and enqueue) is sent once the beat's sweep finds it."""

from datetime import timedelta

import pytest
from django.utils import timezone

from payments.models import Notification
from tests.conftest import wait_for
from tests.payments.test_notifications import make_transfer, notify  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db(transaction=True)


def test_rows_are_sent_by_the_worker_after_commit(notify, pricing, stripe_server, celery_processes):  # noqa: F811
    """A funded transfer's sender is told by e-mail and SMS and its recipient by SMS: the worker sends each row once."""
    transfer = make_transfer(key="worker-1")
    transfer.mark_funded(timezone.now())
    transfer.save()
    rows = Notification.objects.filter(transfer=transfer)
    assert sorted(rows.values_list("channel", "role")) == [("email", "sender"), ("sms", "recipient"),
                                                           ("sms", "sender")]
    wait_for(lambda: all(r.state == "sent" for r in rows.all()), timeout=60, what="the worker to send every row")
    assert [r.attempts for r in rows.all()] == [1, 1, 1]


def test_a_row_whose_task_was_lost_is_sent_by_the_sweep(notify, pricing, stripe_server, celery_processes):  # noqa: F811
    """A row committed without its task, older than a minute, is picked up by the beat's sweep and sent."""
    notify.NOTIFY_CHANNELS = []  # the transfer's own change writes nothing: the row below is the only one
    transfer = make_transfer(key="worker-2")
    transfer.mark_funded(timezone.now())
    transfer.save()
    lost = Notification.objects.create(transfer=transfer, event="funded", channel="email", role="sender",
                                       next_attempt_at=timezone.now())
    Notification.objects.filter(pk=lost.pk).update(created_at=timezone.now() - timedelta(minutes=2))
    wait_for(lambda: Notification.objects.get(pk=lost.pk).state == "sent", timeout=60,
             what="the sweep to hand the lost row to the worker")
