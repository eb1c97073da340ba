"""Idempotency-Key records of the partner API (payments/services/idempotency.py): one row per (partner, key), the
uniqueness enforced by the database, holding the first response so a retry replays it byte for byte."""

import uuid

from django.db import models

__all__ = ["IdempotencyRecord"]


class IdempotencyRecord(models.Model):
    class State(models.TextChoices):
        IN_FLIGHT = "in_flight", "in flight"
        DONE = "done", "done"

    partner = models.ForeignKey("payments.Partner", on_delete=models.CASCADE, related_name="idempotency_records")
    livemode = models.BooleanField(default=True, help_text="The mode of the key that sent it: test and live keys of "
                                                             "one partner never share a record.")
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=500)
    fingerprint = models.CharField(max_length=64, help_text="sha256 of the request's canonical JSON body")
    state = models.CharField(max_length=10, choices=State.choices, default=State.IN_FLIGHT)
    # Who holds an in-flight record, and until when: a process killed mid-request leaves a record that a retry may
    # take over once the lease has run out (never while the holder may still be running).
    lease_token = models.UUIDField(default=uuid.uuid4)
    locked_until = models.DateTimeField(null=True, blank=True)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_headers = models.JSONField(default=dict, blank=True)
    response_body = models.BinaryField(default=b"", blank=True)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["partner", "livemode", "key"], name="idempotency_key_per_partner")]

    def __str__(self):
        return f"{self.key} ({self.state})"
