"""Partner API keys: scopes on every endpoint (fail closed), unknown scopes refused, rotation with an overlap window,
last use recorded at most once a minute, Bearer accepted beside Api-Key, per-key rate limits, admin and command."""

import uuid
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from rest_framework.test import APIClient, APIRequestFactory, force_authenticate
from rest_framework.views import APIView

from payments.api.permissions import HasRequiredScopes, scopes_required
from payments.models import Partner, PartnerAPIKey, Quote, Transfer
from payments.scopes import DEFAULT_SCOPES, PAYOUTS_CONFIRM, SCOPES
from payments.services.api_keys import ApiKeyRefused, api_key_create, api_key_rotate
from payments.services.setup import partner_create
from staff.models import AuditEntry
from tests.conftest import QUOTE_BODY, wait_for
from tests.helpers import staff_login
from tests.payments.test_api import assert_problem, transfer_body

pytestmark = pytest.mark.django_db

# Public documentation of the API itself: no key, no scopes (gateway/urls.py sets no permission on them).
PUBLIC = {"api-schema", "api-docs", "api-redoc"}
METHODS = ("get", "post", "put", "patch", "delete")


def api_views():
    """(route, url name, view class) for every URL under /api/v1/, from the URL resolver itself: a view added
    later by anyone is walked too."""
    found = []

    def walk(patterns, prefix):
        for p in patterns:
            if isinstance(p, URLResolver):
                walk(p.url_patterns, prefix + str(p.pattern))
            elif isinstance(p, URLPattern):
                route = prefix + str(p.pattern)
                cls = getattr(p.callback, "cls", None) or getattr(p.callback, "view_class", None)
                if route.startswith("api/v1/"):
                    found.append((route, p.name, cls))

    walk(get_resolver().url_patterns, "")
    return found


def view_methods(cls):
    return [m.upper() for m in METHODS if hasattr(cls, m)]


def concrete_path(route):
    """A request path for a route: ids are fresh UUIDs, a currency is RUB (scope checks run before any lookup)."""
    path = route.replace("<uuid:pk>", str(uuid.uuid4())).replace("<str:currency>", "RUB")
    for token in ("<uuid:", "<str:", "<int:", "<slug:"):
        while token in path:
            start = path.index(token)
            end = path.index(">", start)
            path = path[:start] + (str(uuid.uuid4()) if token == "<uuid:" else "1") + path[end + 1:]
    return "/" + path


def client_for(key):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    return client


def key_client(partner, scopes, *, livemode=True):
    return client_for(api_key_create(partner=partner, scopes=scopes, livemode=livemode)[1])


@pytest.fixture
def acme(db):
    return Partner.objects.create(name="acme-keys")


# Scopes -------------------------------------------------------------------------------------------

def test_every_api_view_declares_scopes_for_each_of_its_methods():
    """Fail closed, pinned over the URL resolver: each view under /api/v1/ (but the public schema and docs) checks
    scopes with HasRequiredScopes and declares a non-empty scope list, from the known scopes, for every method it
    serves."""
    views = api_views()
    assert {name for _, name, _ in views} >= {"api-quotes", "api-transfers", "api-balances", "api-sandbox-simulate"}
    for route, name, cls in views:
        if name in PUBLIC:
            continue
        assert cls is not None and issubclass(cls, APIView), route
        view = cls()
        assert any(issubclass(p, HasRequiredScopes) for p in view.permission_classes), route
        methods = view_methods(cls)
        assert methods, route
        for method in methods:
            declared = scopes_required(view, method)
            assert declared, f"{method} {route} declares no scopes"
            assert set(declared) <= set(SCOPES), (route, declared)


def test_a_view_that_declares_no_scopes_is_refused(acme):
    """A view without `required_scopes` (or without the method in its dict) answers 403 `scopes-undeclared`, even
    to a key holding every scope: a forgotten declaration never opens an endpoint."""
    key, _ = api_key_create(partner=acme, scopes=list(SCOPES))

    class Undeclared(APIView):
        def get(self, request):
            raise AssertionError("must not run")

    class OnlyPost(APIView):
        required_scopes = {"POST": ["quotes"]}

        def get(self, request):
            raise AssertionError("must not run")

    for view in (Undeclared, OnlyPost):
        request = APIRequestFactory().get("/api/v1/x")
        force_authenticate(request, user=acme, token=key)
        response = view.as_view()(request)
        response.render()
        assert response.status_code == 403
        assert response.data["type"].endswith("/scopes-undeclared")


