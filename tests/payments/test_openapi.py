"""The OpenAPI schema says what the server does (issue 10, "A schema an SDK generator can use"), and the server
bugs a property-based run found stay fixed: typed nested objects, problem+json on every error, links, input
patterns that match the server's checks, a JSON 404 for any /api/ path, a 400 for a bad cursor, fixed titles."""

import re
from pathlib import Path

import pytest
from rest_framework import serializers

from common.errors import DRF_TITLES
from payments.api.serializers import AMOUNT_PATTERN, NAME_PATTERN, TransferInputSerializer
from payments.models import PartnerPayout, PayoutPartner, Transfer, TravelRuleRecord
from tests.conftest import QUOTE_BODY, new_recipient

DOCS = Path(__file__).resolve().parents[2] / "docs" / "api.md"


@pytest.fixture
def schema(client):
    response = client.get("/api/v1/schema/?format=json")
    assert response.status_code == 200
    return response.json()


def _operations(schema):
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            yield path, method, operation


def _resolve(schema, node):
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


def test_schema_is_openapi_3_1_with_ids_tags_summaries_and_examples_on_every_operation(schema):
    """Every operation has an operationId (unique), a tag, a summary and at least one example."""
    assert schema["openapi"] == "3.1.0"
    ids = [op["operationId"] for _, _, op in _operations(schema)]
    assert len(ids) == len(set(ids)) and all(ids)
    for path, method, op in _operations(schema):
        assert op.get("tags") and op.get("summary"), (method, path)
        bodies = [c for r in op["responses"].values() for c in r.get("content", {}).values()]
        bodies += list(op.get("requestBody", {}).get("content", {}).values())
        assert any(b.get("examples") for b in bodies), f"no example on {method} {path}"


def test_every_error_response_is_a_problem_details_document(schema):
    """Every 4xx/5xx response is declared as application/problem+json with the shared ProblemDetails component,
    and every authenticated operation declares 401, 403, 406 and 429; every one with a body 400 and 415."""
    problem = schema["components"]["schemas"]["ProblemDetails"]
    assert set(problem["required"]) == {"type", "title", "status", "detail"}
    assert {"instance", "errors"} <= set(problem["properties"])
    for path, method, op in _operations(schema):
        for status, response in op["responses"].items():
            if int(status) >= 400:
                assert list(response["content"]) == ["application/problem+json"], (method, path, status)
                ref = response["content"]["application/problem+json"]["schema"]["$ref"]
                assert ref.endswith("/ProblemDetails")
        assert {"401", "403", "406", "429"} <= set(op["responses"]), (method, path)
        if "requestBody" in op:
            assert {"400", "415"} <= set(op["responses"]), (method, path)
        if "{" in path:
            assert "404" in op["responses"], (method, path)


def _walk(schema, node, seen, where):
    node_ref = node.get("$ref")
    if node_ref:
        if node_ref in seen:
            return
        seen.add(node_ref)
    node = _resolve(schema, node)
    for option in node.get("oneOf", []) + node.get("allOf", []) + node.get("anyOf", []):
        _walk(schema, option, seen, where)
    if node.get("type") == "object" or "properties" in node:
        assert node.get("properties") or node.get("additionalProperties"), f"untyped object at {where}"
        for name, prop in node.get("properties", {}).items():
            _walk(schema, prop, seen, f"{where}.{name}")
    if "items" in node:
        _walk(schema, node["items"], seen, f"{where}[]")


def test_every_nested_object_is_typed_and_always_present_fields_are_required(schema):
    """No free-form `object` anywhere (sender, recipient, funding, settlement, quote are components); a transfer's
    fields are all required in the response, nullable ones say so."""
    for path, method, op in _operations(schema):
        for status, response in op["responses"].items():
            for media in response.get("content", {}).values():
                _walk(schema, media["schema"], set(), f"{method} {path} {status}")
    transfer = schema["components"]["schemas"]["TransferOutput"]
    assert set(transfer["required"]) == set(transfer["properties"])
    for name in ("sender", "recipient", "funding", "quote"):
        prop = transfer["properties"][name]
        refs = [prop.get("$ref")] + [option.get("$ref") for option in prop.get("allOf", [])]
        assert f"#/components/schemas/{name.capitalize()}Output" in refs, (name, prop)
    settlement = transfer["properties"]["settlement"]
    assert {"type": "null"} in settlement.get("oneOf", []) or "null" in str(settlement)
    assert "null" in str(transfer["properties"]["funded_at"]["type"])
    for name in ("QuoteOutput", "FundingOutput", "SettlementOutput", "SenderOutput", "RecipientOutput"):
        component = schema["components"]["schemas"][name]
        assert set(component["required"]) == set(component["properties"]), name


