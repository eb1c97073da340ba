"""The two moves every step of the transfer pipeline makes (payments/pipeline.py and its payments/pipeline_*.py
siblings): take the transfer's row lock, and enqueue the next step once the transaction commits. They live below all
of those modules, so that each can import them without an import loop."""

from django.db import transaction

from payments.models import Transfer


def transfer_locked(transfer_id):
    return Transfer.objects.select_for_update(of=("self",)).select_related("quote").get(pk=transfer_id)


def step_after_commit(task, transfer_id):
    # The sweeper re-derives the step from the table if this enqueue is lost (a crash right after the commit).
    transaction.on_commit(lambda: task.delay(str(transfer_id)))
