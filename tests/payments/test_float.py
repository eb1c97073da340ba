"""Quotes are firm promises: refused when the settlement float (less what is owed) cannot cover them."""

from decimal import Decimal

import pytest

from onchain.api import float_covers, payout_request
from onchain.models import Payout, TreasurySnapshot
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


def test_float_covers_counts_what_is_owed_to_the_base_unit(chain):
    """float_covers (one statement per quote) compares against the snapshot less queued and batched payouts: it
    covers exactly the rest and refuses one base unit more; a failed payout no longer counts; without a snapshot
    it covers anything."""
    token = chain["token"]
    TreasurySnapshot.objects.filter(token=token).delete()
    assert float_covers(amount=Decimal("1e30")) is True  # never measured: nothing to compare against
    TreasurySnapshot.objects.update_or_create(token=token, defaults={"float_base_units": 10_000 * 10**18,
                                                                     "measured_at": "2026-11-29T00:00:00Z"})
    first = payout_request(reference="owed-1", to_address=chain["wallet"].address, amount=Decimal("1234.5"))
    payout_request(reference="owed-2", to_address=chain["wallet"].address, amount=Decimal("0.000000000000000001"))
    rest = Decimal(10_000 * 10**18 - 1234_5 * 10**17 - 1) / 10**18
    assert float_covers(amount=rest) is True
    assert float_covers(amount=rest + Decimal("1e-18")) is False
    Payout.objects.filter(pk=first.pk).mark_failed("test: no longer owed")
    assert float_covers(amount=rest + Decimal("1234.5")) is True
    assert float_covers(amount=rest + Decimal("1234.5") + Decimal("1e-18")) is False