def test_links_lead_from_a_quote_to_its_transfer_and_from_a_transfer_to_its_reads(schema):
    """quotes_create 201 → transfers_create (quote_id from the quote's id); transfers_create → get and cancel."""
    quote_links = schema["paths"]["/api/v1/quotes"]["post"]["responses"]["201"]["links"]
    assert quote_links["create_transfer"]["operationId"] == "transfers_create"
    assert quote_links["create_transfer"]["requestBody"] == {"quote_id": "$response.body#/id"}
    for status in ("200", "201"):
        links = schema["paths"]["/api/v1/transfers"]["post"]["responses"][status]["links"]
        assert links["get_transfer"]["operationId"] == "transfers_retrieve"
        assert links["cancel_transfer"]["parameters"] == {"id": "$response.body#/id"}


def test_input_constraints_are_in_the_schema(schema):
    """Idempotency-Key 1–255 characters; names, phones, wallets and amounts carry the patterns the server checks."""
    create = schema["paths"]["/api/v1/transfers"]["post"]
    key = next(p for p in create["parameters"] if p["name"] == "Idempotency-Key")
    assert key["required"] and key["schema"]["minLength"] == 1 and key["schema"]["maxLength"] == 255
    components = schema["components"]["schemas"]
    sender, recipient = components["SenderRequest"]["properties"], components["RecipientRequest"]["properties"]
    assert sender["name"]["minLength"] == 1 and sender["name"]["pattern"] == NAME_PATTERN
    assert sender["email"]["maxLength"] == 254
    assert recipient["wallet_address"]["pattern"] == "^0x[0-9a-fA-F]{40}$"
    assert recipient["phone"]["pattern"].startswith("^")
    assert components["QuoteInputRequest"]["properties"]["source_amount"]["pattern"] == AMOUNT_PATTERN
    scheme = schema["components"]["securitySchemes"]["ApiKey"]
    assert "Api-Key " in scheme["description"] and scheme["name"] == "Authorization"


AMOUNTS = ["15000", "15000.5", "15000.00", "0.01", "0.5", "9999999999.99", "", " ", "-5", "+5", "0", "0.00", "00.5",
           "015000", "1e3", "1E3", "15000.001", "15000.", ".5", "1,000", "99999999999", "NaN", "Infinity", "١٥٠٠٠",
           "15000\n"]


@pytest.mark.parametrize("amount", AMOUNTS)
def test_the_amount_pattern_and_the_server_agree(api, pricing, amount):
    """An amount is accepted as far as its format goes exactly when the schema's pattern matches it; a format the
    pattern refuses is a 400 on `source_amount` (a refusal by the corridor's limits is another problem)."""
    response = api.post("/api/v1/quotes", {**QUOTE_BODY, "source_amount": amount}, format="json")
    field_errors = [e["field"] for e in response.json().get("errors", [])] if response.status_code == 400 else []
    assert ("source_amount" not in field_errors) == bool(re.search(AMOUNT_PATTERN, amount)), response.json()
    assert response.status_code < 500


@pytest.mark.parametrize("amount", [15000, 15000.5, 1e3, True, None, ["15000"], {"v": "1"}])
def test_json_numbers_and_other_types_are_refused_as_amounts(api, pricing, amount):
    """Amounts are strings: a JSON number (a binary float to most clients) is a 400 problem, never rounded."""
    response = api.post("/api/v1/quotes", {**QUOTE_BODY, "source_amount": amount}, format="json")
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/problem+json")
    assert [e["field"] for e in response.json()["errors"]] == ["source_amount"]


def _transfer_body(quote_id, **sender):
    return {"quote_id": quote_id,
            "sender": {"name": "Aibek Usenov", "phone": "+79161234567", "email": "aibek@example.com", **sender},
            "recipient": {"name": "Gulnara", "phone": "+996555123456", "wallet_address": new_recipient()}}


