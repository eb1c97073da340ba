"""No secret in clear in the logs or the database after the flows that handle them: a card payment through the pay
page (3-D Secure) and a partner's API-key life (create, use for a quote and a
card transfer paid as Stripe.js would, rotate, a wrong key). Scans every log line those flows wrote (the configured
JSON handler's output and pytest's records) and every row of every table, as text."""

import io
import logging
import os
from decimal import Decimal

import pytest
from django.conf import settings
from django.db import connection
from rest_framework.test import APIClient

from common import logctx
from payments import pipeline
from payments.models import Transfer
from payments.providers import stripe_rail
from payments.services.api_keys import api_key_create, api_key_rotate
from tests.conftest import QUOTE_BODY, authenticate_3ds, new_recipient, pay_on_stripe
from tests.payments.test_card_payment import card_token, intent

pytestmark = pytest.mark.django_db

CARDS = ("4242424242424242",)


@pytest.fixture
def logs(caplog):
    """Everything logged during the test: the console handler's JSON lines (with tracebacks) and the records."""
    caplog.set_level(logging.DEBUG)
    console = next(h for h in logging.getLogger().handlers
                   if any(isinstance(f, logctx.ContextFilter) for f in h.filters))
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(console.formatter)
    handler.addFilter(logctx.ContextFilter())
    handler.setLevel(logging.DEBUG)
    logging.getLogger().addHandler(handler)

    def text(clear=False):
        value = buffer.getvalue() + "\n".join(f"{r.getMessage()} {r.exc_text or ''} {r.args!r}" for r in caplog.records)
        if clear:
            buffer.seek(0)
            buffer.truncate()
            caplog.clear()
        return value

    yield text
    logging.getLogger().removeHandler(handler)


def database_text():
    """Every row of every table, as PostgreSQL prints a row."""
    parts = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f'SELECT t::text FROM "{table}" t')  # noqa: S608 - names from the catalogue
            parts.extend(row[0] for row in cursor.fetchall())
    return "\n".join(parts)


def secrets_in_clear(api_keys):
    """(what, value) of every secret the flows handled, in the forms it could leak in."""
    hot_key = os.environ["HOT_WALLET_PRIVATE_KEY"].lower().removeprefix("0x")
    found = [("card number", number) for number in CARDS]
    found += [("card number, grouped", " ".join(number[i:i + 4] for i in range(0, 16, 4))) for number in CARDS]
    found += [("hot-wallet key", hot_key), ("Stripe secret key", settings.STRIPE_SECRET_KEY),
              ("Stripe webhook secret", settings.STRIPE_WEBHOOK_SECRET), ("Django secret key", settings.SECRET_KEY)]
    for raw in api_keys:
        found += [("API key", raw), ("API key's secret part", raw.partition(".")[2])]
    return found


def assert_nothing_in_clear(text, api_keys, where):
    lowered = text.lower()
    leaked = [what for what, value in secrets_in_clear(api_keys) if value and value.lower() in lowered]
    assert not leaked, f"{where} holds in clear: {leaked}"


def test_card_and_api_key_flows_leave_no_secret_in_logs_or_database(client, pricing, stripe_server, partner, logs):
    """The scan itself is checked first (a key written to a log is found), then the flows run and nothing is."""
    assert_nothing_in_clear(logs(), [partner.raw_key], "the logs before the flows")
    logging.getLogger("tests.canary").warning("canary %s", partner.raw_key)
    with pytest.raises(AssertionError, match="API key"):
        assert_nothing_in_clear(logs(clear=True), [partner.raw_key], "the canary")

    # A partner's key: created, used for a quote and a card transfer, paid as the partner's Stripe.js would.
    key, raw = api_key_create(partner=partner)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    quote = api.post("/api/v1/quotes", QUOTE_BODY, format="json").json()
    created = api.post("/api/v1/transfers", {
        "quote_id": quote["id"], "sender": {"name": "Aibek Usenov", "phone": "+79161234567", "email": "a@example.com"},
        "recipient": {"name": "Gulnara Usenova", "phone": "+996555123456", "wallet_address": new_recipient()}},
        format="json", HTTP_IDEMPOTENCY_KEY="scan-1")
    assert created.status_code == 201, created.content
    pay_on_stripe(created.json()["funding"]["payment_intent_id"], card=CARDS[0])
    pipeline.transfer_mark_funded(payment_intent=stripe_rail.payment_intent_retrieve(
        created.json()["funding"]["payment_intent_id"]))
    _, rotated_raw = api_key_rotate(key_id=key.pk)
    bad = APIClient()
    bad.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw[:-4]}abcd")
    assert bad.get("/api/v1/transfers").status_code == 401

    # The sender's card on the pay page, with 3-D Secure.
    web_quote = client.post("/api/v1/quotes", QUOTE_BODY, format="json")  # anonymous: refused, logged
    assert web_quote.status_code in (401, 403)
    from payments.services.quotes import quote_create
    from payments.services.transfers import transfer_create

    q = quote_create(source_currency="RUB", source_amount=Decimal(QUOTE_BODY["source_amount"]))
    web, _ = transfer_create(
        partner=None, idempotency_key=str(q.id), fingerprint="f", quote_id=q.id,
        sender={"name": "John Smith", "phone": "+12125551234", "email": "john@example.com"},
        recipient={"name": "Aida Bekova", "phone": "+996555123456", "wallet_address": new_recipient()})
    pay_url = f"/t/{web.sender_token}/pay"
    client.get(pay_url)
    response = client.post(pay_url, {"card_token": card_token(CARDS[0])}, HTTP_ACCEPT="application/json")
    assert response.status_code < 500
    web.refresh_from_db()
    assert authenticate_3ds(intent(web.payment_intent_id)).json()["status"] == "succeeded"
    pipeline.transfer_mark_funded(payment_intent=stripe_rail.payment_intent_retrieve(web.payment_intent_id))
    assert Transfer.objects.filter(status=Transfer.Status.FUNDED).count() == 2

    keys = [partner.raw_key, raw, rotated_raw]
    text = logs()
    assert "transfer_created" in text and "http_request" in text  # the flows' lines were captured
    assert_nothing_in_clear(text, keys, "the logs")
    assert_nothing_in_clear(database_text(), keys, "the database")