def test_a_method_the_view_does_not_have_is_405_not_a_scope_refusal(acme):
    """The scope check fails closed only for methods a view implements: one it does not have at all is DRF's 405
    `method-not-allowed` (with `Allow`), whether or not the view declares scopes, for a key holding every scope."""
    key, _ = api_key_create(partner=acme, scopes=list(SCOPES))

    class Undeclared(APIView):
        def get(self, request):
            raise AssertionError("must not run")

    class OnlyPost(APIView):
        required_scopes = {"POST": ["quotes"]}

        def post(self, request):
            raise AssertionError("must not run")

    for view in (Undeclared, OnlyPost):
        for method in ("delete", "put", "patch"):
            request = getattr(APIRequestFactory(), method)("/api/v1/x")
            force_authenticate(request, user=acme, token=key)
            response = view.as_view()(request)
            response.render()
            assert response.status_code == 405, (view, method)
            assert response.data["type"].endswith("/method-not-allowed")


def test_every_endpoint_and_method_refuses_a_key_without_its_scope(acme, pricing):
    """For every view and method under /api/v1/ (walked from the resolver): a key holding every scope but the ones
    the method declares gets 403 `insufficient-scope` naming the missing scope, and nothing is created; a key with
    exactly those scopes gets past the check (whatever the endpoint then answers, it is not a scope refusal)."""
    before = (Quote.objects.count(), Transfer.objects.count())
    checked = 0
    for route, name, cls in api_views():
        if name in PUBLIC:
            continue
        view = cls()
        for method in view_methods(cls):
            needed = scopes_required(view, method)
            path = concrete_path(route)
            lacking = key_client(acme, [s for s in SCOPES if s not in needed])
            response = getattr(lacking, method.lower())(path, {}, format="json")
            body = assert_problem(response, 403, "insufficient-scope", "scopes")
            for scope in needed:
                assert scope in body["detail"], body
            for livemode in (True, False):
                holding = key_client(acme, needed, livemode=livemode)
                response = getattr(holding, method.lower())(path, {}, format="json")
                if response.status_code == 403:  # e.g. the sandbox refusing a live key, never a scope
                    assert not response.json()["type"].endswith(("/insufficient-scope", "/scopes-undeclared"))
            checked += 1
    assert checked >= 7
    assert (Quote.objects.count(), Transfer.objects.count()) == before


def test_scopes_gate_the_real_calls(acme, pricing):
    """A quotes-only key quotes but cannot create or read transfers; a read-only key lists but cannot quote."""
    quoting = key_client(acme, ["quotes"])
    quote = quoting.post("/api/v1/quotes", QUOTE_BODY, format="json")
    assert quote.status_code == 201
    refused = quoting.post("/api/v1/transfers", transfer_body(quote.json()["id"]), format="json",
                           HTTP_IDEMPOTENCY_KEY="k1")
    assert_problem(refused, 403, "insufficient-scope")
    assert_problem(quoting.get("/api/v1/transfers"), 403, "insufficient-scope")
    reading = key_client(acme, ["transfers:read"])
    assert reading.get("/api/v1/transfers").status_code == 200
    assert_problem(reading.post("/api/v1/quotes", QUOTE_BODY, format="json"), 403, "insufficient-scope")
    assert not Transfer.objects.exists()


def test_a_key_made_without_scopes_gets_all_but_payouts_confirm(acme):
    """The default (docs/api.md): every scope an origination partner needs; `payouts:confirm` only by name."""
    key, _ = api_key_create(partner=acme)
    assert key.scopes == list(DEFAULT_SCOPES)
    assert PAYOUTS_CONFIRM not in key.scopes and set(key.scopes) | {PAYOUTS_CONFIRM} == set(SCOPES)
    _, raw = partner_create(name="payout-bank", scopes=["payouts:confirm"])
    assert PartnerAPIKey.objects.get(partner__name="payout-bank").scopes == ["payouts:confirm"]


