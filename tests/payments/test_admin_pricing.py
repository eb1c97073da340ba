"""Corridors and rates in admin (payments/admin_pricing.py): bad pricing is refused next to its field and nothing is
saved; a good edit prices the next quote; the database refuses what the form would."""

from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction

from payments.models import Corridor
from payments.services.quotes import quote_price
from tests.helpers import staff_login

pytestmark = pytest.mark.django_db

FIELDS = ["source_currency", "target_currency", "margin_bps", "fixed_fee", "percent_fee_bps", "min_fee", "max_fee",
          "min_amount", "max_amount", "is_active"]


@pytest.fixture
def treasurer(client):
    user = get_user_model().objects.create_superuser("treasurer", "t@example.com", "a-long-password-123")
    return staff_login(client, user)


def form_data(corridor, **changes):
    data = {name: getattr(corridor, name) for name in FIELDS}
    data.update(changes)
    data.setdefault("change_reason", "pricing review")
    return {k: ("" if v is None else ("on" if v is True else v)) for k, v in data.items() if v is not False}


def snapshot(corridor):
    corridor.refresh_from_db()
    return {name: getattr(corridor, name) for name in FIELDS}


@pytest.mark.parametrize(("changes", "field", "message"), [
    ({"margin_bps": 10000}, "margin_bps", "below 10000"),
    ({"percent_fee_bps": 12000}, "percent_fee_bps", "below 10000"),
    ({"fixed_fee": "-1.00"}, "fixed_fee", "negative"),
    ({"min_fee": "-0.01"}, "min_fee", "negative"),
    ({"min_fee": "10.00", "max_fee": "5.00"}, "max_fee", "at least the minimum fee"),
    ({"min_amount": "0"}, "min_amount", "above zero"),
    ({"max_amount": "9.99"}, "max_amount", "at least the minimum amount"),
    ({"min_fee": "10.00"}, "min_amount", "takes all of it"),
    ({"fixed_fee": "abc"}, "fixed_fee", "number"),
], ids=["margin-100%", "percent-120%", "negative-fixed", "negative-min-fee", "max-below-min-fee", "zero-min-amount",
        "max-below-min-amount", "fee-eats-minimum", "not-a-number"])
def test_bad_corridor_values_are_refused_next_to_the_field(treasurer, pricing, changes, field, message):
    """Each bad value in the USD corridor's admin form (minimum 10.00 USD) re-shows the form with the message beside
    the field it concerns; the corridor is unchanged."""
    corridor = Corridor.objects.get(source_currency="USD", target_currency="KGS")
    before = snapshot(corridor)
    response = treasurer.post(f"/admin/payments/corridor/{corridor.pk}/change/", form_data(corridor, **changes))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert message in " ".join(errors.get(field, [])), errors
    assert snapshot(corridor) == before


def test_good_edit_is_saved_and_prices_the_next_quote(treasurer, pricing):
    """Raising the USD minimum fee to 5.00 and capping it at 20.00 is saved; the next 100 USD quote pays 5.00
    (1.99 + 1 % = 2.99 lifted to the minimum) and a 5,000 USD one pays 20.00."""
    corridor = Corridor.objects.get(source_currency="USD", target_currency="KGS")
    response = treasurer.post(f"/admin/payments/corridor/{corridor.pk}/change/",
                              form_data(corridor, min_fee="5.00", max_fee="20.00"))
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert quote_price(source_currency="USD", source_amount=Decimal("100.00")).fee == Decimal("5.00")
    assert quote_price(source_currency="USD", source_amount=Decimal("5000.00")).fee == Decimal("20.00")


def test_switching_a_corridor_off_stops_its_quotes(treasurer, pricing):
    """Unticking "is active" saves, and quotes for that currency are then refused."""
    from payments.errors import CorridorUnavailable

    corridor = Corridor.objects.get(source_currency="RUB", target_currency="KGS")
    response = treasurer.post(f"/admin/payments/corridor/{corridor.pk}/change/", form_data(corridor, is_active=False))
    assert response.status_code == 302
    with pytest.raises(CorridorUnavailable):
        quote_price(source_currency="RUB", source_amount=Decimal("1000.00"))


@pytest.mark.parametrize("changes", [{"min_fee": Decimal("-1")}, {"max_fee": Decimal("0.50"), "min_fee": Decimal("1")},
                                     {"min_fee": Decimal("10.00")}, {"fixed_fee": Decimal("-0.01")}])
def test_database_refuses_insane_fees(pricing, changes):
    """The check constraint corridor_fees_sane refuses, below the form, a negative fee part, a maximum fee under the
    minimum and a minimum fee not below the minimum amount."""
    with pytest.raises(IntegrityError), transaction.atomic():
        Corridor.objects.filter(source_currency="USD", target_currency="KGS").update(**changes)


def test_corridors_are_not_deleted(treasurer, pricing):
    """A corridor is switched off, never deleted (quotes name its currency)."""
    corridor = Corridor.objects.get(source_currency="USD", target_currency="KGS")
    assert treasurer.post(f"/admin/payments/corridor/{corridor.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Corridor.objects.filter(pk=corridor.pk).exists()
