"""Notifications in admin: the outbox of messages to senders and recipients, read-only (what was told, to whom, over
which channel, and whether it went out). Addresses and text are not stored: the transfer holds them."""

from django.contrib import admin

from payments.models import Notification


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ("id", "transfer", "event", "role", "channel", "state", "attempts", "last_error", "sent_at",
                    "created_at")
    list_filter = ("state", "channel", "role", "event")
    search_fields = ("transfer__id",)
    date_hierarchy = "created_at"
    list_select_related = ("transfer",)
    readonly_fields = ("transfer", "event", "role", "channel", "state", "attempts", "next_attempt_at", "lease_until",
                       "last_error", "provider_id", "sent_at", "created_at", "updated_at")
    fields = readonly_fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
