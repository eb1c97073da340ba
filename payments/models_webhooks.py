"""Outgoing webhooks (Standard Webhooks): a partner's endpoints and their signing secrets, the event outbox written in
the transaction of the change it tells, and one delivery row per (endpoint, event) with its attempt log
(services/webhooks.py, docs/webhooks.md)."""

import secrets

from django.db import models
from django.db.models import Q


def new_event_id():
    # Used as the `webhook-id` header: unique per event, the same on every redelivery.
    return f"msg_{secrets.token_urlsafe(18)}"


def new_endpoint_id():
    return f"ep_{secrets.token_urlsafe(12)}"


class WebhookEndpoint(models.Model):
    id = models.CharField(primary_key=True, max_length=40, default=new_endpoint_id, editable=False)
    partner = models.ForeignKey("payments.Partner", on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField(max_length=2000)
    description = models.CharField(max_length=200, blank=True)
    # Event types subscribed; empty, or containing "*", means all.
    event_types = models.JSONField(default=list, blank=True)
    enabled = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=300, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    # The first failed attempt of the current run of failures (cleared by a success): disabled after
    # WEBHOOK_DISABLE_AFTER_SECONDS of failures only.
    failing_since = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["partner", "created_at"])]

    def __str__(self):
        return f"webhook endpoint {self.id} ({self.url})"

    def subscribes(self, event_type):
        return not self.event_types or "*" in self.event_types or event_type in self.event_types


class WebhookSecret(models.Model):
    """A `whsec_` signing secret, stored encrypted (services/webhook_crypto.py). A rotation adds a new one and gives
    the old an expiry: until then both sign each message (several signatures in `webhook-signature`)."""

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="secrets")
    secret_encrypted = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["endpoint", "expires_at"])]

    def __str__(self):
        return f"secret {self.pk} of {self.endpoint_id}"


class WebhookEvent(models.Model):
    """The outbox: written in the transaction of the change it tells, so it exists exactly when the change does."""

    # The sequence orders a subject's events (written under the subject's row lock, so in the order they happened).
    id = models.BigAutoField(primary_key=True)
    msg_id = models.CharField(max_length=40, unique=True, default=new_event_id, editable=False,
                              help_text="the webhook-id header")
    partner = models.ForeignKey("payments.Partner", on_delete=models.CASCADE, related_name="webhook_events")
    type = models.CharField(max_length=60)
    # What the event is about (a transfer's id, a balance's currency): its deliveries go out in order per subject.
    subject = models.CharField(max_length=64, blank=True)
    payload = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["partner", "-created_at"]), models.Index(fields=["subject", "id"])]

    def __str__(self):
        return f"{self.type} {self.msg_id}"


class WebhookDelivery(models.Model):
    """One event to one endpoint: pending until a 2xx answer (delivered) or until its retries end (failed)."""

    class State(models.TextChoices):
        PENDING = "pending", "pending"
        DELIVERED = "delivered", "delivered"
        FAILED = "failed", "failed (retries exhausted or endpoint disabled)"

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey(WebhookEvent, on_delete=models.CASCADE, related_name="deliveries")
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # A worker that claimed the delivery holds it until then; killed mid-delivery, another takes it after.
    lease_until = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["endpoint", "event"], name="webhook_delivery_once")]
        indexes = [models.Index(fields=["next_attempt_at"], condition=Q(state="pending"), name="webhook_due")]

    def __str__(self):
        return f"delivery of {self.event_id} to {self.endpoint_id} ({self.state})"


class WebhookAttempt(models.Model):
    """The attempt log: one row per HTTP request made (or refused before sending)."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    status_code = models.PositiveIntegerField(null=True, blank=True)
    response_snippet = models.CharField(max_length=500, blank=True)
    error = models.CharField(max_length=300, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["delivery", "number"]

    def __str__(self):
        return f"attempt {self.number} of {self.delivery_id}"


__all__ = ["WebhookAttempt", "WebhookDelivery", "WebhookEndpoint", "WebhookEvent", "WebhookSecret"]
