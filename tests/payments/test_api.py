"""Partner API over the real database and the real localstripe: quotes, transfers, idempotency, refusals."""

from datetime import timedelta
from decimal import ROUND_CEILING, ROUND_UP, Decimal

import httpx
import pytest
from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework.test import APIClient

from payments.models import Quote, Rate, Transfer
from payments.services.quotes import quote_create
from payments.services.setup import partner_create
from payments.services.transfers import request_fingerprint, transfer_create
from tests.conftest import QUOTE_BODY, new_recipient

pytestmark = pytest.mark.django_db

PROBLEM_KEYS = {"type", "title", "status", "detail"}
DENYLISTED = "0x6fa0be17e4bea2fcfa22ef89bf8ac9aab0ab0fc9"


def assert_problem(response, status, code=None, field=None):
    """A problem-details response (RFC 9457) with `status`, optionally of type `code` naming `field`."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].split(";")[0] == "application/problem+json"
    body = response.json()
    assert PROBLEM_KEYS <= set(body), body
    assert body["status"] == status
    if code:
        assert body["type"].endswith("/" + code), body
    if field:
        assert field in {e["field"] for e in body.get("errors", [])}, body
    return body


def transfer_body(quote_id, *, wallet=None, sender_phone="+79161234567", sender_name="Aibek Usenov"):
    return {"quote_id": str(quote_id),
            "sender": {"name": sender_name, "phone": sender_phone, "email": "aibek@example.com"},
            "recipient": {"name": "Gulnara Usenova", "phone": "+996555123456",
                          "wallet_address": wallet or new_recipient()}}


def new_quote(client):
    response = client.post("/api/v1/quotes", QUOTE_BODY, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def stripe_get(path, **params):
    response = httpx.get(f"{settings.STRIPE_API_BASE}{path}", params=params, timeout=10,
                         headers={"Authorization": f"Bearer {settings.STRIPE_SECRET_KEY}"})
    response.raise_for_status()
    return response.json()


def stripe_intents():
    return stripe_get("/v1/payment_intents", limit=100)["data"]


@pytest.fixture
def other_api(db):
    """A second partner's authenticated client."""
    _, key = partner_create(name="globex")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    return client


# Quotes ------------------------------------------------------------------------------------------

def test_quote_created_with_contract_fields_and_correct_math(api, pricing):
    """POST /quotes answers 201 with every contract field, 2-decimal string amounts, a rate below the
    official one, target = (amount − fee) × rate rounded up (docs/ledger.md "Rounding"), the total charged and the
    total cost in percent, and an expiry within the next hour."""
    before = timezone.now()
    response = api.post("/api/v1/quotes", QUOTE_BODY, format="json")
    assert response.status_code == 201, response.content
    quote = response.json()
    contract = {"id", "source_currency", "source_amount", "target_currency", "target_amount", "rate", "fee", "expires_at"}
    assert contract <= set(quote)
    assert quote["source_currency"] == "RUB" and quote["target_currency"] == "KGS"
    for field in ("source_amount", "target_amount", "fee"):
        assert isinstance(quote[field], str)
        assert Decimal(quote[field]).as_tuple().exponent == -2, quote[field]
    assert quote["source_amount"] == "15000.00"

    official = Rate.objects.get(source_currency="RUB").rate
    rate, fee = Decimal(quote["rate"]), Decimal(quote["fee"])
    assert 0 < rate < official
    assert Decimal(quote["target_amount"]) == ((Decimal("15000.00") - fee) * rate).quantize(Decimal("0.01"), ROUND_UP)
    assert quote["direction"] == "send" and quote["total_charged"] == "15000.00"
    cost = (1 - Decimal(quote["target_amount"]) / (Decimal("15000.00") * official)) * 100
    assert Decimal(quote["cost_percent"]) == cost.quantize(Decimal("0.01"), ROUND_CEILING)

    expires = parse_datetime(quote["expires_at"])
    assert before < expires <= timezone.now() + timedelta(hours=1)
    stored = Quote.objects.get(pk=quote["id"])
    assert stored.target_amount == Decimal(quote["target_amount"])


