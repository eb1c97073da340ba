"""The travel rule (payments/services/travel_rule.py): at USD 1,000 or more, or the equivalent in som at the quote's
official rate against the USD official rate, the API and the web form require the originator's and beneficiary's
data, store it with the transfer and show it to operators; below it nothing is asked or kept."""

import re
import uuid
from datetime import timedelta
from decimal import ROUND_CEILING, Decimal

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from payments.models import Rate, Transfer, TravelRuleRecord
from payments.services.quotes import quote_create
from payments.services.setup import SEED_RATES
from tests.conftest import new_recipient
from tests.helpers import staff_login

pytestmark = pytest.mark.django_db
CENT = Decimal("0.01")
# The smallest RUB amount worth USD 1,000 at the seed rates (RUB 1.0785, USD 87.45 som): 81,084.85.
RUB_THRESHOLD = (Decimal(1000) * SEED_RATES["USD"] / SEED_RATES["RUB"]).quantize(CENT, ROUND_CEILING)
EDGES = [("USD", Decimal("1000.00")), ("RUB", RUB_THRESHOLD)]
TRAVEL = {"originator": {"address": "Moscow, Tverskaya 1, RU", "date_of_birth": "1990-05-17"},
          "beneficiary": {"country": "kg"}}


def test_the_rub_threshold_is_usd_1000_in_som():
    """The edge used below: 81,084.85 RUB is the first amount at or above USD 1,000 in som."""
    assert RUB_THRESHOLD == Decimal("81084.85")
    assert (RUB_THRESHOLD - CENT) * SEED_RATES["RUB"] < 1000 * SEED_RATES["USD"] <= RUB_THRESHOLD * SEED_RATES["RUB"]


def api_body(quote, travel_rule=None):
    body = {"quote_id": str(quote.id),
            "sender": {"name": "Aibek Usenov", "phone": "+79161234567", "email": "aibek@example.com"},
            "recipient": {"name": "Gulnara Usenova", "phone": "+996555123456", "wallet_address": new_recipient()}}
    if travel_rule is not None:
        body["travel_rule"] = travel_rule
    return body


def post(api, body):
    return api.post("/api/v1/transfers", body, format="json", HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()))


# API -------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("currency", "threshold"), EDGES)
def test_api_one_minor_unit_below_the_threshold_asks_nothing(api, partner, pricing, stripe_server, currency,
                                                             threshold):
    """One cent/kopeck below USD 1,000 (equivalent), no travel_rule is needed, and one given is not kept."""
    quote = quote_create(partner=partner, source_currency=currency, source_amount=threshold - CENT)
    response = post(api, api_body(quote, travel_rule=TRAVEL))
    assert response.status_code == 201, response.content
    assert not TravelRuleRecord.objects.exists()


@pytest.mark.parametrize(("currency", "threshold"), EDGES)
def test_api_at_the_threshold_without_travel_rule_is_a_422_with_field_errors(api, partner, pricing, stripe_server,
                                                                           currency, threshold):
    """At exactly the threshold, a transfer without originator and beneficiary data is refused with a problem
    naming each missing field (422: the body fits the schema, the amount makes the fields required); nothing is
    created."""
    quote = quote_create(partner=partner, source_currency=currency, source_amount=threshold)
    response = post(api, api_body(quote))
    assert response.status_code == 422
    problem = response.json()
    assert problem["type"].endswith("/travel-rule-required")
    assert {e["field"] for e in problem["errors"]} == {"travel_rule.originator.address",
                                                      "travel_rule.originator.date_of_birth",
                                                      "travel_rule.beneficiary.country"}
    partial = post(api, api_body(quote, {"originator": {"address": "Moscow"}}))
    assert {e["field"] for e in partial.json()["errors"]} == {"travel_rule.originator.date_of_birth",
                                                              "travel_rule.beneficiary.country"}
    malformed = post(api, api_body(quote, {**TRAVEL, "beneficiary": {"country": "K1"}}))
    assert malformed.status_code == 400
    assert [e["field"] for e in malformed.json()["errors"]] == ["travel_rule.beneficiary.country"]
    assert not Transfer.objects.exists()


