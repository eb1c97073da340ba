"""Deliveries of operator alerts to people (onchain/services/alert_delivery.py): one row per alert, channel and
round (round 0 the first notice, round n the n-th reminder while the alert stays open and unacknowledged). The
unique row is what makes a delivery idempotent: planning the same round twice adds nothing, and a task run twice
finds the row already sent."""

from django.db import models
from django.utils import timezone


class AlertDelivery(models.Model):
    class Channel(models.TextChoices):
        EMAIL = "email", "e-mail"
        WEBHOOK = "webhook", "chat webhook"

    class Status(models.TextChoices):
        PENDING = "pending", "waiting to be sent"
        SENT = "sent", "sent"
        FAILED = "failed", "gave up after its attempts"
        SKIPPED = "skipped", "not sent: acknowledged or resolved first"

    alert = models.ForeignKey("onchain.OperatorAlert", on_delete=models.CASCADE, related_name="deliveries")
    channel = models.CharField(max_length=10, choices=Channel.choices)
    round = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    # Claimed by one task until then (a worker that dies mid-send leaves it for the sweep after this).
    lease_until = models.DateTimeField(null=True, blank=True)
    # The error's kind only (an HTTP status, an exception's class): the webhook URL is a secret and never stored.
    last_error = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "alert deliveries"
        constraints = [models.UniqueConstraint(fields=["alert", "channel", "round"], name="one_delivery_per_round")]
        indexes = [models.Index(fields=["status", "lease_until"])]

    def __str__(self):
        return f"alert #{self.alert_id} {self.channel} round {self.round}: {self.status}"
