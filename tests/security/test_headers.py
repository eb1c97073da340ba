"""Security headers on every route (RELIABILITY.md "Security", ASVS 14.4): a Content-Security-Policy that allows
scripts and frames only from us and the Stripe.js host, forbids being framed, <base> and plugins and posts forms
only to us; a Permissions-Policy; and `Referrer-Policy: no-referrer` on the status pages.

The routes are read from the URL configuration itself, so a route added later is checked without editing this file."""

import re
import uuid
from decimal import Decimal

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import URLResolver, get_resolver

from payments.models import Transfer
from payments.services.quotes import quote_create
from tests.helpers import staff_login

pytestmark = pytest.mark.django_db

STRIPE_JS_ORIGIN = re.match(r"https?://[^/]+", settings.STRIPE_JS_URL).group(0)


def all_routes(patterns=None, prefix=""):
    """Every URL pattern of the project as one string (routes and regexes joined as Django joins them)."""
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            yield from all_routes(pattern.url_patterns, prefix + str(pattern.pattern))
        else:
            yield prefix + str(pattern.pattern)


def concrete(route, samples):
    """A path that matches `route`: each <converter:name> or (?P<name>...) replaced by samples[name], else a value
    of the converter's shape (the first alternative of a regex group)."""
    by_converter = {"uuid": str(uuid.uuid4()), "int": "1", "path": "1", "str": "sample", "slug": "sample"}

    def route_part(match):
        converter, name = match.group(1) or "str", match.group(2)
        return samples.get(name, by_converter[converter])

    def regex_part(match):
        name, body = match.group(1), match.group(2)
        return samples.get(name, "nowhere" if body == ".*" else body.split("|")[0])

    path = re.sub(r"<(?:(\w+):)?(\w+)>", route_part, route)
    path = re.sub(r"\(\?P<(\w+)>([^)]*)\)", regex_part, path)
    return "/" + path.replace("^", "").replace("$", "").replace("\\Z", "").replace("\\", "")


@pytest.fixture
def transfer(pricing):
    quote = quote_create(source_currency="RUB", source_amount=Decimal("15000.00"), partner=None)
    return Transfer.objects.create(
        quote=quote, idempotency_key=str(uuid.uuid4()), request_fingerprint="0" * 64, sender_name="Aibek Usenov",
        sender_phone="+79161234567", sender_email="aibek@example.com", recipient_name="Gulnara Usenova",
        recipient_phone="+996555123456", recipient_wallet="0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
        status=Transfer.Status.FUNDED)


@pytest.fixture
def paths(transfer):
    samples = {"quote_id": str(transfer.quote_id), "code": "ru", "app_label": "payments"}
    routes = list(all_routes())
    found = {concrete(route, samples) for route in routes}
    # Status pages with their real tokens, beside the "sample" (not found) ones.
    found |= {f"/t/{transfer.sender_token}", f"/r/{transfer.recipient_token}", f"/t/{transfer.sender_token}?fragment=1",
              f"/t/{transfer.sender_token}/pay", "/static/css/site.css", "/no/such/page"}
    assert len(routes) > 40 and any(p.startswith("/admin/payments/") for p in found), routes
    return sorted(found)


def csp_directives(response):
    header = response.headers.get("Content-Security-Policy")
    assert header, f"{response.request['PATH_INFO']}: no Content-Security-Policy"
    return {name: values for name, *values in (part.split() for part in header.split(";") if part.strip())}


def assert_security_headers(path, response):
    directives = csp_directives(response)
    where = f"{path} ({response.status_code}): {directives}"
    assert directives["default-src"] == ["'self'"], where
    assert set(directives["script-src"]) <= {"'self'", STRIPE_JS_ORIGIN}, where
    assert set(directives["frame-src"]) <= {"'self'", STRIPE_JS_ORIGIN}, where
    assert directives["frame-ancestors"] == ["'none'"], where
    assert directives["base-uri"] == ["'none'"], where
    assert directives["form-action"] == ["'self'"], where
    assert directives["object-src"] == ["'none'"], where
    policy = response.headers.get("Permissions-Policy", "")
    assert "camera=()" in policy and "geolocation=()" in policy and "microphone=()" in policy, f"{path}: {policy!r}"
    assert response.headers["X-Content-Type-Options"] == "nosniff", path
    assert response.headers["X-Frame-Options"] == "DENY", path


def test_every_route_sends_the_csp_and_permissions_policy_to_anyone(client, paths):
    """Every URL pattern (sender pages, status pages, API and its docs, the Stripe webhook, every admin page, a
    static file and a 404), requested anonymously, answers with the CSP and the Permissions-Policy, whatever the
    status (pages, redirects to the login, 401s, 404s, 405s)."""
    statuses = set()
    for path in paths:
        response = client.get(path)
        statuses.add(response.status_code)
        assert_security_headers(path, response)
    assert {200, 302, 401, 404, 405} <= statuses


def test_every_route_sends_the_csp_and_permissions_policy_to_an_operator(paths):
    """The same for a logged-in superuser, who gets the admin's real pages (change lists, forms, history)."""
    admin = get_user_model().objects.create_superuser("root", "root@example.com", "a long password 1")
    client = staff_login(Client(), admin)  # admin needs a verified second factor
    ok = 0
    for path in paths:
        response = client.get(path)
        ok += response.status_code == 200
        assert_security_headers(path, response)
    assert ok > 20


def test_script_sources_are_ours_and_stripe_js_with_nothing_inline(client, transfer):
    """The pay page (which loads Stripe.js), the start page and the API docs allow scripts from 'self' and the
    Stripe.js origin only (so no 'unsafe-inline', 'unsafe-eval', data: or wildcards) and connections only to us
    and the Stripe API."""
    stripe_api = re.match(r"https?://[^/]+", settings.STRIPE_API_BASE).group(0)
    for path in (f"/t/{transfer.sender_token}/pay", "/", "/api/v1/docs/", "/api/v1/redoc/"):
        directives = csp_directives(client.get(path))
        assert set(directives["script-src"]) <= {"'self'", STRIPE_JS_ORIGIN}, (path, directives)
        assert set(directives["connect-src"]) <= {"'self'", stripe_api}, (path, directives)
        assert "'unsafe-inline'" not in directives.get("script-src-elem", []) + directives.get("script-src-attr", [])
    assert STRIPE_JS_ORIGIN in csp_directives(client.get(f"/t/{transfer.sender_token}/pay"))["script-src"]


def test_status_pages_keep_no_referrer(client, transfer):
    """The status pages, whose URL is the only key to them, still send `Referrer-Policy: no-referrer` with the CSP
    on; the form pages keep `same-origin` (CSRF needs an Origin)."""
    for path in (f"/t/{transfer.sender_token}", f"/r/{transfer.recipient_token}", f"/t/{transfer.sender_token}?fragment=1"):
        response = client.get(path)
        assert response.status_code == 200
        assert response["Referrer-Policy"] == "no-referrer"
        assert_security_headers(path, response)
    assert client.get("/")["Referrer-Policy"] == "same-origin"


def test_refusals_carry_the_headers_too(client):
    """A request refused before any view runs (a body over the limit) still gets the CSP and Permissions-Policy."""
    body = b"x" * (settings.REQUEST_BODY_MAX_BYTES + 1)
    for path in ("/", "/api/v1/quotes"):
        response = client.post(path, data=body, content_type="application/octet-stream")
        assert response.status_code == 413
        assert_security_headers(path, response)
