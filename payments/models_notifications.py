"""Notifications to senders and recipients (services/notifications.py, docs/notifications.md): the outbox row is written
in the transaction of the status change it tells, one per (transfer, event, channel, role); a task sends it after
commit, and the beat sweep picks up any whose task was lost or whose retry is due."""

from django.db import models
from django.db.models import Q


class Notification(models.Model):
    class Channel(models.TextChoices):
        EMAIL = "email", "e-mail"
        SMS = "sms", "SMS"

    class Role(models.TextChoices):
        SENDER = "sender", "sender"
        RECIPIENT = "recipient", "recipient"

    class State(models.TextChoices):
        PENDING = "pending", "pending (due at next_attempt_at)"
        # Claimed by a worker just before the provider is asked; a worker that dies here leaves it until the lease
        # runs out, then it is sent again with the same idempotency key / Message-ID.
        SENDING = "sending", "sending"
        SENT = "sent", "sent"
        FAILED = "failed", "failed (a final error, or retries exhausted)"

    id = models.BigAutoField(primary_key=True)
    transfer = models.ForeignKey("payments.Transfer", on_delete=models.PROTECT, related_name="notifications")
    # The transfer status it tells (docs/notifications.md lists which are told, and to whom).
    event = models.CharField(max_length=40)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    role = models.CharField(max_length=10, choices=Role.choices)
    state = models.CharField(max_length=8, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    lease_until = models.DateTimeField(null=True, blank=True)
    # No addresses or message text here: they are read from the transfer when sending (no copies of personal data).
    last_error = models.CharField(max_length=300, blank=True)
    provider_id = models.CharField(max_length=100, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["transfer", "event", "channel", "role"],
                                               name="notification_once")]
        indexes = [models.Index(fields=["next_attempt_at"], condition=Q(state__in=["pending", "sending"]),
                                name="notification_due")]

    def __str__(self):
        return f"{self.event} {self.channel} to the {self.role} of {self.transfer_id} ({self.state})"

    @property
    def key(self):
        """The idempotency key of this message: the SMS provider's Idempotency-Key and the e-mail's Message-ID (left
        part), the same on every attempt."""
        return f"ntf.{self.transfer_id}.{self.event}.{self.channel}.{self.role}"


__all__ = ["Notification"]