@pytest.mark.parametrize(("body", "status", "field"), [
    ({"source_amount": "-100.00"}, 400, "source_amount"),
    ({"source_amount": "0"}, 400, "source_amount"),
    ({"source_amount": "0.00"}, 400, "source_amount"),
    ({"source_amount": "abc"}, 400, "source_amount"),
    ({"source_amount": "NaN"}, 400, "source_amount"),
    ({"source_amount": "Infinity"}, 400, "source_amount"),
    ({"source_amount": "1.234"}, 400, "source_amount"),
    ({"source_amount": "500000.01"}, 422, "source_amount"),  # above the RUB corridor's max
    ({"source_amount": "12345678901234.00"}, 400, "source_amount"),  # above max digits
    ({"source_currency": "EUR"}, 400, "source_currency"),
    ({"target_currency": "EUR"}, 400, "target_currency"),  # KGS and USD (dollars as USDKG) are paid out, nothing else
    ({"target_currency": "RUB"}, 400, "target_currency"),
], ids=["negative", "zero", "zero-cents", "abc", "nan", "infinity", "three-decimals", "above-corridor-max", "above-max-digits",
        "eur", "target-eur", "target-rub"])
def test_quote_bad_input_is_a_problem_and_creates_nothing(api, pricing, body, status, field):
    """Each malformed or out-of-range quote request gets a problem-details answer naming the field, and no Quote."""
    response = api.post("/api/v1/quotes", {**QUOTE_BODY, **body}, format="json")
    assert_problem(response, status, field=field)
    assert Quote.objects.count() == 0


def test_quote_missing_field_is_a_problem(api, pricing):
    """A quote request without source_amount is a 400 problem naming it."""
    body = {k: v for k, v in QUOTE_BODY.items() if k != "source_amount"}
    assert_problem(api.post("/api/v1/quotes", body, format="json"), 400, "validation-error", "source_amount")
    assert Quote.objects.count() == 0


def test_missing_api_key_is_401_with_challenge(pricing):
    """Without an Authorization header the API answers 401 with WWW-Authenticate and creates nothing."""
    response = APIClient().post("/api/v1/quotes", QUOTE_BODY, format="json")
    assert_problem(response, 401)
    assert response["WWW-Authenticate"].startswith("Api-Key")
    assert Quote.objects.count() == 0


@pytest.mark.parametrize("header", ["Api-Key not-a-real-key", "Api-Key ", "Bearer abc", "Api-Key"])
def test_wrong_api_key_is_401(partner, pricing, header):
    """A wrong or malformed key is refused with 401 and creates nothing."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    response = client.post("/api/v1/quotes", QUOTE_BODY, format="json")
    assert_problem(response, 401)
    assert "WWW-Authenticate" in response
    assert Quote.objects.count() == 0


def test_wrong_key_cannot_create_transfer(api, partner, pricing, stripe_server):
    """A transfer POST with another key (wrong) changes nothing: no Transfer, no PaymentIntent."""
    quote = new_quote(api)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {partner.raw_key}x")
    response = client.post("/api/v1/transfers", transfer_body(quote["id"]), format="json", HTTP_IDEMPOTENCY_KEY="k1")
    assert_problem(response, 401)
    assert Transfer.objects.count() == 0
    assert stripe_intents() == []


def test_revoked_key_is_401(partner, pricing):
    """A revoked API key no longer authenticates."""
    partner.api_keys.update(revoked=True)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {partner.raw_key}")
    assert_problem(client.post("/api/v1/quotes", QUOTE_BODY, format="json"), 401)
    assert Quote.objects.count() == 0


# Transfers ---------------------------------------------------------------------------------------

def test_transfer_created_with_payment_intent_on_stripe(api, pricing, stripe_server):
    """POST /transfers answers 201 awaiting_funding with card funding, and the PaymentIntent exists on
    localstripe for the quote's amount in minor units."""
    quote = new_quote(api)
    response = api.post("/api/v1/transfers", transfer_body(quote["id"]), format="json", HTTP_IDEMPOTENCY_KEY="order-1")
    assert response.status_code == 201, response.content
    transfer = response.json()
    assert transfer["status"] == "awaiting_funding"
    assert transfer["funding"]["method"] == "card"
    pi_id = transfer["funding"]["payment_intent_id"]
    assert pi_id.startswith("pi_")
    assert transfer["funding"]["client_secret"]
    assert transfer["sender_status_url"].startswith(settings.PUBLIC_BASE_URL + "/t/")
    assert transfer["recipient_status_url"].startswith(settings.PUBLIC_BASE_URL + "/r/")
    assert transfer["sender_status_url"] != transfer["recipient_status_url"]

    intent = stripe_get(f"/v1/payment_intents/{pi_id}")
    assert intent["amount"] == 1500000
    assert intent["currency"] == "rub"
    assert intent["metadata"]["transfer_id"] == transfer["id"]
    assert transfer["funding"]["client_secret"] == intent["client_secret"]
    stored = Transfer.objects.get(pk=transfer["id"])
    assert stored.payment_intent_id == pi_id
    assert stored.quote_id == Quote.objects.get(pk=quote["id"]).pk


