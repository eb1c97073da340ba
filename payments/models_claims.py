"""Recipient claim (payments/services/claims.py): the one-time codes that prove the recipient's phone, and the
reminders sent while a paid transfer waits for its recipient. Codes are stored as an HMAC, never in clear."""

from django.db import models
from django.db.models import Q

__all__ = ["ClaimCode", "ClaimReminder"]


class ClaimCode(models.Model):
    """One code sent by SMS to the transfer's recipient phone: single-use, expires, locked after too many wrong
    tries. `code_hash` is HMAC-SHA256(SECRET_KEY, transfer id + code): the six digits are nowhere in the database."""

    transfer = models.ForeignKey("payments.Transfer", on_delete=models.PROTECT, related_name="claim_codes")
    code_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    failed_attempts = models.PositiveSmallIntegerField(default=0)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["transfer", "-created_at"])]
        constraints = [models.CheckConstraint(condition=Q(failed_attempts__lte=100), name="claim_code_attempts_sane")]

    def __str__(self):
        return f"claim code {self.pk} of transfer {self.transfer_id}"


class ClaimReminder(models.Model):
    """The n-th reminder SMS for an unclaimed transfer: the row is stored before the SMS is sent (its idempotency
    key derives from it), and `sent_at` records the provider's answer; unique per (transfer, number)."""

    transfer = models.ForeignKey("payments.Transfer", on_delete=models.PROTECT, related_name="claim_reminders")
    number = models.PositiveSmallIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["transfer", "number"], name="one_claim_reminder_per_number")]

    def __str__(self):
        return f"claim reminder {self.number} of transfer {self.transfer_id}"
