"""Admin pieces both apps share."""

from decimal import Decimal

from django.contrib import admin


class ReadOnlyAdmin(admin.ModelAdmin):
    """Money records change only through services: admin shows them (and runs actions), it does not edit them."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def compact(value, places=2):
    """A balance short enough for a list column: 1234567.891 → "1.23M", 0.01234 → "0.0123"; None → "—"."""
    if value is None:
        return "—"
    value = Decimal(value)
    for size, suffix in ((Decimal(10) ** 9, "B"), (Decimal(10) ** 6, "M"), (Decimal(10) ** 3, "k")):
        if abs(value) >= size:
            return f"{value / size:.{places}f}{suffix}"
    if value and abs(value) < 1:
        return f"{value:.4f}"
    return f"{value:.{places}f}"