@pytest.mark.parametrize("usd", ["missing", "stale"])
def test_api_without_a_usable_usd_rate_a_rub_transfer_must_carry_the_data(api, partner, pricing, stripe_server, usd):
    """The USD rate of the threshold (read with the quote's lock) missing, or older than RATE_MAX_AGE_HOURS: the data
    is required even far below USD 1,000, never skipped by accident; with it, the transfer is made."""
    quote = quote_create(partner=partner, source_currency="RUB", source_amount=Decimal("1000.00"))
    usd_rates = Rate.objects.filter(source_currency="USD")
    if usd == "missing":
        usd_rates.delete()
    else:
        usd_rates.update(value_date=timezone.localdate() - timedelta(days=30))
    response = post(api, api_body(quote))
    assert response.status_code == 422, response.content
    assert response.json()["type"].endswith("/travel-rule-required")
    assert not Transfer.objects.exists()
    assert post(api, api_body(quote, travel_rule=TRAVEL)).status_code == 201
    assert TravelRuleRecord.objects.count() == 1


@pytest.mark.parametrize(("currency", "threshold"), EDGES)
def test_api_at_the_threshold_stores_the_data_with_the_transfer(api, partner, pricing, stripe_server, currency,
                                                                threshold):
    """With the data, the transfer is created and its record keeps the originator (name defaulted to the sender's,
    the transfer id as account reference when none is given), the beneficiary (name, payout wallet, country) and
    the comparison in som."""
    quote = quote_create(partner=partner, source_currency=currency, source_amount=threshold)
    body = api_body(quote, TRAVEL)
    response = post(api, body)
    assert response.status_code == 201, response.content
    record = TravelRuleRecord.objects.get(transfer_id=response.json()["id"])
    assert (record.originator_name, record.originator_address, str(record.originator_date_of_birth)) == (
        "Aibek Usenov", "Moscow, Tverskaya 1, RU", "1990-05-17")
    assert record.originator_account == f"transfer:{record.transfer_id}"
    assert (record.beneficiary_name, record.beneficiary_wallet, record.beneficiary_country) == (
        "Gulnara Usenova", body["recipient"]["wallet_address"], "KG")
    assert record.amount_kgs >= record.threshold_kgs == Decimal("87450.00")


def test_api_an_id_number_stands_in_for_the_date_of_birth(api, partner, pricing, stripe_server):
    """The originator gives a date of birth or an ID number; the account reference given is kept."""
    quote = quote_create(partner=partner, source_currency="USD", source_amount=Decimal("2000.00"))
    travel = {"originator": {"name": "Aibek Usenov", "address": "Bishkek", "id_number": "AN1234567",
                             "account": "acme-customer-42"}, "beneficiary": {"name": "Gulnara Usenova", "country": "KG"}}
    response = post(api, api_body(quote, travel))
    assert response.status_code == 201, response.content
    record = TravelRuleRecord.objects.get()
    assert (record.originator_id_number, record.originator_date_of_birth, record.originator_account) == (
        "AN1234567", None, "acme-customer-42")


@pytest.mark.parametrize("born", ["2099-01-01", "1850-06-01", "tomorrow", "ten-years-old"])
def test_api_an_impossible_date_of_birth_is_a_422_next_to_the_field(api, partner, pricing, stripe_server, born):
    """A date of birth in the future, more than 120 years ago or under 14 is refused beside the field; nothing is
    stored."""
    from datetime import timedelta

    from django.utils import timezone

    today = timezone.localdate()
    born = {"tomorrow": (today + timedelta(days=1)).isoformat(),
            "ten-years-old": today.replace(year=today.year - 10, day=min(today.day, 28)).isoformat()}.get(born, born)
    quote = quote_create(partner=partner, source_currency="USD", source_amount=Decimal("2000.00"))
    travel = {"originator": {"address": "Bishkek", "date_of_birth": born}, "beneficiary": {"country": "KG"}}
    response = post(api, api_body(quote, travel))
    assert response.status_code == 422, response.content  # the body fits the schema: the amount makes it required
    fields = {e.get("pointer") or e.get("field") or e.get("name"): e for e in response.json().get("errors", [])}
    assert any("date_of_birth" in str(k) for k in fields), response.json()
    assert "between 14 and 120 years old" in response.content.decode()
    assert not Transfer.objects.exists() and not TravelRuleRecord.objects.exists()


# Web form --------------------------------------------------------------------------------------------------------

def details_data(**overrides):
    data = {"sender_name": "Aibek Usenov", "sender_phone": "+7 916 123-45-67", "sender_email": "aibek@example.com",
            "recipient_name": "Gulnara Usenova", "recipient_phone": "+996 555 123 456",
            "recipient_wallet": new_recipient(), "idempotency_key": str(uuid.uuid4())}
    data.update(overrides)
    return data


