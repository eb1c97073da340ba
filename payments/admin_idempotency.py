"""Idempotency-Key records in admin, read-only: which keys a partner used, for what, and whether the first request
finished. The stored response bodies are not shown (a transfer's carries its card payment's client secret)."""

from django.contrib import admin

from common.admin import ReadOnlyAdmin
from payments.models import IdempotencyRecord


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(ReadOnlyAdmin):
    list_display = ["key", "partner", "method", "path", "state", "response_status", "created_at", "expires_at"]
    list_filter = ["state", "partner"]
    search_fields = ["key", "path"]
    fields = ["partner", "key", "method", "path", "fingerprint", "state", "locked_until", "response_status",
              "response_headers", "created_at", "expires_at"]