def test_unknown_scopes_are_refused_everywhere_and_nothing_is_stored(acme, client):
    """Service, both commands and the admin form: an unknown scope is a clear error naming it; no key (and no
    partner) is stored."""
    with pytest.raises(ApiKeyRefused, match="transfers:delete"):
        api_key_create(partner=acme, scopes=["quotes", "transfers:delete"])
    with pytest.raises(CommandError, match="bogus"):
        call_command("api_key", "create", acme.name, "--scopes", "quotes,bogus")
    with pytest.raises(CommandError, match="bogus"):
        call_command("create_partner", "newco", "--scopes", "bogus")
    assert not PartnerAPIKey.objects.exists()
    assert not Partner.objects.filter(name="newco").exists()
    with pytest.raises(Exception, match="bogus"):
        PartnerAPIKey.objects.create_key(partner=acme, name="x", scopes=["bogus"])
    assert not PartnerAPIKey.objects.exists()

    from tests.security.factories import staff_user
    staff_login(client, staff_user("operator"))
    response = client.post("/admin/payments/partnerapikey/add/", {
        "partner": acme.pk, "name": "from admin", "livemode": "on", "scopes": ["quotes", "bogus"]})
    assert response.status_code == 200  # the form again, with the error
    assert "bogus" in response.content.decode()
    assert not PartnerAPIKey.objects.exists()


def test_a_key_made_in_admin_is_shown_once_on_its_page_and_its_expiry_and_revocation_are_not_edited(client, acme):
    """Adding a key in admin shows the raw key on the answer page only (no message: messages live in a cookie or
    the session) and the key works; its change form edits name and rate limit only (revoking is an audited action,
    and an expiry moved later would revive a rotated key)."""
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_superuser("root", "r@example.com", "a-long-password-123")
    staff_login(client, user)
    response = client.post("/admin/payments/partnerapikey/add/", {
        "partner": acme.pk, "name": "from admin", "livemode": "on", "scopes": ["quotes"]}, follow=False)
    assert response.status_code == 200, response.content[:500]
    raw = response.context["rotated"][0][2]
    assert raw.startswith("tlp_live_") and raw in response.content.decode()
    assert not [m for m in response.context.get("messages", []) if raw in str(m)]
    key = PartnerAPIKey.objects.get(name="from admin")
    assert PartnerAPIKey.objects.get_from_key(raw).pk == key.pk and key.scopes == ["quotes"]
    form = client.get(f"/admin/payments/partnerapikey/{key.pk}/change/").context["adminform"].form
    assert set(form.fields) == {"name", "rate_limit_per_minute"}


# Authentication -----------------------------------------------------------------------------------

def test_bearer_and_api_key_headers_both_authenticate(acme):
    """`Authorization: Bearer <key>` works like `Api-Key <key>`; another scheme is 401 with a hint naming both."""
    _, raw = api_key_create(partner=acme)
    for scheme in ("Bearer", "Api-Key"):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"{scheme} {raw}")
        assert client.get("/api/v1/transfers").status_code == 200, scheme
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {raw}")
    body = assert_problem(client.get("/api/v1/transfers"), 401)
    assert "Bearer" in body["detail"] and "Api-Key" in body["detail"]


def test_keys_show_their_mode_and_a_marker_that_does_not_match_is_refused(acme):
    """Live keys read tlp_live_…, test keys tlp_test_…; only the hash is stored; a live key's secret under the test
    marker (or the reverse) is not a key."""
    live, live_raw = api_key_create(partner=acme)
    test, test_raw = api_key_create(partner=acme, livemode=False)
    assert live_raw.startswith("tlp_live_") and test_raw.startswith("tlp_test_")
    assert live.display_prefix == live_raw.split(".")[0] and test.display_prefix == test_raw.split(".")[0]
    for row in PartnerAPIKey.objects.values_list("hashed_key", flat=True):
        assert live_raw.split(".")[1] not in row and test_raw.split(".")[1] not in row
    swapped = "tlp_test_" + live_raw.removeprefix("tlp_live_")
    assert_problem(client_for(swapped).get("/api/v1/transfers"), 401)
    assert client_for(live_raw).get("/api/v1/transfers").status_code == 200
    assert client_for(test_raw).get("/api/v1/transfers").status_code == 200


