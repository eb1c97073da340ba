"""Cursor pagination that answers a tampered cursor with a 404 problem instead of a 500."""

from django.core.exceptions import ValidationError
from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination


class SafeCursorPagination(CursorPagination):
    """DRF decodes the cursor's position without checking its type; the query then fails when it runs (a `p` of "abc"
    against an integer or date column). A position that does not fit the ordering field is an invalid cursor."""

    def paginate_queryset(self, queryset, request, view=None):
        try:
            return super().paginate_queryset(queryset, request, view)
        except (ValueError, ValidationError):
            raise NotFound(self.invalid_cursor_message) from None
