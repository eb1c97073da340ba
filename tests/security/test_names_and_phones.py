"""Issue 7, items 6 and 7: names cannot hide a listed person behind invisible or look-alike characters, and
phone numbers are real +7/+996/+1 numbers stored in E.164 ASCII, on every interface that takes them."""

import re
import uuid
from decimal import Decimal

import pytest
from django.utils import timezone

from payments import pipeline
from payments.api.serializers import NAME_PATTERN, PHONE_PATTERN
from payments.models import Transfer
from payments.services.quotes import quote_create
from payments.services.setup import partner_create
from tests.conftest import new_recipient
from tests.payments.test_api import assert_problem, new_quote, transfer_body

pytestmark = pytest.mark.django_db

HIDDEN = {
    "zero-width space": "\u200b", "zero-width joiner": "\u200d", "right-to-left override": "\u202e",
    "soft hyphen": "\u00ad", "bell (control)": "\x07", "private use": "\ue000", "line separator": "\u2028",
}


def _web_details(client, **overrides):
    quote = quote_create(source_currency="RUB", source_amount=Decimal("10000.00"), partner=None)
    data = {"sender_name": "Aibek Usenov", "sender_phone": "+7 916 123-45-67", "sender_email": "aibek@example.com",
            "recipient_name": "Gulnara Usenova", "recipient_phone": "+996 555 123 456",
            "recipient_wallet": new_recipient(), "idempotency_key": str(uuid.uuid4()), **overrides}
    return client.post(f"/send/{quote.id}/details", data)


# 6. Names ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("role", ["sender", "recipient"])
@pytest.mark.parametrize("char", list(HIDDEN.values()), ids=list(HIDDEN))
def test_api_refuses_names_with_invisible_or_control_characters(api, pricing, role, char):
    """A 400 problem naming the field; no transfer is created."""
    body = transfer_body(new_quote(api)["id"])
    body[role]["name"] = f"Ivan{char}Sanctionov"
    response = api.post("/api/v1/transfers", body, format="json", HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()))
    assert_problem(response, 400, "validation-error", field=f"{role}.name")
    assert not Transfer.objects.exists()


@pytest.mark.parametrize("char", ["\u0378", "\u0600", "\U000e0001", "\U000f0000"],
                         ids=["unassigned", "arabic number sign (format)", "language tag", "plane-15 private use"])
def test_api_refuses_hidden_characters_the_schema_pattern_cannot_list_with_a_422(api, pricing, char):
    """The schema's name pattern lists the common hidden characters (a 400 above); unassigned code points and rare
    format or private-use characters fit it but are refused all the same: 422 invalid-value, nothing created."""
    body = transfer_body(new_quote(api)["id"])
    body["sender"]["name"] = f"Ivan{char}Sanctionov"
    assert re.match(NAME_PATTERN, body["sender"]["name"])
    response = api.post("/api/v1/transfers", body, format="json", HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()))
    assert_problem(response, 422, "invalid-value", field="sender.name")
    assert not Transfer.objects.exists()


@pytest.mark.parametrize("field", ["sender_name", "recipient_name"])
@pytest.mark.parametrize("char", list(HIDDEN.values()), ids=list(HIDDEN))
def test_web_form_refuses_names_with_invisible_or_control_characters(client, pricing, field, char):
    """The message sits next to the field; no transfer is created."""
    from tests.payments.test_web_forms import error_next_to

    response = _web_details(client, **{field: f"Ivan Sanc{char}tionov"})
    assert response.status_code == 200  # the form again, with the error beside the field
    assert "invisible or control characters" in error_next_to(response, field)
    assert not Transfer.objects.exists()


def _funded(sender_name="Aibek Usenov", recipient_name="Gulnara Usenova"):
    """A funded transfer whose names bypass input validation (as rows written before it existed would)."""
    partner, _ = partner_create(name=f"p-{uuid.uuid4().hex[:6]}")
    quote = quote_create(partner=partner, source_currency="RUB", source_amount=Decimal("15000.00"))
    transfer = Transfer.objects.create(
        partner=partner, quote=quote, idempotency_key=str(uuid.uuid4()), request_fingerprint="0" * 64,
        sender_name=sender_name, sender_phone="+79161234567", sender_email="a@example.com",
        recipient_name=recipient_name, recipient_phone="+996555123456", recipient_wallet=new_recipient())
    transfer.mark_funded(timezone.now())
    transfer.save()
    return transfer