def error_next_to(response, field):
    match = re.search(rf'<p class="field-error" id="{re.escape(field)}-error"[^>]*>(.*?)</p>', response.content.decode(),
                      re.S)
    assert match, f"no error slot for {field}"
    return match.group(1).strip()


@pytest.mark.parametrize(("currency", "threshold"), EDGES)
def test_web_form_shows_the_fields_only_at_the_threshold(client, pricing, currency, threshold):
    """The details page adds the travel rule's fields at the threshold, not one minor unit below it."""
    below = quote_create(source_currency=currency, source_amount=threshold - CENT)
    at = quote_create(source_currency=currency, source_amount=threshold)
    assert 'id="travel-rule"' not in client.get(f"/send/{below.id}/details").content.decode()
    page = client.get(f"/send/{at.id}/details").content.decode()
    assert 'id="travel-rule"' in page and 'name="originator_address"' in page and 'name="beneficiary_country"' in page


@pytest.mark.parametrize(("currency", "threshold"), EDGES)
def test_web_form_requires_the_data_next_to_each_field_then_stores_it(client, pricing, stripe_server, currency,
                                                                      threshold):
    """Posted without the data, the page comes back with a message beside each missing field and no transfer; with
    it, the transfer is created with its record."""
    quote = quote_create(source_currency=currency, source_amount=threshold)
    response = client.post(f"/send/{quote.id}/details", details_data(beneficiary_country=""))
    assert response.status_code == 200
    assert error_next_to(response, "originator_address") == "Enter the sender&#x27;s address (street, city, country)."
    assert "date of birth or ID document number" in error_next_to(response, "originator_date_of_birth")
    assert error_next_to(response, "beneficiary_country") == "Enter the recipient&#x27;s country."
    assert not Transfer.objects.exists()
    response = client.post(f"/send/{quote.id}/details", details_data(
        originator_address="Moscow, Tverskaya 1", originator_id_number="4510 123456", beneficiary_country="kg"))
    assert response.status_code == 302, response.content.decode()[:2000]
    record = TravelRuleRecord.objects.get()
    assert (record.originator_address, record.originator_id_number, record.beneficiary_country) == (
        "Moscow, Tverskaya 1", "4510 123456", "KG")


def test_web_form_messages_are_translated(client, pricing):
    """In Russian the travel rule's messages are Russian."""
    quote = quote_create(source_currency="USD", source_amount=Decimal("1000.00"))
    client.cookies["django_language"] = "ru"
    response = client.post(f"/send/{quote.id}/details", details_data(), HTTP_ACCEPT_LANGUAGE="ru")
    assert "Укажите" in error_next_to(response, "originator_address")


# Admin -----------------------------------------------------------------------------------------------------------

def test_operators_see_the_data_on_the_transfer_page(client, api, partner, pricing, stripe_server):
    """The transfer's admin page shows the travel rule's originator and beneficiary data."""
    quote = quote_create(partner=partner, source_currency="USD", source_amount=Decimal("1500.00"))
    transfer_id = post(api, api_body(quote, TRAVEL)).json()["id"]
    operator = staff_login(client, get_user_model().objects.create_superuser("ops", "ops@example.com",
                                                                             "a-long-password-123"))
    page = operator.get(f"/admin/payments/transfer/{transfer_id}/change/").content.decode()
    assert "travel rule data" in page.lower()
    assert "Moscow, Tverskaya 1, RU" in page and "1990" in page and "KG" in page


def test_a_listed_originator_behind_a_clean_sender_name_is_held(api, partner, pricing, stripe_server):
    """The travel-rule names may be written apart from the parties' names: screening checks them too, so a listed
    person given as originator behind a clean sender name holds the transfer, with the originator's hit shown."""
    from payments.services.screening import HOLD, screening_check

    quote = quote_create(partner=partner, source_currency="USD", source_amount=Decimal("1000.00"))
    travel = {**TRAVEL, "originator": {**TRAVEL["originator"], "name": "Ivan Sanctionov"}}
    response = post(api, api_body(quote, travel))
    assert response.status_code == 201, response.content
    outcome = screening_check(transfer=Transfer.objects.get(pk=response.json()["id"]))
    assert outcome.decision == HOLD
    assert {hit.role for hit in outcome.hits} == {"originator"}
