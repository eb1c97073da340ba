"""No request body, whatever its shape, crashes or hangs a web process (RELIABILITY.md "Security": deep nesting,
huge arrays, 5 MB bodies on every endpoint, web form and webhook; 0 crashed or hung processes; 400/413 problem
details).

Every request goes to a real gunicorn (tests/security/conftest.py), and each test checks that the one worker that
answered is still the same process afterwards: a SIGSEGV or a timeout would make the master start another."""

import hashlib
import hmac
import json
import os
import time
import uuid

import httpx
import pytest

# The server uses the test database (its data is committed by the module's fixture); the marker makes pytest-django
# create that database.
pytestmark = pytest.mark.django_db

DEEP = 100_000
MB5 = 5 * 1024 * 1024
DEEP_ARRAY = "[" * DEEP + "]" * DEEP
DEEP_OBJECT = '{"a":' * DEEP + "1" + "}" * DEEP
HUGE_ARRAY = "[" + "0," * 400_000 + "0]"  # 800 kB, under the body limit: a shallow but long document


def _chunks(data, size=64 * 1024):
    """A generator body: httpx sends it with Transfer-Encoding: chunked and no Content-Length."""
    for start in range(0, len(data), size):
        yield data[start:start + size]


def _json_body(text, charset=None):
    content_type = "application/json" + (f"; charset={charset}" if charset else "")
    return {"content": text.encode(charset or "utf-8"), "headers": {"Content-Type": content_type}}


FIVE_MB_JSON = '{"source_currency": "RUB", "pad": "' + "a" * MB5 + '"}'

# name → request keyword arguments (content and headers); the API's hostile documents.
API_BODIES = {
    "deep-array": _json_body(DEEP_ARRAY),
    "deep-object": _json_body(DEEP_OBJECT),
    "deep-array-utf16": _json_body(DEEP_ARRAY, charset="utf-16"),
    "deep-array-behind-escaped-quotes": _json_body('{"a": "\\\\\\"", "b": ' + DEEP_ARRAY + "}"),
    "huge-array": _json_body(HUGE_ARRAY),
    "huge-object": _json_body("{" + ",".join(f'"k{i}": {i}' for i in range(60_000)) + "}"),
    "huge-integer": _json_body('{"source_currency": "RUB", "source_amount": ' + "9" * 500_000 + "}"),
    "huge-exponent": _json_body('{"source_currency": "RUB", "source_amount": 1e999999, "target_currency": "KGS"}'),
    "nan": _json_body('{"source_currency": "RUB", "source_amount": NaN, "target_currency": "KGS"}'),
    "not-utf8": {"content": b'{"source_currency": "\xff\xfe"}', "headers": {"Content-Type": "application/json"}},
}
# Functions, since a chunked (generator) body can be sent only once.
TOO_LARGE = {
    "5mb": lambda: {"content": FIVE_MB_JSON.encode(), "headers": {"Content-Type": "application/json"}},
    "5mb-chunked": lambda: {"content": _chunks(FIVE_MB_JSON.encode()), "headers": {"Content-Type": "application/json"}},
}


def send(server, method, path, **kwargs):
    """One request; returns (response, seconds). The worker that was there before must still be there after."""
    workers = server.workers()
    started = time.monotonic()
    try:
        response = httpx.request(method, server.url + path, timeout=20, **kwargs)
    except httpx.HTTPError as exc:
        log = server.log.read_text(errors="replace").splitlines()[-5:]
        pytest.fail(f"{method} {path}: no answer ({exc!r}); gunicorn's log ends: {log}")
    elapsed = time.monotonic() - started
    assert server.workers() == workers, f"the worker died or was replaced: {workers} → {server.workers()}"
    return response, elapsed