def test_a_255_character_email_is_a_400_problem_and_nothing_is_stored(api, pricing):
    """The serializer accepted e-mails past the column's 254 characters: a 500 on PostgreSQL. Now a 400 problem."""
    quote = api.post("/api/v1/quotes", QUOTE_BODY, format="json").json()
    email = "a" * 64 + "@" + ".".join(["b" * 63, "c" * 63, "d" * 59]) + ".kg"
    assert len(email) == 255
    response = api.post("/api/v1/transfers", _transfer_body(quote["id"], email=email), format="json",
                        HTTP_IDEMPOTENCY_KEY="long-email")
    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == ["sender.email"]
    assert not Transfer.objects.exists()


COLUMNS = {  # serializer field (dotted) → the column it is stored in
    "sender.name": Transfer.sender_name, "sender.phone": Transfer.sender_phone, "sender.email": Transfer.sender_email,
    "recipient.name": Transfer.recipient_name, "recipient.phone": Transfer.recipient_phone,
    "recipient.wallet_address": Transfer.recipient_wallet,
    "recipient.account": PartnerPayout.recipient_account,
    "recipient.payout_partner": PayoutPartner.code,  # looked up by code (or id), never stored as given
    "reference": Transfer.reference,
    "travel_rule.originator.name": TravelRuleRecord.originator_name,
    "travel_rule.originator.address": TravelRuleRecord.originator_address,
    "travel_rule.originator.id_number": TravelRuleRecord.originator_id_number,
    "travel_rule.originator.account": TravelRuleRecord.originator_account,
    "travel_rule.beneficiary.name": TravelRuleRecord.beneficiary_name,
    "travel_rule.beneficiary.country": TravelRuleRecord.beneficiary_country,
}


def _char_fields(serializer, prefix=""):
    for name, field in serializer.fields.items():
        if isinstance(field, serializers.BaseSerializer):
            yield from _char_fields(field, f"{prefix}{name}.")
        elif isinstance(field, serializers.CharField):
            yield f"{prefix}{name}", field


def test_no_input_text_field_is_longer_than_its_column():
    """Every text field of the transfer input is mapped to its column and allows at most the column's length (a
    longer value would pass the serializer and fail in PostgreSQL with a 500). A new field must be added here."""
    fields = dict(_char_fields(TransferInputSerializer()))
    assert set(fields) == set(COLUMNS)
    for name, field in fields.items():
        column = COLUMNS[name].field.max_length
        assert field.max_length is not None and field.max_length <= column, (name, field.max_length, column)


@pytest.mark.parametrize("path", ["/api/v1/transfers/not-a-uuid", "/api/v1/transfers/123/cancel", "/api/v1/nope",
                                  "/api/nothing", "/api/v1/quotes/", "/api/v1/balances/RUB/statement/x"])
@pytest.mark.parametrize("debug", [False, True])
def test_any_unknown_api_path_is_a_json_404_problem_even_in_debug(api, settings, path, debug):
    """A non-UUID id or an unknown path under /api/ answered Django's HTML 404 (the debug page under `make run`):
    now a problem+json 404, whatever the method."""
    settings.DEBUG = debug
    for method in ("get", "post"):
        response = getattr(api, method)(path)
        assert response.status_code == 404
        assert response["Content-Type"].startswith("application/problem+json")
        assert response.json()["type"].endswith("/not-found")


def test_problem_titles_never_carry_placeholders(api):
    """DRF's default messages are templates ('Method "{method}" not allowed.'); a title is fixed text per type."""
    cases = [api.delete("/api/v1/quotes"), api.put("/api/v1/transfers"),
             api.post("/api/v1/quotes", "x", content_type="text/plain"),
             api.get("/api/v1/balances", HTTP_ACCEPT="text/csv")]
    assert [r.status_code for r in cases] == [405, 405, 415, 406]
    for response in cases:
        body = response.json()
        assert "{" not in body["title"] and body["title"] == DRF_TITLES[body["type"].rsplit("/", 1)[1]]
    assert cases[0].json()["title"] == "Method not allowed" and "DELETE" in cases[0].json()["detail"]


def _problem_codes():
    from common.errors import ApplicationError

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    codes = {cls.code for cls in subclasses(ApplicationError)} | set(DRF_TITLES) | {"validation-error"}
    return codes


