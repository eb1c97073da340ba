"""Partner API keys in admin: prefix, mode, scopes, last use and expiry; rotate and revoke are staff actions
(payments/guarded_keys.py) with a reason in the audit trail. A new key is shown once on the page that made it."""

from django import forms
from django.contrib import admin
from django.template.response import TemplateResponse
from rest_framework_api_key.admin import APIKeyModelAdmin
from rest_framework_api_key.models import APIKey

from payments import guarded_keys
from payments.models import PartnerAPIKey
from payments.scopes import DEFAULT_SCOPES, SCOPES
from payments.services.api_keys import api_key_create
from staff.admin_actions import GuardedActionsMixin, confirm_with_reason
from staff.services import action_perform, action_preview


class PartnerAPIKeyForm(forms.ModelForm):
    # A fixed choice list: an unknown scope is a form error and nothing is stored.
    scopes = forms.MultipleChoiceField(choices=[(s, s) for s in SCOPES], widget=forms.CheckboxSelectMultiple,
                                       initial=list(DEFAULT_SCOPES), required=False)

    class Meta:
        model = PartnerAPIKey
        fields = ["partner", "name", "livemode", "scopes", "rate_limit_per_minute", "expiry_date", "revoked"]

    def clean_scopes(self):
        return [s for s in SCOPES if s in self.cleaned_data["scopes"]]


# The library registers an admin for its own APIKey model, which we never use (a key belongs to a partner): a second
# "API keys" page beside ours. Its app is installed before payments, so its admin is registered by now.
if admin.site.is_registered(APIKey):
    admin.site.unregister(APIKey)


@admin.register(PartnerAPIKey)
class PartnerAPIKeyAdmin(GuardedActionsMixin, APIKeyModelAdmin):
    form = PartnerAPIKeyForm
    list_display = ["shown_prefix", "name", "partner", "livemode", "scope_list", "last_used_at", "expiry_date",
                    "_has_expired", "revoked", "created"]
    list_filter = ["livemode", "revoked", "partner", "created"]
    search_fields = ["name", "prefix", "partner__name"]
    list_select_related = ["partner"]
    actions = ["rotate", "revoke"]

    @admin.display(description="prefix", ordering="prefix")
    def shown_prefix(self, obj):
        return obj.display_prefix

    @admin.display(description="scopes")
    def scope_list(self, obj):
        return " ".join(obj.scopes)

    def get_readonly_fields(self, request, obj=None):
        fields = ("prefix", "last_used_at", "rotated_from")
        if obj is not None:  # a key's mode and scopes are fixed once it exists: rotate or make a new key
            fields += ("livemode", "scopes", "partner")
        if obj is not None:  # revoking and rotating are audited actions; an expiry moved later would revive a key
            fields += ("revoked", "expiry_date")
        if obj is not None and obj.revoked:
            fields += ("name",)
        return fields

    def get_form(self, request, obj=None, **kwargs):
        if obj is not None:
            kwargs["fields"] = ["name", "rate_limit_per_minute"]
        return super().get_form(request, obj, **kwargs)

    def save_model(self, request, obj, form=None, change=False):
        if change:
            return super().save_model(request, obj, form, change)
        created, raw = api_key_create(partner=obj.partner, scopes=obj.scopes, livemode=obj.livemode, name=obj.name,
                                      rate_limit_per_minute=obj.rate_limit_per_minute)
        for field in PartnerAPIKey._meta.concrete_fields:  # the admin's log and redirect name the created row
            setattr(obj, field.attname, getattr(created, field.attname))
        request.tulpar_new_key = raw

    def response_add(self, request, obj, post_url_continue=None):
        # The raw key is shown on this page once: never in a message (kept in a cookie or the session) or a log.
        raw = getattr(request, "tulpar_new_key", None)
        if raw is None:
            return super().response_add(request, obj, post_url_continue)
        return TemplateResponse(request, "admin/payments/partnerapikey/rotated.html", {
            **self.admin_site.each_context(request), "title": "New API key", "opts": self.model._meta,
            "rotated": [("(new key)", obj.display_prefix, raw, obj.expiry_date or "no expiry")]})

    @admin.action(description="Rotate (a new key; the old one keeps working for the overlap window)",
                  permissions=["rotate"])
    def rotate(self, request, queryset):
        rows = [(obj, action_preview(action=guarded_keys.ROTATE, obj=obj)) for obj in queryset]
        with guarded_keys.rotated_keys_collect() as rotated:
            response = confirm_with_reason(
                self, request, queryset, rows=rows,
                run=lambda reason: action_perform(action=guarded_keys.ROTATE, actor=request.user,
                                                  ids=[obj.pk for obj, _ in rows], reason=reason))
        if response is None and rotated:
            return TemplateResponse(request, "admin/payments/partnerapikey/rotated.html", {
                **self.admin_site.each_context(request), "title": "New API keys", "opts": self.model._meta,
                "rotated": rotated})
        return response

    @admin.action(description="Revoke (stops at once, cannot be undone)", permissions=["revoke"])
    def revoke(self, request, queryset):
        rows = [(obj, action_preview(action=guarded_keys.REVOKE, obj=obj)) for obj in queryset]
        return confirm_with_reason(
            self, request, queryset, rows=rows,
            run=lambda reason: action_perform(action=guarded_keys.REVOKE, actor=request.user,
                                              ids=[obj.pk for obj, _ in rows], reason=reason))

    def has_rotate_permission(self, request):
        return request.user.has_perm(guarded_keys.ROTATE.permission)

    def has_revoke_permission(self, request):
        return request.user.has_perm(guarded_keys.REVOKE.permission)
