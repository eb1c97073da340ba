"""Quotes are firm promises: refused when the settlement float (less what is owed) cannot cover them."""

import pytest

from onchain.models import TreasurySnapshot
from payments.models import Quote
from tests.conftest import QUOTE_BODY

pytestmark = pytest.mark.django_db


def test_quote_refused_when_the_float_cannot_cover_it(api, pricing, chain):
    """With 1,000 KGST of float, a quote delivering ~15,700 KGS gets a 503 problem and is not stored; a small
    one still works."""
    TreasurySnapshot.objects.filter(token=chain["token"]).update(float_base_units=1_000 * 10**18)
    response = api.post("/api/v1/quotes", QUOTE_BODY, format="json")
    assert response.status_code == 503
    assert response.json()["type"].endswith("/float-insufficient")
    assert not Quote.objects.exists()
    small = api.post("/api/v1/quotes", {**QUOTE_BODY, "source_amount": "600.00"}, format="json")
    assert small.status_code == 201


def test_quote_accepted_when_the_float_covers_it(api, pricing, chain):
    """The dev float (a billion KGST) covers an ordinary quote."""
    assert api.post("/api/v1/quotes", QUOTE_BODY, format="json").status_code == 201
