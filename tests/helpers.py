"""Test-only setup helpers."""

from django.db import models


def force_status(queryset, status, **fields):
    """Put rows straight into `status` to set up a scenario, bypassing the guarded transitions that production
    code must use (StatusQuerySet refuses `.update(status=...)`; this calls Django's own update on purpose)."""
    return models.QuerySet.update(queryset, status=status, **fields)
