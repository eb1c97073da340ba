"""Operator logins (issue 7, item 5, admin half): admin needs a second factor (TOTP) for every staff member,
superusers included; repeated failed logins lock the username from that address out (429), shared through the
database by every web process, until the cool-off passes or someone resets it."""

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client

from tests.security.factories import PASSWORD, staff_user

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/?next=/admin/"


def _device(user):
    from django_otp.plugins.otp_totp.models import TOTPDevice

    return TOTPDevice.objects.create(user=user, name="phone", confirmed=True)


def _code(device):
    from django_otp.oath import TOTP

    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return f"{totp.token():0{device.digits}d}"


def _login(client, username, password, token="", **extra):
    return client.post(LOGIN, {"username": username, "password": password, "otp_token": token, "next": "/admin/"},
                       **extra)


def _in_admin(client):
    return client.get("/admin/payments/transfer/").status_code == 200


def test_a_session_without_a_second_factor_does_not_reach_admin(client):
    """A staff session that no OTP device verified (a password-only login) is sent back to the login page, even
    for a superuser."""
    root = get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
    client.force_login(root)
    response = client.get("/admin/payments/transfer/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert client.get("/admin/").status_code == 302


def test_the_right_password_without_a_token_does_not_log_in(client):
    """Username and password alone (the device exists) leave the visitor on the login page."""
    user = staff_user("auditor")
    _device(user)
    response = _login(client, user.username, PASSWORD)
    assert response.status_code == 200 and "OTP" in response.content.decode()
    assert not _in_admin(client)


def test_staff_without_a_device_cannot_log_in(client):
    """Staff with no TOTP device cannot log in at all: a superuser must enrol them first."""
    user = staff_user("auditor")
    assert _login(client, user.username, PASSWORD, "123456").status_code == 200
    assert not _in_admin(client)


def test_a_wrong_token_is_refused(client):
    """The right password with a wrong TOTP code does not log in."""
    user = staff_user("auditor")
    device = _device(user)
    wrong = f"{(int(_code(device)) + 1) % 10**6:06d}"
    assert _login(client, user.username, PASSWORD, wrong).status_code == 200
    assert not _in_admin(client)


def test_password_and_the_current_totp_code_get_in(client):
    """The right password with the device's current code logs in and admin pages open."""
    user = staff_user("auditor")
    device = _device(user)
    response = _login(client, user.username, PASSWORD, _code(device))
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert _in_admin(client)


def test_repeated_failures_lock_the_username_out_from_that_address(client):
    """After AXES_FAILURE_LIMIT wrong passwords from one address, even the right password and code get the 429
    lockout page; the same username from another address is not locked; resetting the username unlocks it."""
    from axes.models import AccessAttempt

    user = staff_user("auditor")
    device = _device(user)
    limit = settings.AXES_FAILURE_LIMIT
    for _ in range(limit - 1):
        assert _login(client, user.username, "wrong-password").status_code == 200
    locked = _login(client, user.username, "wrong-password")
    assert locked.status_code == 429 and "locked" in locked.content.decode().lower()
    response = _login(client, user.username, PASSWORD, _code(device))
    assert response.status_code == 429 and not _in_admin(client)
    # Stored in the database, so every web process sees the same count.
    assert AccessAttempt.objects.get(username=user.username).failures_since_start >= limit

    elsewhere = Client(REMOTE_ADDR="198.51.100.7")
    assert _login(elsewhere, user.username, "wrong-password").status_code == 200

    call_command("axes_reset_username", user.username, verbosity=0)
    assert _login(client, user.username, PASSWORD, _code(device)).status_code == 302
    assert _in_admin(client)


def test_the_dev_admin_logs_in_with_the_code_from_its_provisioned_key(client):
    """`make run`'s admin: devsetup's provisioning gives it a TOTP device from DEV_ADMIN_TOTP_KEY, whose codes log
    in (and provisioning again keeps one device); `python -m gateway.dev.totp` computes the same codes."""
    from django_otp.oath import TOTP
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from gateway.dev import totp
    from staff.services import totp_device_provision

    admin = get_user_model().objects.create_superuser("admin", "admin@example.com", PASSWORD)
    key = "3132333435363738393031323334353637383930"
    totp_device_provision(user=admin, key_hex=key, name="make run")
    device = totp_device_provision(user=admin, key_hex=key, name="make run")
    assert TOTPDevice.objects.filter(user=admin).count() == 1
    for at in (0, 1_800_000_000, 1_800_000_029):
        reference = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
        reference.time = at
        assert totp.code(key, at=at) == f"{reference.token():06d}"
    assert _login(client, "admin", PASSWORD, _code(device)).status_code == 302
    assert _in_admin(client)


def test_a_new_staff_member_is_enrolled_with_totp_enrol(client):
    """`manage.py totp_enrol USER` prints an otpauth URI once; an authenticator fed with it produces codes that log
    the user in."""
    import base64
    import io
    from urllib.parse import parse_qs, urlparse

    from gateway.dev import totp

    user = staff_user("operator")
    out = io.StringIO()
    call_command("totp_enrol", user.username, stdout=out)
    uri = urlparse(out.getvalue().strip())
    assert uri.scheme == "otpauth" and user.username in uri.path
    secret = parse_qs(uri.query)["secret"][0]
    key = base64.b32decode(secret + "=" * (-len(secret) % 8)).hex()
    assert _login(client, user.username, PASSWORD, totp.code(key)).status_code == 302
    assert _in_admin(client)


@pytest.mark.parametrize("behind_proxy", [False, True])
def test_a_forged_forwarded_for_header_does_not_dodge_the_lockout(client, settings, behind_proxy):
    """A new X-Forwarded-For on every attempt changes nothing: without a proxy the header is ignored; behind our
    proxy only its last hop (the one the proxy appends, here the same each time) counts."""
    settings.STAFF_CLIENT_IP_FROM_PROXY = behind_proxy
    user = staff_user("auditor")
    statuses = [
        _login(client, user.username, "wrong-password", HTTP_X_FORWARDED_FOR=f"203.0.113.{n}, 192.0.2.1").status_code
        for n in range(settings.AXES_FAILURE_LIMIT + 1)]
    assert statuses[-1] == 429