def test_same_idempotency_key_and_body_replays_the_transfer(api, pricing, stripe_server):
    """The same Idempotency-Key with the same body replays the first answer (201, marked `Idempotent-Replayed`):
    one row, one PaymentIntent."""
    body = transfer_body(new_quote(api)["id"])
    first = api.post("/api/v1/transfers", body, format="json", HTTP_IDEMPOTENCY_KEY="order-1")
    assert first.status_code == 201, first.content
    second = api.post("/api/v1/transfers", body, format="json", HTTP_IDEMPOTENCY_KEY="order-1")
    assert second.status_code == 201, second.content
    assert second["Idempotent-Replayed"] == "true"
    assert second.json()["id"] == first.json()["id"]
    assert second.json()["funding"]["payment_intent_id"] == first.json()["funding"]["payment_intent_id"]
    assert Transfer.objects.count() == 1
    assert [pi["id"] for pi in stripe_intents()] == [first.json()["funding"]["payment_intent_id"]]


def test_same_idempotency_key_other_body_is_unprocessable(api, pricing, stripe_server):
    """The same Idempotency-Key with a different body is a 422 problem (the IETF draft's answer) and creates nothing."""
    first = api.post("/api/v1/transfers", transfer_body(new_quote(api)["id"]), format="json",
                     HTTP_IDEMPOTENCY_KEY="order-1")
    assert first.status_code == 201, first.content
    other = transfer_body(new_quote(api)["id"])
    response = api.post("/api/v1/transfers", other, format="json", HTTP_IDEMPOTENCY_KEY="order-1")
    assert_problem(response, 422, "idempotency-key-reused")
    assert Transfer.objects.count() == 1
    assert len(stripe_intents()) == 1


@pytest.mark.parametrize("headers", [{}, {"HTTP_IDEMPOTENCY_KEY": ""}, {"HTTP_IDEMPOTENCY_KEY": "x" * 256},
                                     {"HTTP_IDEMPOTENCY_KEY": "   "}, {"HTTP_IDEMPOTENCY_KEY": '""'}],
                         ids=["missing", "empty", "too-long", "blank", "empty-sf-string"])
def test_missing_idempotency_key_is_400(api, pricing, stripe_server, headers):
    """A transfer POST without a usable Idempotency-Key is a 400 problem and creates nothing."""
    response = api.post("/api/v1/transfers", transfer_body(new_quote(api)["id"]), format="json", **headers)
    assert_problem(response, 400, "idempotency-key-invalid", "Idempotency-Key")
    assert Transfer.objects.count() == 0
    assert stripe_intents() == []


def test_replay_with_reordered_keys_is_the_same_request(api, pricing, stripe_server):
    """The idempotency fingerprint ignores JSON key order: a reordered identical body replays the transfer."""
    body = transfer_body(new_quote(api)["id"])
    first = api.post("/api/v1/transfers", body, format="json", HTTP_IDEMPOTENCY_KEY="order-1")
    assert first.status_code == 201, first.content
    reordered = {"recipient": dict(reversed(body["recipient"].items())), "sender": body["sender"],
                 "quote_id": body["quote_id"]}
    second = api.post("/api/v1/transfers", reordered, format="json", HTTP_IDEMPOTENCY_KEY="order-1")
    assert second.status_code == 201, second.content
    assert second["Idempotent-Replayed"] == "true"
    assert second.json()["id"] == first.json()["id"]