def test_the_schema_documents_both_header_forms(client):
    """OpenAPI: an apiKey scheme for `Api-Key <key>` and an http bearer scheme, either one accepted."""
    schema = client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    schemes = schema["components"]["securitySchemes"]
    assert schemes["ApiKey"]["type"] == "apiKey" and schemes["ApiKey"]["name"] == "Authorization"
    assert schemes["BearerKey"] == {**schemes["BearerKey"], "type": "http", "scheme": "bearer"}
    security = schema["paths"]["/api/v1/transfers"]["get"]["security"]
    assert {"ApiKey": []} in security and {"BearerKey": []} in security


def test_last_used_is_recorded_at_most_once_a_minute(acme):
    """The first request sets last_used_at; further requests in the same minute write nothing to the key's row."""
    key, raw = api_key_create(partner=acme)
    client = client_for(raw)
    assert key.last_used_at is None
    before = timezone.now()
    assert client.get("/api/v1/transfers").status_code == 200
    first = PartnerAPIKey.objects.get(pk=key.pk).last_used_at
    assert first is not None and first >= before
    table = PartnerAPIKey._meta.db_table
    with CaptureQueriesContext(connection) as queries:
        for _ in range(3):
            assert client.get("/api/v1/transfers").status_code == 200
    assert not [q for q in queries.captured_queries if q["sql"].startswith("UPDATE") and table in q["sql"]]
    assert PartnerAPIKey.objects.get(pk=key.pk).last_used_at == first


def test_a_key_with_its_own_rate_limit_gets_429_with_retry_after(acme):
    """rate_limit_per_minute overrides RATE_API_PER_MINUTE for that key only (counted in Redis, per key)."""
    _, slow = api_key_create(partner=acme, rate_limit_per_minute=2)
    _, other = api_key_create(partner=acme)
    client = client_for(slow)
    assert [client.get("/api/v1/transfers").status_code for _ in range(2)] == [200, 200]
    response = client.get("/api/v1/transfers")
    assert_problem(response, 429)
    assert 1 <= int(response["Retry-After"]) <= 60
    assert client_for(other).get("/api/v1/transfers").status_code == 200


# Rotation -----------------------------------------------------------------------------------------

def test_rotation_keeps_the_old_key_working_for_the_overlap_then_stops_it(acme, settings):
    """Rotating issues a new key (same partner, scopes, mode); the old one expires at now + the overlap
    (API_KEY_ROTATION_OVERLAP_HOURS): both work meanwhile, only the new one after."""
    old, old_raw = api_key_create(partner=acme, scopes=["transfers:read"])
    new, new_raw = api_key_rotate(key_id=old.pk)
    old.refresh_from_db()
    expected = timezone.now() + timedelta(hours=settings.API_KEY_ROTATION_OVERLAP_HOURS)
    assert abs((old.expiry_date - expected).total_seconds()) < 60
    assert (new.partner, new.scopes, new.livemode, new.rotated_from_id) == (acme, ["transfers:read"], True, old.pk)
    assert new_raw != old_raw
    assert client_for(old_raw).get("/api/v1/transfers").status_code == 200
    assert client_for(new_raw).get("/api/v1/transfers").status_code == 200

    short, short_raw = api_key_create(partner=acme)
    _, successor_raw = api_key_rotate(key_id=short.pk, overlap=timedelta(seconds=1))
    assert client_for(successor_raw).get("/api/v1/transfers").status_code == 200
    wait_for(lambda: client_for(short_raw).get("/api/v1/transfers").status_code == 401, timeout=10,
             what="the rotated key to stop after its overlap")
    assert client_for(successor_raw).get("/api/v1/transfers").status_code == 200
    with pytest.raises(ApiKeyRefused):
        api_key_rotate(key_id=short.pk)  # an expired key is not rotated again


def test_rotation_never_extends_a_key_that_expires_sooner(acme):
    """A key due to expire before the overlap ends keeps its own, earlier expiry."""
    soon = timezone.now() + timedelta(hours=1)
    old, _ = api_key_create(partner=acme)
    PartnerAPIKey.objects.filter(pk=old.pk).update(expiry_date=soon)
    api_key_rotate(key_id=old.pk)
    assert PartnerAPIKey.objects.get(pk=old.pk).expiry_date == soon


