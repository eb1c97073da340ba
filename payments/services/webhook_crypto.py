"""Webhook signing secrets at rest: Fernet (AES-128-CBC + HMAC-SHA256) under WEBHOOK_ENCRYPTION_KEYS, the first key
encrypting and every key decrypting (so the key can be rotated). Without that setting the key derives from
SECRET_KEY, which already guards sessions and signed links; production sets its own (README)."""

import base64
import hashlib
import secrets

from cryptography.fernet import Fernet, MultiFernet
from django.conf import settings

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 24  # Standard Webhooks asks for 24 to 64 random bytes


def _fernet():
    keys = [k.strip() for k in settings.WEBHOOK_ENCRYPTION_KEYS.split(",") if k.strip()]
    if not keys:
        derived = hashlib.sha256(b"tulpar-webhook-secrets:" + settings.SECRET_KEY.encode()).digest()
        keys = [base64.urlsafe_b64encode(derived).decode()]
    return MultiFernet([Fernet(k) for k in keys])


def secret_new():
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_encrypt(secret):
    return _fernet().encrypt(secret.encode()).decode()


def secret_decrypt(token):
    return _fernet().decrypt(token.encode()).decode()