def test_replay_after_quote_expiry_still_returns_the_transfer(api, pricing, stripe_server):
    """A retried request whose quote has since expired gets the transfer it already created, not an error."""
    body = transfer_body(new_quote(api)["id"])
    first = api.post("/api/v1/transfers", body, format="json", HTTP_IDEMPOTENCY_KEY="order-1")
    assert first.status_code == 201, first.content
    Quote.objects.filter(pk=body["quote_id"]).update(expires_at=timezone.now() - timedelta(seconds=1))
    again = api.post("/api/v1/transfers", body, format="json", HTTP_IDEMPOTENCY_KEY="order-1")
    assert again.status_code == 201, again.content
    assert again["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert Transfer.objects.count() == 1


def test_idempotency_keys_are_per_partner(api, other_api, pricing, stripe_server):
    """Two partners may use the same Idempotency-Key: each gets its own transfer."""
    mine = api.post("/api/v1/transfers", transfer_body(new_quote(api)["id"]), format="json",
                    HTTP_IDEMPOTENCY_KEY="order-1")
    theirs = other_api.post("/api/v1/transfers", transfer_body(new_quote(other_api)["id"]), format="json",
                            HTTP_IDEMPOTENCY_KEY="order-1")
    assert mine.status_code == 201 and theirs.status_code == 201, (mine.content, theirs.content)
    assert mine.json()["id"] != theirs.json()["id"]
    assert Transfer.objects.count() == 2
    assert len(stripe_intents()) == 2


def test_malformed_quote_id_is_400(api, pricing, stripe_server):
    """A quote_id that is not a UUID is a 400 problem naming quote_id."""
    response = api.post("/api/v1/transfers", transfer_body("not-a-uuid"), format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert_problem(response, 400, "validation-error", "quote_id")
    assert Transfer.objects.count() == 0


def test_usd_transfer_payment_intent_in_cents(api, pricing, stripe_server):
    """A USD transfer's PaymentIntent is in cents and in usd."""
    quote = api.post("/api/v1/quotes", {**QUOTE_BODY, "source_currency": "USD", "source_amount": "123.45"},
                     format="json").json()
    response = api.post("/api/v1/transfers", transfer_body(quote["id"]), format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert response.status_code == 201, response.content
    intent = stripe_get(f"/v1/payment_intents/{response.json()['funding']['payment_intent_id']}")
    assert (intent["amount"], intent["currency"]) == (12345, "usd")


def test_expired_quote_is_refused(api, pricing, stripe_server):
    """A quote past its expiry cannot back a transfer: 422 quote-expired, nothing created."""
    quote = new_quote(api)
    Quote.objects.filter(pk=quote["id"]).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = api.post("/api/v1/transfers", transfer_body(quote["id"]), format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert_problem(response, 422, "quote-expired", "quote_id")
    assert Transfer.objects.count() == 0
    assert stripe_intents() == []


def test_other_partners_quote_is_not_found(api, other_api, pricing, stripe_server):
    """A partner cannot use another partner's quote: 404 problem, nothing created."""
    quote = new_quote(other_api)
    response = api.post("/api/v1/transfers", transfer_body(quote["id"]), format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert_problem(response, 404, "quote-not-found")
    assert Transfer.objects.count() == 0
    assert stripe_intents() == []


def test_unknown_quote_is_not_found(api, pricing, stripe_server):
    """A quote id that does not exist is a 404 problem."""
    response = api.post("/api/v1/transfers", transfer_body("00000000-0000-4000-8000-000000000000"), format="json",
                        HTTP_IDEMPOTENCY_KEY="k")
    assert_problem(response, 404, "quote-not-found")
    assert Transfer.objects.count() == 0


def test_quote_used_twice_is_conflict(api, pricing, stripe_server):
    """A quote that already backs a transfer cannot back a second one (other Idempotency-Key): 409."""
    quote = new_quote(api)
    first = api.post("/api/v1/transfers", transfer_body(quote["id"]), format="json", HTTP_IDEMPOTENCY_KEY="a")
    assert first.status_code == 201, first.content
    second = api.post("/api/v1/transfers", transfer_body(quote["id"]), format="json", HTTP_IDEMPOTENCY_KEY="b")
    assert_problem(second, 409, "quote-already-used")
    assert Transfer.objects.count() == 1
    assert len(stripe_intents()) == 1


def _flip_case_of_one_letter(address):
    body = address[2:]
    i = next(i for i, c in enumerate(body) if c.isalpha())
    return "0x" + body[:i] + body[i].swapcase() + body[i + 1:]


def _bad_checksum_address():
    """A mixed-case address one letter's case away from its EIP-55 form (still mixed case, so it must verify)."""
    while True:
        flipped = _flip_case_of_one_letter(new_recipient())
        body = flipped[2:]
        if body != body.lower() and body != body.upper():
            return flipped


@pytest.mark.parametrize("wallet", [
    "0x" + "ab" * 19,  # 38 hex digits
    "0x" + "ab" * 21,  # 42 hex digits
    "ab" * 21,  # no 0x
    "0x" + "g" * 40,
    "0x" + "12345678901234567890123456789012345678zz",
    "bad-checksum",
], ids=["short", "long", "no-prefix", "non-hex", "trailing-non-hex", "bad-checksum"])
def test_bad_wallet_address_is_400_or_422_for_a_wrong_checksum(api, pricing, stripe_server, wallet):
    """A malformed recipient wallet (length, hex) is a 400 problem naming recipient.wallet_address; a well-formed
    one whose EIP-55 checksum is wrong fits the schema's pattern and is a 422 invalid-value. No Transfer created."""
    checksum = wallet == "bad-checksum"
    if checksum:
        wallet = _bad_checksum_address()
    response = api.post("/api/v1/transfers", transfer_body(new_quote(api)["id"], wallet=wallet), format="json",
                        HTTP_IDEMPOTENCY_KEY="k")
    assert_problem(response, 422 if checksum else 400, "invalid-value" if checksum else "validation-error",
                   "recipient.wallet_address")
    assert Transfer.objects.count() == 0
    assert stripe_intents() == []


def test_lowercase_wallet_address_is_accepted_and_checksummed(api, pricing, stripe_server):
    """An all-lowercase address (no checksum) is valid; it is stored and shown in EIP-55 form."""
    wallet = new_recipient()
    response = api.post("/api/v1/transfers", transfer_body(new_quote(api)["id"], wallet=wallet.lower()), format="json",
                        HTTP_IDEMPOTENCY_KEY="k")
    assert response.status_code == 201, response.content
    assert response.json()["recipient"]["wallet_address"] == wallet
    assert Transfer.objects.get().recipient_wallet == wallet


@pytest.mark.parametrize("wallet", [DENYLISTED, DENYLISTED.upper().replace("0X", "0x")], ids=["lower", "upper"])
def test_denylisted_wallet_is_refused(api, pricing, stripe_server, wallet):
    """The A7A5 contract address is refused with 422 wallet-refused, whatever its case; nothing is created."""
    response = api.post("/api/v1/transfers", transfer_body(new_quote(api)["id"], wallet=wallet), format="json",
                        HTTP_IDEMPOTENCY_KEY="k")
    assert_problem(response, 422, "wallet-refused", "recipient.wallet_address")
    assert Transfer.objects.count() == 0
    assert stripe_intents() == []


@pytest.mark.parametrize(("phone", "status"), [("12345", 400), ("+44 20 7946 0958", 422), ("+7916123456", 422),
                                               ("abc", 400), ("", 400)])
def test_bad_sender_phone_is_400_or_422_when_well_formed(api, pricing, stripe_server, phone, status):
    """A sender phone outside +7/+996/+1 E.164 is a problem naming sender.phone: 400 when the schema's pattern
    refuses it, 422 invalid-value when it is well-formed but no valid number of the plan."""
    response = api.post("/api/v1/transfers", transfer_body(new_quote(api)["id"], sender_phone=phone), format="json",
                        HTTP_IDEMPOTENCY_KEY="k")
    assert_problem(response, status, "validation-error" if status == 400 else "invalid-value", "sender.phone")
    assert Transfer.objects.count() == 0


def test_sender_phone_is_normalised(api, pricing, stripe_server):
    """Spaces, dashes and brackets are removed from a phone number before it is stored."""
    response = api.post("/api/v1/transfers", transfer_body(new_quote(api)["id"], sender_phone="+7 (916) 123-45-67"),
                        format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert response.status_code == 201, response.content
    assert response.json()["sender"]["phone"] == "+79161234567"


# Reading transfers -------------------------------------------------------------------------------

def test_transfer_detail_own_and_others(api, other_api, pricing, stripe_server):
    """A partner reads its own transfer (settlement null before payout); another partner gets a 404 problem."""
    created = api.post("/api/v1/transfers", transfer_body(new_quote(api)["id"]), format="json",
                       HTTP_IDEMPOTENCY_KEY="k").json()
    detail = api.get(f"/api/v1/transfers/{created['id']}")
    assert detail.status_code == 200, detail.content
    assert detail.json()["id"] == created["id"]
    assert detail.json()["status"] == "awaiting_funding"
    assert detail.json()["settlement"] is None
    assert detail.json()["quote"]["id"] == created["quote"]["id"]
    assert_problem(other_api.get(f"/api/v1/transfers/{created['id']}"), 404)


def _service_transfer(partner, key):
    quote = quote_create(partner=partner, **{**QUOTE_BODY, "source_amount": Decimal(QUOTE_BODY["source_amount"])})
    transfer, _ = transfer_create(
        partner=partner, idempotency_key=key, fingerprint=request_fingerprint({"k": key}), quote_id=quote.id,
        sender={"name": "Aibek", "phone": "+79161234567", "email": "a@example.com"},
        recipient={"name": "Gulnara", "phone": "+996555123456", "wallet_address": new_recipient()})
    return transfer


def test_transfer_list_is_paginated_and_only_the_callers(api, partner, pricing):
    """GET /transfers pages through exactly the caller's transfers, newest first, never another partner's."""
    other, _ = partner_create(name="globex")
    mine = [_service_transfer(partner, f"mine-{i}") for i in range(settings.REST_FRAMEWORK["PAGE_SIZE"] + 3)]
    theirs = [_service_transfer(other, f"theirs-{i}") for i in range(3)]

    seen, url, pages = [], "/api/v1/transfers", 0
    while url:
        response = api.get(url)
        assert response.status_code == 200, response.content
        page = response.json()
        assert {"results", "next", "previous"} <= set(page)
        assert len(page["results"]) <= settings.REST_FRAMEWORK["PAGE_SIZE"]
        seen += [t["id"] for t in page["results"]]
        url, pages = page["next"], pages + 1
    assert pages == 2
    assert sorted(seen) == sorted(str(t.id) for t in mine)
    assert len(seen) == len(set(seen))
    assert not {str(t.id) for t in theirs} & set(seen)
    assert seen[0] == str(mine[-1].id)


def test_transfer_list_empty_for_new_partner(other_api, api, partner, pricing):
    """A partner with no transfers gets an empty first page even when others have some."""
    _service_transfer(partner, "mine")
    response = other_api.get("/api/v1/transfers")
    assert response.status_code == 200, response.content
    assert response.json()["results"] == []


# Schema ------------------------------------------------------------------------------------------

def test_openapi_schema_and_docs_are_public(client):
    """The OpenAPI schema and its docs page answer without an API key, and the schema lists the transfers path."""
    schema = client.get("/api/v1/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/transfers" in schema.content
    assert b"/api/v1/quotes" in schema.content
    docs = client.get("/api/v1/docs/")
    assert docs.status_code == 200
    # Swagger UI's start-up script is served from the docs URL itself (no inline script under the CSP).
    assert b'src="/api/v1/docs/?script="' in docs.content
    assert b"/api/v1/schema/" in client.get("/api/v1/docs/?script=").content


@pytest.mark.django_db(transaction=True)
def test_concurrent_duplicates_create_one_transfer(partner, pricing, stripe_server):
    """20 simultaneous requests with one Idempotency-Key and body create one transfer: one fresh 201, the others
    replay it (201, `Idempotent-Replayed`) or are told it is still in progress (409 with Retry-After); a retry after
    gets the transfer's id."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection
    from rest_framework.test import APIClient

    def client():
        c = APIClient()
        c.credentials(HTTP_AUTHORIZATION=f"Api-Key {partner.raw_key}")
        return c

    quote = client().post("/api/v1/quotes", QUOTE_BODY, format="json").json()
    body = {"quote_id": quote["id"],
            "sender": {"name": "Aibek Usenov", "phone": "+79161234567", "email": "aibek@example.com"},
            "recipient": {"name": "Gulnara", "phone": "+996555123456", "wallet_address": new_recipient()}}

    def create(_):
        try:
            response = client().post("/api/v1/transfers", body, format="json", HTTP_IDEMPOTENCY_KEY="same-key")
            return response
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(create, range(20)))
    fresh = [r for r in results if r.status_code == 201 and not r.has_header("Idempotent-Replayed")]
    replayed = [r for r in results if r.status_code == 201 and r.has_header("Idempotent-Replayed")]
    busy = [r for r in results if r.status_code == 409]
    assert (len(fresh), len(replayed) + len(busy)) == (1, 19), [r.status_code for r in results]
    assert {r.content for r in replayed} <= {fresh[0].content}
    assert all(r.json()["type"].endswith("/idempotency-key-in-use") and r["Retry-After"] for r in busy)
    assert create(0).json()["id"] == fresh[0].json()["id"]
    assert Transfer.objects.count() == 1
