"""The ledger in admin: accounts with their kind and balance, the trial balance (every account per currency; each
currency's total must be zero). Journal entries stay read-only (payments/admin.py); a transfer's change page shows
its journal and where its money is now (templates/admin/payments/transfer/change_form.html, payments.templatetags).
"""

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Q, Sum
from django.db.models.functions import Coalesce
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.translation import gettext_lazy as _

from common.admin import ReadOnlyAdmin
from payments.models import LedgerAccount
from payments.services.ledger import ACCOUNTS
from payments.services.ledger_views import ledger_trial_balance, money_format


@admin.register(LedgerAccount)
class LedgerAccountAdmin(ReadOnlyAdmin):
    list_display = ["code", "currency", "partner", "kind", "balance"]
    list_filter = ["currency", "code"]
    search_fields = ["code", "partner__name"]
    list_select_related = ["partner"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(
            posted_balance=Coalesce(Sum("postings__amount_minor", filter=Q(postings__entry__posted=True)), 0))

    @admin.display(description=_("kind"))
    def kind(self, obj):
        spec = ACCOUNTS.get(obj.code)
        return spec.kind if spec else "?"

    @admin.display(description=_("balance (debit +, credit −)"), ordering="posted_balance")
    def balance(self, obj):
        return money_format(obj.posted_balance, obj.currency)

    def get_urls(self):
        return [path("trial-balance/", self.admin_site.admin_view(self.trial_balance_view),
                     name="payments_ledgeraccount_trial_balance"), *super().get_urls()]

    def trial_balance_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        return TemplateResponse(request, "admin/payments/ledger_trial_balance.html", {
            **self.admin_site.each_context(request), "opts": self.model._meta, "title": _("Trial balance"),
            "currencies": ledger_trial_balance()})
