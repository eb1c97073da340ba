"""Partner API keys: created with scopes and a mode (live or test), rotated with an overlap window, revoked, and
their last use recorded at most once a minute (docs/api.md "Keys and scopes"). The raw key is returned once and only
its hash is stored."""

import logging
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from common.errors import ApplicationError
from payments.models import PartnerAPIKey
from payments.scopes import UnknownScopes, scopes_clean

log = logging.getLogger(__name__)
LAST_USED_EVERY_SECONDS = 60


class ApiKeyRefused(ApplicationError):
    code = "api-key-refused"
    title = "The API key request cannot be done"


def api_key_create(*, partner, scopes=None, livemode=True, name=None, rate_limit_per_minute=None, rotated_from=None):
    """Returns (key object, raw key). `scopes` None: payments.scopes.DEFAULT_SCOPES; an unknown scope is refused
    (ApiKeyRefused) and nothing is stored."""
    try:
        scopes = scopes_clean(scopes)
    except UnknownScopes as exc:
        raise ApiKeyRefused(str(exc), field="scopes") from exc
    if rate_limit_per_minute is not None and rate_limit_per_minute < 1:
        raise ApiKeyRefused("A key's rate limit is at least 1 request a minute.", field="rate_limit_per_minute")
    name = (name or f"{partner.name} {'live' if livemode else 'test'} key")[:50]
    obj, raw = PartnerAPIKey.objects.create_key(partner=partner, name=name, scopes=scopes, livemode=livemode,
                                                rate_limit_per_minute=rate_limit_per_minute, rotated_from=rotated_from)
    log.info("api_key_created partner=%s prefix=%s livemode=%s scopes=%s", partner.pk, obj.display_prefix,
             livemode, ",".join(scopes))
    return obj, raw


def api_key_rotate(*, key_id, overlap=None):
    """A new key with the same partner, scopes, mode and limit; the old one keeps working until now + `overlap`
    (settings.API_KEY_ROTATION_OVERLAP_HOURS; never later than it would have expired anyway), then stops.
    Returns (new key object, raw key). A revoked or expired key is not rotated (ApiKeyRefused)."""
    overlap = timedelta(hours=settings.API_KEY_ROTATION_OVERLAP_HOURS) if overlap is None else overlap
    with transaction.atomic():
        old = PartnerAPIKey.objects.select_for_update().select_related("partner").filter(pk=key_id).first()
        if old is None:
            raise ApiKeyRefused("No such key.")
        if old.revoked or old.has_expired:
            raise ApiKeyRefused(f"Key {old.display_prefix} is revoked or expired: create a new key instead.")
        until = timezone.now() + overlap
        if old.expiry_date is None or old.expiry_date > until:
            PartnerAPIKey.objects.filter(pk=old.pk).update(expiry_date=until)
        new, raw = api_key_create(partner=old.partner, scopes=old.scopes, livemode=old.livemode,
                                  name=old.name, rate_limit_per_minute=old.rate_limit_per_minute, rotated_from=old)
    log.info("api_key_rotated old=%s new=%s old_expires=%s", old.display_prefix, new.display_prefix, until)
    return new, raw


def api_key_revoke(*, key_id):
    """Stops the key now (cannot be undone)."""
    moved = PartnerAPIKey.objects.filter(pk=key_id, revoked=False).update(revoked=True)
    log.info("api_key_revoked id=%s changed=%s", key_id, bool(moved))
    return moved


def api_key_by_prefix(prefix):
    """The key named by its visible prefix (`tlp_live_AbCd1234`, `tlp_test_…` or the bare 8 characters)."""
    bare = prefix.removeprefix("tlp_live_").removeprefix("tlp_test_")
    key = PartnerAPIKey.objects.select_related("partner").filter(prefix=bare).first()
    if key is None or (prefix != bare and key.display_prefix != prefix):
        raise ApiKeyRefused(f"No key with prefix {prefix!r}.")
    return key


def api_key_touch(api_key):
    """Record the key's use, at most once a minute per key: a cache gate shared by every process, so a busy key
    costs one UPDATE a minute, not one per request."""
    if cache.add(f"api-key-used:{api_key.prefix}", 1, timeout=LAST_USED_EVERY_SECONDS):
        PartnerAPIKey.objects.filter(pk=api_key.pk).update(last_used_at=timezone.now())
