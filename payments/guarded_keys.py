"""Staff actions on partner API keys (run from admin through staff.services: permission, reason, audit trail).
A rotated key's raw successor is handed to the admin page through `rotated_keys_collect`, never into the audit
trail or a message (only the successor's prefix is recorded)."""

import contextvars
from contextlib import contextmanager

from payments.models import PartnerAPIKey
from payments.services.api_keys import ApiKeyRefused, api_key_revoke, api_key_rotate
from staff.actions import GuardedAction

_collected = contextvars.ContextVar("rotated_keys", default=None)


@contextmanager
def rotated_keys_collect():
    """Yields a list that the rotations run inside the block append (old prefix, new prefix, raw key) to."""
    keys = []
    token = _collected.set(keys)
    try:
        yield keys
    finally:
        _collected.reset(token)


def _usable(key):
    if key.revoked or key.has_expired:
        raise ApiKeyRefused("the key is revoked or expired")


def _rotate(key, *, reason, actor):
    new, raw = api_key_rotate(key_id=key.pk)
    key.refresh_from_db()
    keys = _collected.get()
    if keys is not None:
        keys.append((key.display_prefix, new.display_prefix, raw, key.expiry_date))
    return f"rotated: the successor is {new.display_prefix}; this key stops at {key.expiry_date:%Y-%m-%d %H:%M %Z}"


def _revoke(key, *, reason, actor):
    api_key_revoke(key_id=key.pk)
    return "revoked"


def _not_revoked(key):
    if key.revoked:
        raise ApiKeyRefused("the key is already revoked")


ROTATE = GuardedAction(permission="payments.rotate_partnerapikey", model=PartnerAPIKey, done="rotated",
                       perform=_rotate, check=_usable)
REVOKE = GuardedAction(permission="payments.revoke_partnerapikey", model=PartnerAPIKey, done="revoked",
                       perform=_revoke, check=_not_revoked)
ACTIONS = (ROTATE, REVOKE)