def test_every_problem_type_is_documented_in_the_errors_section():
    """docs/api.md, Errors, lists every `type` the API can answer (domain errors and DRF's), with its status."""
    import payments.api.urls  # noqa: F401 (imports every module that defines errors)

    text = DOCS.read_text()
    errors = text.split("## Errors", 1)[1].split("\n## ", 1)[0]
    missing = [code for code in sorted(_problem_codes()) if f"`{code}`" not in errors]
    assert not missing, f"undocumented problem types: {missing}"


@pytest.mark.parametrize(("key", "accepted"), [("order-1", True), ("  padded  ", True), ("k" * 255, True),
                                               ("", False), ("   ", False), ("k" * 256, False), ("a\x01b", False),
                                               ("тест", False)])
def test_idempotency_key_is_checked_as_the_schema_says(api, pricing, stripe_server, key, accepted):
    """1 to 255 printable ASCII characters with at least one that is not a space: anything else is a 400 problem
    naming the header, and nothing is created."""
    quote = api.post("/api/v1/quotes", QUOTE_BODY, format="json").json()
    response = api.post("/api/v1/transfers", _transfer_body(quote["id"]), format="json",
                        headers={"Idempotency-Key": key})
    if accepted:
        assert response.status_code == 201, response.content
    else:
        assert response.status_code == 400
        assert [e["field"] for e in response.json()["errors"]] == ["Idempotency-Key"]
        assert not Transfer.objects.exists()


def _travel_rule_body(quote_id, date_of_birth):
    body = _transfer_body(quote_id)
    body["travel_rule"] = {"originator": {"address": "Moscow", "date_of_birth": date_of_birth},
                           "beneficiary": {"country": "KG"}}
    return body


@pytest.mark.parametrize(("value", "status", "code"), [("20260101", 400, "validation-error"),
                                                       ("2026-W01-1", 400, "validation-error"),
                                                       ("", 400, "validation-error"),
                                                       ("1990-02-30", 422, "invalid-value")])
def test_a_date_is_yyyy_mm_dd_and_an_impossible_one_is_422(api, pricing, value, status, code):
    """Dates take only the schema's YYYY-MM-DD (DRF would also take "20260101" and ISO week dates); one that fits
    the pattern but does not exist is a 422 invalid-value."""
    quote = api.post("/api/v1/quotes", QUOTE_BODY, format="json").json()
    response = api.post("/api/v1/transfers", _travel_rule_body(quote["id"], value), format="json",
                        HTTP_IDEMPOTENCY_KEY="dob")
    assert response.status_code == status, response.content
    assert response.json()["type"].endswith("/" + code)
    assert [e["field"] for e in response.json()["errors"]] == ["travel_rule.originator.date_of_birth"]


def test_the_schema_asks_for_exactly_one_amount(schema):
    """Both amounts or neither is a 400 from the server, and the schema's oneOf refuses both too."""
    quote = schema["components"]["schemas"]["QuoteInputRequest"]
    assert {"required": ["source_amount"], "not": {"required": ["target_amount"]}} in quote["oneOf"]
    assert {"required": ["target_amount"], "not": {"required": ["source_amount"]}} in quote["oneOf"]


def test_a_new_endpoint_gets_the_problem_responses_without_asking():
    """ProblemAutoSchema adds 401/403/406/429 to any authenticated operation, 400/413/415 with a body, 404 with a
    path parameter: a view declaring only its 200 still documents every problem DRF can answer."""
    from django.urls import path
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.utils import extend_schema
    from rest_framework.views import APIView

    from payments.api.serializers import QuoteInputSerializer, QuoteOutputSerializer

    class Probe(APIView):
        @extend_schema(request=QuoteInputSerializer, responses={200: QuoteOutputSerializer}, operation_id="probe")
        def post(self, request, pk):
            raise AssertionError("never called")

    generated = SchemaGenerator(patterns=[path("api/v1/probe/<uuid:pk>", Probe.as_view())]).get_schema(public=True)
    responses = next(iter(generated["paths"].values()))["post"]["responses"]
    assert set(responses) == {"200", "400", "401", "403", "404", "406", "413", "415", "429"}
    assert list(responses["401"]["content"]) == ["application/problem+json"]