@pytest.mark.parametrize("name", [
    "Ivаn Sanctionov",           # Cyrillic а
    "Ivan Sаnctiоnоv",           # Cyrillic а and о
    "Ivan\u200bSanctionov",      # zero-width space as the word break
    "Ivan Sanc\u200btionov",     # zero-width space inside the word
    "Ｉｖａｎ Ｓａｎｃｔｉｏｎｏｖ",  # full-width Latin
    "Иван Санкционов",           # the listed Cyrillic spelling
    "Ивaн Caнкциoнoв",           # that spelling with Latin a, C, o
], ids=["cyrillic-a", "cyrillic-a-o", "zwsp-break", "zwsp-inside", "fullwidth", "cyrillic", "latin-in-cyrillic"])
@pytest.mark.parametrize("role", ["sender", "recipient"])
def test_look_alike_spellings_of_a_listed_name_are_held(pricing, name, role):
    """Screening compares TR39 skeletons: a listed name written with look-alikes or invisible characters is held
    (a match, or at least a mixed-script name), never cleared and paid."""
    transfer = _funded(**{f"{role}_name": name})
    assert pipeline.transfer_advance(transfer_id=transfer.pk).status == Transfer.Status.HELD
    reason = Transfer.objects.get(pk=transfer.pk).failure_reason
    assert "sanctions" in reason or "mixes scripts" in reason


@pytest.mark.parametrize("name", ["Ivаn Sanctionov", "Иван Санкционов", "Ｉｖａｎ Ｓａｎｃｔｉｏｎｏｖ", "Ivan\u200bSanctionov"])
def test_look_alikes_match_the_list_itself_not_only_the_script_rule(pricing, name):
    """The skeleton makes these a sanctions match (the reason says so), not merely a mixed-script hold."""
    transfer = _funded(recipient_name=name)
    pipeline.transfer_advance(transfer_id=transfer.pk)
    assert "sanctions list" in Transfer.objects.get(pk=transfer.pk).failure_reason


def test_a_name_mixing_latin_and_cyrillic_is_held(pricing, chain):
    transfer = _funded(recipient_name="Aibek Усенов")
    assert pipeline.transfer_advance(transfer_id=transfer.pk).status == Transfer.Status.HELD
    assert "mixes scripts (Cyrillic, Latin)" in Transfer.objects.get(pk=transfer.pk).failure_reason


@pytest.mark.parametrize("name", ["Гүлнара Үсөнова", "Айбек Ңурланов", "Gulnara Usenova", "O'Brien-Smith"])
def test_clean_names_in_one_script_settle(pricing, chain, name):
    """Kyrgyz Cyrillic letters (ү, ө, ң), plain Latin, apostrophes and hyphens are not held."""
    transfer = _funded(recipient_name=name)
    assert pipeline.transfer_advance(transfer_id=transfer.pk).status == Transfer.Status.SETTLING


# 7. Phones ---------------------------------------------------------------------------------------

VALID = [("+7 916 123-45-67", "+79161234567"), ("+996 555 123 456", "+996555123456"),
         ("+1 (212) 555-0100", "+12125550100"), ("0079161234567", "+79161234567"),
         ("+٧٩١٦١٢٣٤٥٦٧", "+79161234567"), ("+７９１６１２３４５６７", "+79161234567")]
INVALID = ["+44 20 7946 0958", "+1 555 555 5555", "+7 916", "+996 555 123 456 789", "+1 800 FLOWERS", "79161234567",
           "+7 916 123 45 67 ext 2", ""]


@pytest.mark.parametrize(("typed", "stored"), VALID)
def test_api_stores_valid_phones_in_e164_ascii(api, pricing, stripe_server, typed, stored):
    """Typed with spaces, brackets, 00 or non-ASCII digits, the number is stored as E.164 with ASCII digits."""
    body = transfer_body(new_quote(api)["id"])
    body["sender"]["phone"] = body["recipient"]["phone"] = typed
    response = api.post("/api/v1/transfers", body, format="json", HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()))
    assert response.status_code == 201, response.content
    transfer = Transfer.objects.get()
    assert transfer.sender_phone == transfer.recipient_phone == stored
    assert stored.isascii()


@pytest.mark.parametrize("typed", INVALID)
@pytest.mark.parametrize("role", ["sender", "recipient"])
def test_api_refuses_phones_that_are_not_valid_plus7_996_or_1_numbers(api, pricing, typed, role):
    body = transfer_body(new_quote(api)["id"])
    body[role]["phone"] = typed
    response = api.post("/api/v1/transfers", body, format="json", HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()))
    # The schema's pattern refuses the shape (400); a well-shaped number outside the plan is a 422 invalid-value.
    if re.match(PHONE_PATTERN, typed):
        assert_problem(response, 422, "invalid-value", field=f"{role}.phone")
    else:
        assert_problem(response, 400, "validation-error", field=f"{role}.phone")
    assert not Transfer.objects.exists()


@pytest.mark.parametrize("typed", [t for t in INVALID if t])
@pytest.mark.parametrize("field", ["sender_phone", "recipient_phone"])
def test_web_form_refuses_invalid_phones_next_to_the_field(client, pricing, typed, field):
    from tests.payments.test_web_forms import error_next_to

    response = _web_details(client, **{field: typed})
    assert "country code" in error_next_to(response, field)
    assert not Transfer.objects.exists()
