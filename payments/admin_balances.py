"""The Partner page in admin with the partner's prefunded balances and statement, and forms to record a top-up or a
withdrawal with the partner's bank reference and a reason. The forms run payments/guarded_balances.py's actions
through staff.services (permission, audit trail); the balance itself is derived from the ledger
(services/balances.py)."""

from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from payments.guarded_balances import (
    TOPUP_PERMISSION,
    WITHDRAW_PERMISSION,
    balance_topup_action,
    balance_withdraw_action,
)
from payments.models import SOURCE_CURRENCIES, Partner
from payments.services.balances import REFERENCE_MAX, balance_movements, balance_statement, balances_list
from staff.models import AuditEntry
from staff.services import action_perform

STATEMENT_ROWS = 50


class BalanceMovementForm(forms.Form):
    currency = forms.ChoiceField(choices=SOURCE_CURRENCIES)
    amount = forms.DecimalField(max_digits=14, decimal_places=2, min_value=Decimal("0.01"),
                                help_text="In major units, e.g. 150000.00")
    reference = forms.CharField(label="Bank transfer reference", max_length=REFERENCE_MAX,
                                help_text="The reference of the partner's bank transfer; each is recorded once.")
    reason = forms.CharField(label="Reason (recorded in the audit trail with your name)", max_length=500,
                             widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
                             error_messages={"required": "Give a reason: it goes into the audit trail with your name."})


MOVEMENTS = {
    # url name: (permission, action factory, title, what the page says)
    "topup": (TOPUP_PERMISSION, balance_topup_action, "Record a top-up",
              "The partner's money arrived at our bank: its balance rises by the amount."),
    "withdraw": (WITHDRAW_PERMISSION, balance_withdraw_action, "Record a withdrawal",
                 "We paid part of the partner's balance back to its bank: its balance falls by the amount. More than "
                 "the balance is refused."),
}

# payments/admin.py registers the Partner admin and imports this module last; the balances extend that admin (whatever
# it holds) rather than importing it back.
_PartnerAdmin = type(admin.site.get_model_admin(Partner))
admin.site.unregister(Partner)


@admin.register(Partner)
class PartnerBalanceAdmin(_PartnerAdmin):
    readonly_fields = [*_PartnerAdmin.readonly_fields, "balances", "statement"]

    @admin.display(description="balances")
    def balances(self, obj):
        if obj is None or obj.pk is None:
            return "—"
        rows = format_html_join("", "<li>{} {}</li>", ((b.amount, b.currency) for b in balances_list(partner=obj)))
        return format_html("<ul>{}</ul>", rows or format_html("<li>{}</li>", "no balance yet"))

    @admin.display(description="statement (latest movements)")
    def statement(self, obj):
        if obj is None or obj.pk is None:
            return "—"
        tables = []
        for balance in balances_list(partner=obj):
            movements = balance_movements(balance_statement(partner=obj, currency=balance.currency)[:STATEMENT_ROWS])
            body = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", (
                (m.at.strftime("%Y-%m-%d %H:%M:%S"), m.kind, f"{m.amount:+}", m.balance_after,
                 _entry_link(m), _transfer_link(m) or m.reference) for m in movements))
            tables.append(format_html(
                "<h4>{}</h4><table><thead><tr><th>time</th><th>kind</th><th>amount</th><th>balance after</th>"
                "<th>journal entry</th><th>transfer / bank reference</th></tr></thead><tbody>{}</tbody></table>",
                balance.currency, body))
        return format_html_join("", "{}", ((t,) for t in tables)) or "no movements yet"

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # The page's object tools offer each movement form only to those who may record it.
        tools = [(reverse(f"admin:payments_partner_{name}", args=[object_id]), title)
                 for name, (permission, _factory, title, _text) in MOVEMENTS.items() if request.user.has_perm(permission)]
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), "balance_tools": tools})

    def get_urls(self):
        own = [path(f"<int:object_id>/balance/{name}/", self.admin_site.admin_view(self._movement_view(name)),
                    name=f"payments_partner_{name}") for name in MOVEMENTS]
        return own + super().get_urls()

    def _movement_view(self, name):
        permission, factory, title, explanation = MOVEMENTS[name]

        def view(request, object_id):
            if not request.user.has_perm(permission):
                raise PermissionDenied(f"{request.user.get_username()} may not {permission}")
            partner = get_object_or_404(Partner, pk=object_id)
            form = BalanceMovementForm(request.POST if request.method == "POST" else None)
            if form.is_bound and form.is_valid():
                data = form.cleaned_data
                action = factory(currency=data["currency"], amount=data["amount"], reference=data["reference"])
                [outcome] = action_perform(action=action, actor=request.user, ids=[partner.pk], reason=data["reason"])
                if outcome.outcome == AuditEntry.Outcome.DONE:
                    self.message_user(request, outcome.message, messages.SUCCESS)
                    return redirect("admin:payments_partner_change", partner.pk)
                form.add_error(None, outcome.detail)
            context = {**self.admin_site.each_context(request), "opts": self.model._meta, "title": title,
                       "partner": partner, "form": form, "explanation": explanation,
                       "balances": balances_list(partner=partner)}
            request.current_app = self.admin_site.name
            return TemplateResponse(request, "admin/payments/partner/balance_movement.html", context)

        return view


def _entry_link(movement):
    return format_html('<a href="{}">#{}</a>', reverse("admin:payments_journalentry_change", args=[movement.entry_id]),
                       movement.entry_id)


def _transfer_link(movement):
    if not movement.transfer_id:
        return ""
    return format_html('<a href="{}">{}</a>', reverse("admin:payments_transfer_change", args=[movement.transfer_id]),
                       movement.transfer_id)
