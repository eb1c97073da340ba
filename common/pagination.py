"""Cursor pagination that answers a bad cursor (undecodable or tampered) with a 400 problem, not a 404 or a 500."""

from django.core.exceptions import ValidationError
from rest_framework import status
from rest_framework.exceptions import APIException, NotFound
from rest_framework.pagination import CursorPagination


class InvalidCursor(APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = "The cursor is not valid: use a `next` or `previous` link of this list as it was given."
    default_code = "invalid_cursor"


class SafeCursorPagination(CursorPagination):
    """DRF answers an undecodable cursor with 404 (as if the list were missing) and decodes a cursor's position
    without checking its type, so the query fails when it runs (a `p` of "abc" against an integer or date column).
    Both are a bad request parameter: 400 `invalid-cursor`."""

    def decode_cursor(self, request):
        try:
            return super().decode_cursor(request)
        except NotFound:
            raise InvalidCursor() from None

    def paginate_queryset(self, queryset, request, view=None):
        try:
            return super().paginate_queryset(queryset, request, view)
        except (ValueError, ValidationError):
            raise InvalidCursor() from None

    def get_paginated_response_schema(self, schema):
        response = super().get_paginated_response_schema(schema)
        response["required"] = ["next", "previous", "results"]  # always present; the links are null at the ends
        return response
