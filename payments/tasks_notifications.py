"""Notification tasks (services/notifications.py): one attempt per task at one outbox row (its id the only argument),
and the beat sweep."""

from celery import shared_task

from payments.services import notifications


# Acks late (settings): a worker killed mid-send leaves the task to be redelivered and the row's lease to run out; the
# row is sent again with the same idempotency key and Message-ID.
@shared_task(name="payments.notification_send")
def notification_send(notification_id):
    notifications.notification_send(notification_id=notification_id)


@shared_task(name="payments.notifications_sweep")
def notifications_sweep():
    notifications.notifications_sweep()
