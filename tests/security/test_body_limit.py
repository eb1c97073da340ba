"""The request-body limit at the edge (common.http.RequestBodyLimitMiddleware), through Django's test client: the
exact boundary, bodies whose size cannot be known, and the refusal page in the sender's language. (A real server
with 5 MB and chunked bodies: test_hostile_bodies.py.)"""

import pytest
from django.conf import settings

pytestmark = pytest.mark.django_db


def test_a_body_at_the_limit_is_read_and_one_byte_more_is_refused(api, pricing):
    """REQUEST_BODY_MAX_BYTES bytes reach the view (here: padded valid JSON, a 201); one byte more is a 413 problem
    detail naming the limit."""
    limit = settings.REQUEST_BODY_MAX_BYTES
    head = b'{"source_currency": "RUB", "source_amount": "15000.00", "target_currency": "KGS"}'
    body = head + b" " * (limit - len(head))
    assert api.post("/api/v1/quotes", data=body, content_type="application/json").status_code == 201
    refused = api.post("/api/v1/quotes", data=body + b" ", content_type="application/json")
    assert refused.status_code == 413
    assert refused["Content-Type"] == "application/problem+json"
    assert refused.json()["type"].endswith("/payload-too-large") and str(limit) in refused.json()["detail"]


@pytest.mark.parametrize(("path", "problem"), [("/api/v1/quotes", True), ("/webhooks/stripe", True), ("/", False)])
def test_a_chunked_body_the_server_did_not_decode_gets_411(client, path, problem):
    """Without a Content-Length and without a server that decodes chunks (Django's runserver), the body's size
    cannot be known: 411 Length Required (problem details on API paths, a page on the forms), not a silently empty
    body."""
    response = client.generic("POST", path, data=b"", content_type="application/json", CONTENT_LENGTH="",
                              HTTP_TRANSFER_ENCODING="chunked")
    assert response.status_code == 411
    assert response["Content-Type"].startswith("application/problem+json" if problem else "text/html")


def test_a_content_length_that_is_not_a_number_gets_400(client):
    """A Content-Length that is not a byte count is a 400 problem, not a guess."""
    response = client.generic("POST", "/api/v1/quotes", data=b"{}", content_type="application/json",
                              CONTENT_LENGTH="-5")
    assert response.status_code == 400
    assert response.json()["type"].endswith("/bad-content-length")


def test_the_refusal_page_follows_the_senders_language(client):
    """A form post over the limit gets the refusal page in the chosen language (Russian here), with a way back."""
    client.get("/language/ru", {"next": "/"})
    response = client.post("/", data=b"a=" + b"1" * settings.REQUEST_BODY_MAX_BYTES,
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code == 413
    page = response.content.decode()
    assert "Слишком много данных" in page and 'id="request-refused"' in page and 'href="/"' in page
