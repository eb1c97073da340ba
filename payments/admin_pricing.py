"""Pricing in admin: corridors (margin over the official rate, fee as fixed + percent within a minimum and a
maximum, amount limits, on or off) and official rates (the feed's history, and manual rates an operator types).
Bad values are refused next to their field and nothing is saved; rates are history (added, never edited)."""

from decimal import Decimal

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied, ValidationError

from payments import pricing
from payments.errors import ManualRateRefused, RateUnavailable
from payments.guarded_rates import rate_manual_action
from payments.models import Corridor, Rate
from payments.services.rates import manual_rate_check, rate_current
from staff.admin_history import HistoryAdmin
from staff.models import AuditEntry
from staff.services import action_perform

LARGE_CHANGE = Decimal("0.10")  # a manual rate this far from the one in effect must be confirmed (a typo guard)


class CorridorForm(forms.ModelForm):
    class Meta:
        model = Corridor
        fields = ["source_currency", "target_currency", "margin_bps", "fixed_fee", "percent_fee_bps", "min_fee",
                  "max_fee", "min_amount", "max_amount", "is_active"]
        help_texts = {
            "margin_bps": "Taken off the official rate, in basis points (100 = 1 %); below 10000.",
            "fixed_fee": "Part of every fee, in the source currency.",
            "percent_fee_bps": "Percent of the amount added to the fixed part, in basis points; below 10000.",
            "min_fee": "The fee is never below this.",
            "max_fee": "The fee is never above this; empty: no cap.",
            "min_amount": "Smallest amount a sender may pay (fee included).",
            "max_amount": "Largest amount a sender may pay (fee included).",
        }

    def clean(self):
        data = super().clean()
        errors = {}
        for name in ("margin_bps", "percent_fee_bps"):
            if data.get(name) is not None and data[name] >= 10000:
                errors[name] = "Must be below 10000 basis points (100 %)."
        for name in ("fixed_fee", "min_fee", "max_fee"):
            if data.get(name) is not None and data[name] < 0:
                errors[name] = "Cannot be negative."
        low, high = data.get("min_amount"), data.get("max_amount")
        if low is not None and low <= 0:
            errors["min_amount"] = "Must be above zero."
        if low is not None and high is not None and high < low:
            errors["max_amount"] = "Must be at least the minimum amount."
        min_fee, max_fee = data.get("min_fee"), data.get("max_fee")
        if min_fee is not None and max_fee is not None and max_fee < min_fee:
            errors["max_fee"] = "Must be at least the minimum fee."
        if not errors and low and None not in (data.get("fixed_fee"), data.get("percent_fee_bps"), min_fee):
            terms = pricing.Terms(data.get("margin_bps") or 0, data["fixed_fee"], data["percent_fee_bps"], min_fee,
                                  max_fee)
            fee = pricing.fee_for(amount=low, terms=terms)
            if fee >= low:
                errors["min_amount"] = (f"The fee on the minimum amount would be {fee}, which takes all of it: raise "
                                        "the minimum amount or lower the fee.")
        if errors:
            raise ValidationError(errors)
        return data


@admin.register(Corridor)
class CorridorAdmin(HistoryAdmin):
    form = CorridorForm
    list_display = ["source_currency", "target_currency", "margin_bps", "fixed_fee", "percent_fee_bps", "min_fee",
                    "max_fee", "min_amount", "max_amount", "is_active"]

    def has_delete_permission(self, request, obj=None):
        return False  # switch a corridor off instead: quotes refer to its currency


class ManualRateForm(forms.ModelForm):
    confirm_large_change = forms.BooleanField(
        required=False, label="Confirm a large change",
        help_text=f"Needed when the rate differs from the one in effect by more than {LARGE_CHANGE:.0%}.")

    class Meta:
        model = Rate
        fields = ["source_currency", "rate"]
        help_texts = {"rate": "Som per one unit of the currency, as NBKR would publish it (e.g. 87.45). In effect "
                              "from now until a newer rate is recorded."}

    reason = forms.CharField(label="Reason (recorded in the audit trail with your name)", max_length=500,
                             widget=forms.Textarea(attrs={"rows": 2, "cols": 80}),
                             help_text="Why a manual rate: e.g. the NBKR feed is down since …, rate from nbkr.kg.")

    def clean_rate(self):
        rate = self.cleaned_data["rate"]
        if rate is None or rate <= 0:
            raise ValidationError("Must be above zero.")
        return rate

    def clean_source_currency(self):
        currency = self.cleaned_data["source_currency"]
        if not Corridor.objects.filter(source_currency=currency).exists():
            raise ValidationError("No corridor for this currency: add the corridor first.")
        return currency

    def clean(self):
        data = super().clean()
        currency, rate = data.get("source_currency"), data.get("rate")
        if currency and rate and not self.errors:
            try:
                manual_rate_check(currency=currency, value=rate)
            except ManualRateRefused as exc:
                self.add_error("rate", exc.detail)
        if currency and rate and not self.errors and not data.get("confirm_large_change"):
            try:
                current = rate_current(source_currency=currency).rate
            except RateUnavailable:
                current = None
            if current and abs(rate - current) / current > LARGE_CHANGE:
                self.add_error("rate", f"This is more than {LARGE_CHANGE:.0%} away from the rate in effect "
                                       f"({current}): check it, then tick “Confirm a large change”.")
        return data


@admin.register(Rate)
class RateAdmin(HistoryAdmin):
    """The feed's history and manual rates. Adding one records a manual rate (source "manual", who, now)."""

    list_display = ["source_currency", "target_currency", "rate", "source", "value_date", "effective_at",
                    "fetched_at", "recorded_by"]
    list_filter = ["source_currency", "source"]
    date_hierarchy = "effective_at"
    form = ManualRateForm
    ask_reason = False  # the form's own reason goes to the audit trail and the rate's history (guarded_rates)

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        # The rate is the source currency's against the som: the action is recorded on its KGS corridor.
        corridor = Corridor.objects.filter(source_currency=data["source_currency"]).order_by("id").first()
        recorded = []
        [outcome] = action_perform(action=rate_manual_action(value=data["rate"], recorded=recorded),
                                   actor=request.user, ids=[corridor.pk], reason=data["reason"])
        if outcome.outcome != AuditEntry.Outcome.DONE:
            # The form checked the same rules a moment ago: only a race (another rate, a revoked permission) is here.
            raise PermissionDenied(f"The rate was not recorded: {outcome.detail}")
        [saved] = recorded
        for field in Rate._meta.concrete_fields:  # the admin's log, message and redirect name the recorded row
            setattr(obj, field.attname, getattr(saved, field.attname))
