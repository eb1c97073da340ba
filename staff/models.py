"""The audit trail of staff actions (append-only) and the requests that wait for a second person."""

import simple_history
from django.conf import settings
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django_fsm import transition

from common.status import StatusField, StatusModel, StatusQuerySet


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise TypeError("audit entries are append-only")

    def delete(self):
        raise TypeError("audit entries are append-only")

    def bulk_update(self, objs, fields, batch_size=None):
        raise TypeError("audit entries are append-only")


class ApprovalRequest(StatusModel):
    """A four-eyes action one person asked for: nothing moves until a different holder of the permission approves.
    `state` is what the object looked like when asked; an approval of an object that changed since is refused."""

    class Status(models.TextChoices):
        PENDING = "pending", "waiting for a second person"
        APPROVED = "approved", "approved and done"
        DECLINED = "declined", "declined"
        STALE = "stale", "the object changed since the request"

    status = StatusField(default=Status.PENDING, choices=Status.choices)
    action = models.CharField(max_length=100, help_text="the action's permission, e.g. payments.release_transfer")
    target_type = models.ForeignKey(ContentType, on_delete=models.PROTECT, related_name="+")
    target_id = models.CharField(max_length=64)
    target_repr = models.CharField(max_length=200)
    state = models.CharField(max_length=400, blank=True)
    reason = models.TextField()
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    requested_at = models.DateTimeField(default=timezone.now)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(blank=True)

    objects = StatusQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["action", "target_type", "target_id"],
                                               condition=Q(status="pending"), name="one_pending_request_per_action")]
        indexes = [models.Index(fields=["status", "-requested_at"])]

    def __str__(self):
        return f"#{self.pk} {self.action} on {self.target_repr} ({self.status})"

    def _decide(self, by, reason):
        self.decided_by, self.decided_at, self.decision_reason = by, timezone.now(), reason

    @transition(field=status, source=Status.PENDING, target=Status.APPROVED)
    def mark_approved(self, by, reason):
        self._decide(by, reason)

    @transition(field=status, source=Status.PENDING, target=Status.DECLINED)
    def mark_declined(self, by, reason):
        self._decide(by, reason)

    @transition(field=status, source=Status.PENDING, target=Status.STALE)
    def mark_stale(self, by, reason):
        self._decide(by, reason)


class AuditEntry(models.Model):
    """Who did what to which row, when and why, and how it ended. Rows are only ever added: the model and its
    queryset refuse updates and deletes, and on PostgreSQL a trigger refuses them too (migration 0002)."""

    class Outcome(models.TextChoices):
        DONE = "done", "done"
        REQUESTED = "requested", "requested; waits for a second person"
        APPROVED = "approved", "approved by a second person; done"
        DECLINED = "declined", "declined"
        STALE = "stale", "not done: the object changed since the request"
        REFUSED = "refused", "refused"

    at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    actor_username = models.CharField(max_length=150)
    action = models.CharField(max_length=100)
    target_type = models.ForeignKey(ContentType, on_delete=models.PROTECT, related_name="+")
    target_id = models.CharField(max_length=64)
    target_repr = models.CharField(max_length=200)
    reason = models.TextField()
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    detail = models.CharField(max_length=500, blank=True)
    approval = models.ForeignKey(ApprovalRequest, null=True, blank=True, on_delete=models.PROTECT,
                                 related_name="entries")

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "audit entries"
        indexes = [models.Index(fields=["target_type", "target_id"])]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor_username} {self.action} {self.target_repr}: {self.outcome}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise TypeError("audit entries are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("audit entries are append-only")


# Roles are groups (staff/roles.py): their permissions keep a history of values (who, when, why), in this app's tables.
simple_history.register(Group, app="staff", m2m_fields=["permissions"])
