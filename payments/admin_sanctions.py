"""Sanctions lists in admin, read-only: the loaded versions (which is current per source, when and by whom, counts,
the files' sha256) and their entries, searchable by any listed name or alias and by wallet address. Lists change
only through `manage.py sanctions_load` (payments/sanctions/load.py)."""

from django.contrib import admin

from common.admin import ReadOnlyAdmin
from payments.models import SanctionsAddress, SanctionsEntry, SanctionsListVersion, SanctionsName


@admin.register(SanctionsListVersion)
class SanctionsListVersionAdmin(ReadOnlyAdmin):
    list_display = ["id", "source", "is_current", "published_on", "loaded_at", "loaded_by", "entry_count", "name_count",
                    "alias_count", "address_count", "file_format"]
    list_filter = ["source", "is_current"]
    date_hierarchy = "loaded_at"
    ordering = ["-loaded_at"]


class SanctionsNameInline(admin.TabularInline):
    model = SanctionsName
    fields = ["name", "is_alias", "script"]
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class SanctionsAddressInline(SanctionsNameInline):
    model = SanctionsAddress
    fields = ["currency", "address"]


@admin.register(SanctionsEntry)
class SanctionsEntryAdmin(ReadOnlyAdmin):
    list_display = ["primary_name", "kind", "source_id", "version", "birth_dates", "nationalities", "programs"]
    list_filter = ["version__source", "version__is_current", "kind"]
    search_fields = ["primary_name", "names__name", "source_id", "addresses__normalised"]  # case-insensitive
    list_select_related = ["version"]
    inlines = [SanctionsNameInline, SanctionsAddressInline]