def assert_problem(response, status):
    assert response.status_code == status, response.text[:500]
    assert response.headers["Content-Type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status and body["type"].startswith("https://") and body["detail"]
    return body


def _api_headers(server, kwargs, path):
    headers = {**kwargs.get("headers", {}), "Authorization": f"Api-Key {server.api_key}"}
    if path.endswith("transfers"):
        headers["Idempotency-Key"] = str(uuid.uuid4())
    return {**kwargs, "headers": headers}


@pytest.mark.parametrize("path", ["/api/v1/quotes", "/api/v1/transfers"])
@pytest.mark.parametrize("shape", list(API_BODIES))
def test_api_answers_hostile_json_with_a_400_problem(gunicorn, path, shape):
    """Deeply nested (100,000 levels, also in UTF-16 and behind escaped quotes), huge, out-of-range or undecodable
    JSON from an authenticated partner gets a 400 problem detail from the same, living worker."""
    response, _ = send(gunicorn, "POST", path, **_api_headers(gunicorn, API_BODIES[shape], path))
    assert_problem(response, 400)


@pytest.mark.parametrize("path", ["/api/v1/quotes", "/api/v1/transfers", "/webhooks/stripe"])
@pytest.mark.parametrize("shape", list(TOO_LARGE))
def test_api_and_webhook_refuse_a_5mb_body_with_a_413_problem(gunicorn, path, shape):
    """A 5 MB body, with a Content-Length or chunked (no length: the size is counted as it streams in), gets a
    413 problem detail quickly, without the worker reading it all."""
    response, elapsed = send(gunicorn, "POST", path, **_api_headers(gunicorn, TOO_LARGE[shape](), path))
    assert_problem(response, 413)
    assert elapsed < 5


def test_a_small_chunked_body_is_read_whole(gunicorn):
    """A chunked body under the limit is not silently dropped (Django alone reads only Content-Length bytes)."""
    body = json.dumps({"source_currency": "RUB", "source_amount": "15000.00", "target_currency": "KGS"}).encode()
    response, _ = send(gunicorn, "POST", "/api/v1/quotes", content=_chunks(body, size=16),
                       headers={"Content-Type": "application/json", "Authorization": f"Api-Key {gunicorn.api_key}"})
    assert response.status_code == 201, response.text


def _stripe_signature(payload):
    timestamp = str(int(time.time()))
    secret = os.environ["STRIPE_WEBHOOK_SECRET"].encode()
    digest = hmac.new(secret, f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


@pytest.mark.parametrize("shape", ["deep-array", "deep-object", "huge-array", "huge-object"])
@pytest.mark.parametrize("signed", [False, True], ids=["unsigned", "signed"])
def test_stripe_webhook_answers_hostile_json_with_a_400_problem(gunicorn, shape, signed):
    """The webhook refuses hostile JSON with a 400 problem: unsigned bodies fail the signature before any parsing,
    and even a correctly signed one (only Stripe holds the secret) is refused cleanly, not with a crash."""
    kwargs = API_BODIES[shape]
    headers = {**kwargs["headers"], "Stripe-Signature": _stripe_signature(kwargs["content"]) if signed else "t=1,v1=00"}
    response, _ = send(gunicorn, "POST", "/webhooks/stripe", content=kwargs["content"], headers=headers)
    assert_problem(response, 400)


FORM_PATHS = ["/", "/send/00000000-0000-4000-8000-000000000000/details", "/t/not-a-token/pay", "/admin/login/"]


@pytest.fixture(scope="module")
def csrf(gunicorn):
    """A CSRF cookie and token from the start page, so form posts get past the CSRF check to the body."""
    response = httpx.get(gunicorn.url + "/", timeout=10)
    token = response.cookies["csrftoken"]
    return {"cookie": f"csrftoken={token}", "token": token}


def _form(csrf, content, content_type, **headers):
    return {"content": content,
            "headers": {"Content-Type": content_type, "Cookie": csrf["cookie"], "X-CSRFToken": csrf["token"],
                        "Referer": "http://127.0.0.1/", **headers}}


def _multipart(size):
    boundary = "tulparboundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.bin\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + b"\0" * size + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


@pytest.mark.parametrize("path", FORM_PATHS)
@pytest.mark.parametrize("shape", ["5mb-urlencoded", "5mb-chunked", "5mb-multipart"])
def test_web_forms_refuse_a_5mb_body_with_a_413_page(gunicorn, csrf, path, shape):
    """The sender's forms and the admin login refuse a 5 MB body (urlencoded, chunked or multipart) with a 413
    HTML page, quickly and from the same worker."""
    urlencoded = ("source_amount=" + "1" * MB5).encode()
    if shape == "5mb-urlencoded":
        kwargs = _form(csrf, urlencoded, "application/x-www-form-urlencoded")
    elif shape == "5mb-chunked":
        kwargs = _form(csrf, _chunks(urlencoded), "application/x-www-form-urlencoded")
    else:
        kwargs = _form(csrf, *_multipart(MB5))
    response, elapsed = send(gunicorn, "POST", path, **kwargs)
    assert response.status_code == 413
    assert response.headers["Content-Type"].startswith("text/html")
    assert elapsed < 5


@pytest.mark.parametrize("path", FORM_PATHS)
@pytest.mark.parametrize("shape", ["many-fields", "deep-json", "huge-array-json"])
def test_web_forms_answer_odd_bodies_without_a_server_error(gunicorn, csrf, path, shape):
    """200,000 form fields get Django's 400; a deeply nested or huge JSON document posted to a form is not parsed
    as JSON by a form view and gets an ordinary page; never a 5xx, never a dead worker."""
    if shape == "many-fields":
        response, _ = send(gunicorn, "POST", path, **_form(csrf, b"a=1&" * 200_000, "application/x-www-form-urlencoded"))
        assert response.status_code == 400
    else:
        text = DEEP_ARRAY if shape == "deep-json" else HUGE_ARRAY
        response, _ = send(gunicorn, "POST", path, **_form(csrf, text.encode(), "application/json"))
        assert response.status_code < 500


@pytest.mark.parametrize("path", ["/api/v1/transfers", "/api/v1/balances/RUB/statement"])
@pytest.mark.parametrize("cursor", ["p=abc", "p=2026-13-45", "p=1e999", "not base64 !", "o=x"])
def test_a_bad_cursor_is_a_400_invalid_cursor_problem_not_a_404_or_500(api, path, cursor):
    """A cursor is base64 of `p=<position>`; DRF does not check the position's type, so one that does not fit the
    ordering column (an id, a timestamp) failed inside the query, and DRF answers an undecodable one 404 as if the
    list were missing. Every cursor-paginated list answers both 400 `invalid-cursor`."""
    import base64

    value = cursor if " " in cursor else base64.b64encode(cursor.encode()).decode()
    response = api.get(path, {"cursor": value})
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/problem+json")
    assert response.json()["type"].endswith("/invalid-cursor")
