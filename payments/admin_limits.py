"""Limits and KYC in admin: each corridor's tier limits (edited, validated next to each field), senders' profiles
(an operator records an ID document or a proof-of-funds reference, then verifies it with a reason: audit trail), and
the travel rule's data on the transfer page."""

from django import forms
from django.contrib import admin

from payments import guarded_limits
from payments.models import LimitTier, SenderProfile, Transfer, TravelRuleRecord
from payments.services.limits import sender_document_record, sender_funds_record
from staff.admin_actions import GuardedActionsMixin, guarded_action_response
from staff.admin_history import HistoryAdmin


@admin.register(LimitTier)
class LimitTierAdmin(HistoryAdmin):
    """Per corridor and tier; the highest tier is the hard maximum. Model.clean keeps each tier within its
    neighbours and per transfer ≤ per day ≤ per 30 days."""

    list_display = ["source_currency", "tier", "per_transfer", "per_day", "per_30_days", "updated_at"]
    list_filter = ["source_currency"]

    def has_delete_permission(self, request, obj=None):
        return False


class SenderProfileForm(forms.ModelForm):
    id_number = forms.CharField(label="ID document number", max_length=40, required=False,
                                help_text="Kept only as a keyed hash and its last four characters; leave empty to "
                                          "keep the recorded document.")

    class Meta:
        model = SenderProfile
        fields = ["id_type", "id_country", "id_number", "id_expiry", "funds_reference"]

    def clean(self):
        data = super().clean()
        if data.get("id_number") and not (data.get("id_type") and data.get("id_country")):
            self.add_error("id_type", "Give the document's type and issuing country with its number.")
        if {"id_type", "id_country", "id_expiry"} & set(self.changed_data) and not data.get("id_number"):
            self.add_error("id_number", "Type the document's number to record a changed document (it is then "
                                        "verified afresh).")
        if data.get("id_country") and len(data["id_country"]) != 2:
            self.add_error("id_country", "A two-letter country code, for example KG.")
        return data


@admin.register(SenderProfile)
class SenderProfileAdmin(GuardedActionsMixin, admin.ModelAdmin):
    form = SenderProfileForm
    list_display = ["phone", "email", "tier", "id_type", "id_country", "id_number_last4", "id_expiry",
                    "id_verified_by", "funds_verified_by", "created_at"]
    search_fields = ["phone", "email"]
    readonly_fields = ["phone", "email", "tier", "id_number_last4", "id_recorded_by", "id_recorded_at",
                       "id_verified_by", "id_verified_at", "funds_recorded_by", "funds_verified_by",
                       "funds_verified_at"]
    actions = ["verify_id", "verify_funds"]

    def has_add_permission(self, request):
        return False  # a profile starts with the sender's first transfer

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        by = request.user.get_username()
        data = form.cleaned_data
        if data.get("id_number"):
            sender_document_record(profile=obj, id_type=data["id_type"], country=data["id_country"],
                                   number=data["id_number"], expiry=data.get("id_expiry"), by=by)
        if "funds_reference" in form.changed_data:
            sender_funds_record(profile=obj, reference=data["funds_reference"], by=by)
        obj.save()

    @admin.action(description="Verify the recorded ID document (tier 1)", permissions=["verify_id"])
    def verify_id(self, request, queryset):
        return guarded_action_response(self, request, queryset, guarded_limits.VERIFY_ID)

    @admin.action(description="Verify the recorded proof of funds (tier 2)", permissions=["verify_funds"])
    def verify_funds(self, request, queryset):
        return guarded_action_response(self, request, queryset, guarded_limits.VERIFY_FUNDS)

    def has_verify_id_permission(self, request):
        return request.user.has_perm(guarded_limits.VERIFY_ID.permission)

    def has_verify_funds_permission(self, request):
        return request.user.has_perm(guarded_limits.VERIFY_FUNDS.permission)


class TravelRuleInline(admin.StackedInline):
    """The travel rule's originator and beneficiary data, on the transfer's page (read only)."""

    model = TravelRuleRecord
    can_delete = False
    extra = 0
    verbose_name = "travel rule data"
    verbose_name_plural = "travel rule data"
    fields = readonly_fields = ["originator_name", "originator_address", "originator_date_of_birth",
                                "originator_id_number", "originator_account", "beneficiary_name", "beneficiary_wallet",
                                "beneficiary_country", "amount_kgs", "threshold_kgs", "created_at"]

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


# The transfer page (payments/admin.py, which imports this module last) shows the travel rule's data.
_transfer_admin = admin.site.get_model_admin(Transfer)
_transfer_admin.inlines = [*_transfer_admin.inlines, TravelRuleInline]
