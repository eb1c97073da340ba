"""Outgoing webhook tasks (services/webhook_delivery.py): one attempt per task, and the beat sweep."""

from celery import shared_task

from payments.services import webhook_delivery


# Acks late (settings): a worker killed mid-attempt leaves the task to be redelivered, and the delivery's lease to
# run out for the sweep; the receiver gets the same webhook-id either way.
@shared_task(name="payments.webhook_deliver")
def webhook_deliver(delivery_id):
    webhook_delivery.delivery_attempt(delivery_id=delivery_id)


@shared_task(name="payments.webhooks_sweep")
def webhooks_sweep():
    webhook_delivery.deliveries_sweep()
