"""Payout partners in admin: the banks and wallet providers that pay recipients out (their settlement address checked
as a recipient wallet is), and their payouts, the ones awaiting confirmation first with their age
(payments/services/payout_partners.py; docs/runbook.md, "Payout partners")."""

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.utils import timezone

from common.admin import ReadOnlyAdmin
from onchain.api import recipient_check
from onchain.errors import ChainUnavailable, RecipientRefused
from onchain.fields import validate_address
from payments.guarded_payout_partners import RECORD_RETURN
from payments.models import PartnerPayout, PayoutPartner
from payments.services.screening import wallet_is_denied
from staff.admin_actions import GuardedActionsMixin, guarded_action_response
from staff.admin_history import HistoryAdmin


class PayoutPartnerForm(forms.ModelForm):
    class Meta:
        model = PayoutPartner
        fields = ["code", "name", "kind", "operator", "settlement_address", "is_active"]

    def clean_settlement_address(self):
        """The same checks as a recipient's wallet: its format and checksum, the denylists, and onchain's recipient
        check (no contract, no system or own address, not refused by the token). The node is asked here."""
        address = validate_address("".join((self.cleaned_data.get("settlement_address") or "").split()))
        if wallet_is_denied(address):
            raise ValidationError("Payouts to this address are not allowed (denylist or sanctions list).")
        try:
            recipient_check(address)
        except RecipientRefused as exc:
            raise ValidationError(str(exc.detail)) from exc
        except ChainUnavailable as exc:
            raise ValidationError("The chain did not answer: the address could not be checked. Try again.") from exc
        return address


@admin.register(PayoutPartner)
class PayoutPartnerAdmin(HistoryAdmin):
    form = PayoutPartnerForm

    def get_readonly_fields(self, request, obj=None):
        # Where the KGST goes and whose keys confirm it are set once: a change would send future payouts elsewhere
        # (or let another account confirm past ones) on one person's edit. Register a new partner instead.
        return ["code", "operator", "settlement_address"] if obj is not None else []
    list_display = ["name", "code", "kind", "operator", "settlement_address", "is_active", "awaiting"]
    list_filter = ["kind", "is_active"]
    search_fields = ["name", "code", "settlement_address"]

    def has_delete_permission(self, request, obj=None):
        return False  # its payouts keep pointing at it: deactivate instead

    @admin.display(description="awaiting confirmation")
    def awaiting(self, obj):
        return obj.payouts.filter(status=PartnerPayout.Status.AWAITING).count()


@admin.register(PartnerPayout)
class PartnerPayoutAdmin(GuardedActionsMixin, ReadOnlyAdmin):
    """Oldest unconfirmed first: what operators chase (escalated ones carry the time of their alert). Treasury records
    a failed payout's KGST back in the float once the partner returned it."""

    actions = ["record_return"]

    list_display = ["reference", "transfer", "payout_partner", "status", "amount", "sent_at", "age", "escalated_at",
                    "failure_reason", "returned_at"]
    list_filter = ["status", "payout_partner"]
    search_fields = ["reference", "transfer__id", "recipient_account", "tx_hash"]
    list_select_related = ["transfer__quote", "payout_partner"]
    ordering = ["status", "sent_at"]

    @admin.display(description="amount (KGS)")
    def amount(self, obj):
        return obj.transfer.quote.target_amount

    @admin.display(description="age")
    def age(self, obj):
        """Since its KGST was final at the partner, while it awaits confirmation."""
        if obj.status != PartnerPayout.Status.AWAITING or not obj.sent_at:
            return "—"
        minutes = int((timezone.now() - obj.sent_at).total_seconds() // 60)
        return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"

    @admin.action(description="Record its KGST returned to the float by the partner (failed payouts)",
                  permissions=["record_return"])
    def record_return(self, request, queryset):
        return guarded_action_response(self, request, queryset, RECORD_RETURN)

    def has_record_return_permission(self, request):
        return request.user.has_perm(RECORD_RETURN.permission)
