"""`python -m gateway.dev.totp`: the current two-factor code of `make run`'s admin, from DEV_ADMIN_TOTP_KEY in
var/dev.env (devsetup gives the admin a TOTP device with that key). Local development only: it reads the same file
that holds the admin's password. Standard library only, like envfile."""

import base64
import hmac
import os
import sys
import time
from hashlib import sha1
from urllib.parse import quote

from gateway.dev import envfile


def code(key_hex, at=None, step=30, digits=6):
    """RFC 6238 TOTP (SHA-1, 30 s, 6 digits: django-otp's TOTPDevice defaults)."""
    counter = int((time.time() if at is None else at) // step)
    mac = hmac.new(bytes.fromhex(key_hex), counter.to_bytes(8, "big"), sha1).digest()
    offset = mac[-1] & 0x0F
    value = int.from_bytes(mac[offset:offset + 4], "big") & 0x7FFFFFFF
    return f"{value % 10**digits:0{digits}d}"


def uri(key_hex, user="admin", issuer="tulpar"):
    secret = base64.b32encode(bytes.fromhex(key_hex)).decode().rstrip("=")
    return f"otpauth://totp/{quote(issuer)}:{quote(user)}?secret={secret}&issuer={quote(issuer)}"


def main():
    key = os.environ.get("DEV_ADMIN_TOTP_KEY") or envfile.read(envfile.var_dir() / envfile.DEV_ENV).get(
        "DEV_ADMIN_TOTP_KEY")
    if not key:
        sys.exit("No DEV_ADMIN_TOTP_KEY in the environment or var/dev.env: run `make run` once first.")
    print(code(key))


if __name__ == "__main__":
    main()
