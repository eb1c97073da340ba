"""Outgoing webhooks in admin: partners' endpoints (re-enable), the event outbox (replay) and the delivery log with
every attempt. Secrets are never shown (they are stored encrypted and shown to the partner once)."""

from django.contrib import admin, messages

from payments.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent
from payments.services import webhooks


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ReadOnlyAdmin):
    list_display = ("id", "partner", "url", "enabled", "disabled_reason", "failing_since", "created_at")
    list_filter = ("enabled", "partner")
    search_fields = ("id", "url", "partner__name")
    readonly_fields = ("id", "partner", "url", "event_types", "enabled", "disabled_reason", "disabled_at",
                       "failing_since", "created_at", "updated_at")
    fields = ("id", "partner", "url", "description", *readonly_fields[3:])
    actions = ["reenable"]

    @admin.action(description="Re-enable the selected endpoints (their pending deliveries go out now)",
                  permissions=["change"])
    def reenable(self, request, queryset):
        for endpoint in queryset.filter(enabled=False):
            webhooks.endpoint_enable(endpoint=endpoint)
        messages.success(request, "Re-enabled.")


class DeliveryInline(admin.TabularInline):
    model = WebhookDelivery
    fields = ("endpoint", "state", "attempts", "last_status_code", "last_error", "next_attempt_at", "delivered_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin):
    list_display = ("msg_id", "partner", "type", "subject", "created_at")
    list_filter = ("type", "partner")
    search_fields = ("msg_id", "subject")
    readonly_fields = ("msg_id", "partner", "type", "subject", "payload", "created_at")
    inlines = [DeliveryInline]
    actions = ["replay"]

    @admin.action(description="Replay the selected events (same webhook-id) to their subscribed endpoints",
                  permissions=["change"])
    def replay(self, request, queryset):
        count = sum(len(webhooks.event_replay(event=event)) for event in queryset)
        messages.success(request, f"{count} deliveries scheduled.")


class AttemptInline(admin.TabularInline):
    model = WebhookAttempt
    fields = ("number", "status_code", "response_snippet", "error", "duration_ms", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = ("event", "endpoint", "state", "attempts", "last_status_code", "next_attempt_at", "delivered_at")
    list_filter = ("state",)
    search_fields = ("event__msg_id", "endpoint__id", "endpoint__url")
    list_select_related = ("event", "endpoint")
    readonly_fields = ("event", "endpoint", "state", "attempts", "next_attempt_at", "lease_until",
                       "last_status_code", "last_error", "delivered_at", "created_at")
    inlines = [AttemptInline]
    actions = ["replay"]

    @admin.action(description="Deliver the selected again (same webhook-id)", permissions=["change"])
    def replay(self, request, queryset):
        for delivery in queryset.select_related("event", "endpoint"):
            webhooks.event_replay(event=delivery.event, endpoint=delivery.endpoint)
        messages.success(request, "Scheduled.")
