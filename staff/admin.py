"""The audit trail (read-only for everyone) and the requests waiting for a second person (approve or decline,
with a reason)."""

from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin
from django.contrib.auth.models import Group

from common.admin import ReadOnlyAdmin
from staff.admin_actions import GuardedActionsMixin, confirm_with_reason
from staff.admin_history import HistoryAdmin
from staff.models import ApprovalRequest, AuditEntry
from staff.services import (
    approval_approve,
    approval_decline,
    approval_permission_check,
    approval_permissions,
    approval_preview,
)


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ["at", "actor_username", "action", "target_repr", "outcome", "reason", "detail", "approval"]
    list_filter = ["outcome", "action", "at"]
    search_fields = ["target_id", "target_repr", "actor_username", "reason"]
    date_hierarchy = "at"
    list_select_related = ["approval"]


@admin.register(ApprovalRequest)
class ApprovalRequestAdmin(GuardedActionsMixin, ReadOnlyAdmin):
    list_display = ["id", "status", "action", "target_repr", "requested_by", "requested_at", "reason", "decided_by",
                    "decided_at", "decision_reason"]
    list_filter = ["status", "action"]
    search_fields = ["target_id", "target_repr"]
    list_select_related = ["requested_by", "decided_by"]
    actions = ["approve", "decline"]

    def has_decide_permission(self, request):
        return any(request.user.has_perm(p) for p in approval_permissions())

    def _decide(self, request, queryset, decide):
        requests = list(queryset.select_related("requested_by"))
        for approval in requests:  # all or nothing: no partial run before a 403
            approval_permission_check(approval=approval, actor=request.user)
        rows = [(a, approval_preview(approval=a, actor=request.user)) for a in requests]
        return confirm_with_reason(
            self, request, queryset, rows=rows,
            run=lambda reason: [decide(approval_id=a.pk, actor=request.user, reason=reason) for a in requests])

    @admin.action(description="Approve (as the second person): the action runs now", permissions=["decide"])
    def approve(self, request, queryset):
        return self._decide(request, queryset, approval_approve)

    @admin.action(description="Decline: nothing is done", permissions=["decide"])
    def decline(self, request, queryset):
        return self._decide(request, queryset, approval_decline)




# Roles are groups: their page keeps the history of their permissions (roles_sync's changes say so as their reason).
admin.site.unregister(Group)


@admin.register(Group)
class RoleAdmin(HistoryAdmin, GroupAdmin):
    pass
