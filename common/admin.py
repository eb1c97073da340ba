"""Admin pieces both apps share."""

from django.contrib import admin


class ReadOnlyAdmin(admin.ModelAdmin):
    """Money records change only through services: admin shows them (and runs actions), it does not edit them."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