@pytest.mark.parametrize(("reference", "status", "code"), [("order\x01", 400, "validation-error"),
                                                           ("order\u200b1", 400, "validation-error"),
                                                           ("order\u00a01", 422, "invalid-value"),
                                                           ("order 1", 201, None)])
def test_a_reference_the_pattern_allows_but_not_printable_is_422(api, pricing, stripe_server, reference, status,
                                                                   code):
    """The schema's reference pattern lists control and common invisible characters (a 400); a non-printable one it
    cannot list (a no-break space) fits the schema, so it is a 422 invalid-value, and nothing is created."""
    quote = api.post("/api/v1/quotes", QUOTE_BODY, format="json").json()
    response = api.post("/api/v1/transfers", {**_transfer_body(quote["id"]), "reference": reference}, format="json",
                        HTTP_IDEMPOTENCY_KEY="ref")
    assert response.status_code == status, response.content
    if code:
        assert response.json()["type"].endswith("/" + code)
        assert [e["field"] for e in response.json()["errors"]] == ["reference"]
        assert not Transfer.objects.exists()


def test_free_text_inputs_say_no_nul_and_not_blank_in_the_schema(schema):
    """DRF refuses NUL characters and blank text: every such input of the new endpoints carries the pattern."""
    components = schema["components"]["schemas"]
    for component, field in [("RecipientRequest", "account"), ("RecipientRequest", "payout_partner"),
                             ("WebhookEndpointInputRequest", "url"), ("PayoutFailInputRequest", "reason"),
                             ("ReplayInputRequest", "endpoint_id")]:
        pattern = components[component]["properties"][field]["pattern"]
        assert not re.search(pattern, "a\x00b") and not re.search(pattern, "   ") and re.search(pattern, "a b")


def test_links_lead_from_a_webhook_endpoint_to_its_operations_and_from_an_event_to_its_deliveries(schema):
    """webhook_endpoints_create 201 → read, change, rotate, test and delete it (id from the body); a test event →
    the event, its deliveries and a replay (msg_id from the body)."""
    created = schema["paths"]["/api/v1/webhook-endpoints"]["post"]["responses"]["201"]["links"]
    assert {link["operationId"] for link in created.values()} == {
        "webhook_endpoints_retrieve", "webhook_endpoints_update", "webhook_endpoints_rotate_secret",
        "webhook_endpoints_test", "webhook_endpoints_delete"}
    assert all(link["parameters"] == {"id": "$response.body#/id"} for link in created.values())
    tested = schema["paths"]["/api/v1/webhook-endpoints/{id}/test"]["post"]["responses"]["202"]["links"]
    assert {link["operationId"] for link in tested.values()} == {
        "webhook_events_retrieve", "webhook_events_deliveries", "webhook_events_replay"}
    assert all(link["parameters"] == {"msg_id": "$response.body#/id"} for link in tested.values())


@pytest.mark.parametrize("value", ["Aida", " Aida ", "a b", "", " ", "\t", "a\x00b", "\x00", "Ai\u200bda", "\u202e",
                                   "Айда Бекова", "a" * 141, "b" * 5000 + "\x00", "c" * 5000 + "\u200b", "\ue000x"])
def test_the_servers_linear_checks_agree_with_the_schema_patterns(value):
    """The name and free-text rules are checked on the server without the schema's patterns (those backtrack
    quadratically on a long value failing at its end): for every sample the server's rule and the pattern agree."""
    import re

    from payments.api.serializers import NAME_PATTERN, TEXT_OR_BLANK_PATTERN, TEXT_PATTERN, _names_rule, _TextRule

    assert _names_rule(value) == bool(re.match(NAME_PATTERN, value))
    for allow_blank, pattern in ((False, TEXT_PATTERN), (True, TEXT_OR_BLANK_PATTERN)):
        try:
            _TextRule(allow_blank=allow_blank)(value)
            ok = True
        except Exception:
            ok = False
        assert ok == bool(re.match(pattern, value)), (allow_blank, value[:20])


def test_an_overlong_name_is_refused_for_its_length_before_its_characters():
    """A 200,000-character name ending in a hidden character is refused as too long (the length is checked first)."""
    from payments.api.serializers import SenderSerializer

    data = SenderSerializer(data={"name": "a" * 200_000 + "\u200b", "phone": "+996555123456", "email": "a@b.kg"})
    assert not data.is_valid()
    assert data.errors["name"][0].code == "max_length"
