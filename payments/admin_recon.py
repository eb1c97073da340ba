"""Reconciliation in admin: the differences the jobs found (resolved with a reason, payments/guarded_recon.py) and
the partner statements operators type in for the partner-balance job."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from common.admin import ReadOnlyAdmin
from payments import guarded_recon
from payments.models import PartnerStatement, ReconciliationItem
from payments.services.reconciliation import partner_statement_record
from staff.admin_actions import GuardedActionsMixin, guarded_action_response


@admin.register(ReconciliationItem)
class ReconciliationItemAdmin(GuardedActionsMixin, ReadOnlyAdmin):
    list_display = ["id", "kind", "subject", "currency", "expected_amount", "actual_amount", "difference_amount",
                    "halts_payouts", "status", "detected_at", "last_seen_at", "resolved_by"]
    list_filter = ["status", "kind", "halts_payouts"]
    search_fields = ["subject", "detail"]
    date_hierarchy = "detected_at"
    actions = ["resolve"]

    @admin.display(description=_("our ledger"), ordering="expected")
    def expected_amount(self, obj):
        return obj.expected.normalize()

    @admin.display(description=_("Stripe / partner / chain"), ordering="actual")
    def actual_amount(self, obj):
        return obj.actual.normalize()

    @admin.display(description=_("difference"))
    def difference_amount(self, obj):
        return obj.difference

    @admin.action(description=_("Resolve differences (with a reason)"), permissions=["resolve"])
    def resolve(self, request, queryset):
        return guarded_action_response(self, request, queryset, guarded_recon.RESOLVE)

    def has_resolve_permission(self, request):
        return request.user.has_perm(guarded_recon.RESOLVE.permission)


@admin.register(PartnerStatement)
class PartnerStatementAdmin(admin.ModelAdmin):
    """Record a partner's statement balance: the job compares it with the ledger once its day is over. Recorded rows
    are not edited (record a new one)."""

    list_display = ["partner", "currency", "as_of", "closing_balance", "ledger_balance", "compared_at", "reference",
                    "recorded_by"]
    list_filter = ["partner", "currency"]
    fields = ["partner", "currency", "as_of", "closing_balance", "reference"]

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        saved = partner_statement_record(partner=obj.partner, currency=obj.currency, as_of=obj.as_of,
                                         closing_balance=obj.closing_balance, reference=obj.reference,
                                         recorded_by=request.user.get_username())
        obj.pk = saved.pk
