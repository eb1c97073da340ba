"""Test-only setup helpers."""

from django.db import models


def force_status(queryset, status, **fields):
    """Put rows straight into `status` to set up a scenario, bypassing the guarded transitions that production
    code must use (StatusQuerySet refuses `.update(status=...)`; this calls Django's own update on purpose)."""
    return models.QuerySet.update(queryset, status=status, **fields)


def staff_login(client, user):
    """Log `user` into admin as a two-factor login does: a session plus a confirmed TOTP device verified for it
    (admin refuses a session without one). Returns the client."""
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.filter(user=user, confirmed=True).first() or TOTPDevice.objects.create(
        user=user, name="test", confirmed=True)
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client