def test_the_command_rotates_revokes_and_lists_by_prefix(acme, capsys):
    """`manage.py api_key rotate PREFIX` prints the new key once (it works), `revoke` stops a key at once."""
    old, old_raw = api_key_create(partner=acme)
    call_command("api_key", "rotate", old.display_prefix)
    out = capsys.readouterr().out
    new_raw = out.rsplit("(shown once): ", 1)[1].strip()
    assert new_raw.startswith("tlp_live_") and client_for(new_raw).get("/api/v1/transfers").status_code == 200
    new = PartnerAPIKey.objects.get(rotated_from=old)
    call_command("api_key", "revoke", new.display_prefix)
    assert_problem(client_for(new_raw).get("/api/v1/transfers"), 401)
    call_command("api_key", "create", acme.name, "--test", "--scopes", "quotes")
    out = capsys.readouterr().out
    assert "tlp_test_" in out and "scopes: quotes" in out
    call_command("api_key", "list", acme.name)
    listing = capsys.readouterr().out
    assert "revoked" in listing and old.display_prefix in listing and new_raw not in listing
    with pytest.raises(CommandError):
        call_command("api_key", "rotate", "tlp_live_nosuchkey")


def test_admin_lists_keys_and_rotates_with_a_reason_showing_the_key_once(acme, client):
    """The key list shows prefix, mode, scopes, last use and expiry. An operator rotates with a reason: the new
    key is on the result page (and works); the audit trail records the successor's prefix, never the key."""
    from tests.security.factories import staff_user

    old, _ = api_key_create(partner=acme, scopes=["quotes", "transfers:read"])
    user = staff_user("operator")
    staff_login(client, user)
    listing = client.get("/admin/payments/partnerapikey/").content.decode()
    assert old.display_prefix in listing and "quotes transfers:read" in listing
    response = client.post("/admin/payments/partnerapikey/", {
        "action": "rotate", "_selected_action": [old.pk], "post": "yes", "reason": "partner asked"})
    assert response.status_code == 200
    new = PartnerAPIKey.objects.get(rotated_from=old)
    page = response.content.decode()
    raw = page.split("<code>")[1].split("</code>")[0]
    assert raw.startswith(new.display_prefix + ".")
    assert client_for(raw).get("/api/v1/transfers").status_code == 200
    entry = AuditEntry.objects.get(action="payments.rotate_partnerapikey", target_id=old.pk[:64])
    assert entry.reason == "partner asked" and new.display_prefix in entry.detail
    assert raw.split(".")[1] not in entry.detail

    response = client.post("/admin/payments/partnerapikey/", {
        "action": "revoke", "_selected_action": [new.pk], "post": "yes", "reason": "leaked"}, follow=True)
    assert PartnerAPIKey.objects.get(pk=new.pk).revoked


def test_staff_without_the_key_permissions_cannot_rotate_or_revoke(acme, client):
    """An auditor (view only) posting rotate or revoke gets 403 and nothing changes."""
    from tests.security.factories import staff_user

    old, _ = api_key_create(partner=acme)
    staff_login(client, staff_user("auditor"))
    for action in ("rotate", "revoke"):
        response = client.post("/admin/payments/partnerapikey/", {
            "action": action, "_selected_action": [old.pk], "post": "yes", "reason": "x"})
        assert response.status_code == 403, action
    old.refresh_from_db()
    assert (old.revoked, old.expiry_date, PartnerAPIKey.objects.count()) == (False, None, 1)


def test_a_test_key_never_reaches_payouts_or_webhook_endpoints(acme, pricing):
    """Payout partners' payouts and webhook endpoints/events are not kept per mode, so every route under
    /api/v1/payouts and /api/v1/webhook-* (walked from the resolver, so a route added later is checked too) refuses
    a test key holding every scope with 403 `live-key-required`, and nothing is created."""
    before = (Quote.objects.count(), Transfer.objects.count())
    test_key = key_client(acme, list(SCOPES), livemode=False)
    checked = 0
    for route, _name, cls in api_views():
        if not route.startswith(("api/v1/payouts", "api/v1/webhook-")):
            continue
        assert getattr(cls, "live_keys_only", False), route
        for method in view_methods(cls):
            response = getattr(test_key, method.lower())(concrete_path(route), {}, format="json")
            assert_problem(response, 403, "live-key-required")
            checked += 1
    assert checked >= 12
    assert (Quote.objects.count(), Transfer.objects.count()) == before
