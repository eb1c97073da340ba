"""Operator admin: queues by status and currency, search, held transfers released, live wallet balances."""

import pytest
from django.contrib.auth import get_user_model

from onchain.models import Payout
from payments.models import Transfer
from payments.services.quotes import quote_create
from payments.services.transfers import transfer_create
from tests.conftest import new_recipient
from tests.helpers import force_status, staff_login

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(client):
    user = get_user_model().objects.create_superuser("ops", "ops@example.com", "a-long-password-123")
    return staff_login(client, user)


def make_transfer(currency="RUB", amount="15000.00", status=None, recipient_name="Gulnara Usenova", key=None):
    from decimal import Decimal

    quote = quote_create(source_currency=currency, source_amount=Decimal(amount))
    transfer, _ = transfer_create(
        partner=None, idempotency_key=key or str(quote.id), fingerprint="f", quote_id=quote.id,
        sender={"name": "Aibek Usenov", "phone": "+79161234567", "email": "aibek@example.com"},
        recipient={"name": recipient_name, "phone": "+996555123456", "wallet_address": new_recipient()})
    if status:
        force_status(Transfer.objects.filter(pk=transfer.pk), status)
    return Transfer.objects.get(pk=transfer.pk)


def test_transfer_queue_filters_by_status_and_currency_and_searches(operator, pricing):
    """The transfer list filters by status and source currency and finds a transfer by the recipient's wallet."""
    rub = make_transfer("RUB", status="held")
    usd = make_transfer("USD", amount="100.00")
    page = operator.get("/admin/payments/transfer/", {"status__exact": "held"})
    assert page.status_code == 200
    assert str(rub.id) in page.content.decode() and str(usd.id) not in page.content.decode()
    page = operator.get("/admin/payments/transfer/", {"quote__source_currency": "USD"})
    assert str(usd.id) in page.content.decode() and str(rub.id) not in page.content.decode()
    page = operator.get("/admin/payments/transfer/", {"q": usd.recipient_wallet})
    assert str(usd.id) in page.content.decode() and str(rub.id) not in page.content.decode()


def test_release_action_moves_a_held_transfer_to_settling_with_a_payout(operator, pricing, chain):
    """Releasing a held transfer (requested with a reason, approved by a second person) queues exactly one payout
    for the quoted som and moves it to settling."""
    from django.test import Client

    from staff.models import ApprovalRequest

    held = make_transfer(status="held")
    response = operator.post("/admin/payments/transfer/", {"action": "release", "_selected_action": [held.pk],
                                                           "post": "yes", "reason": "name match cleared"})
    assert response.status_code == 302
    second = staff_login(Client(), get_user_model().objects.create_superuser("ops2", "ops2@example.com",
                                                                             "a-long-password-123"))
    request = ApprovalRequest.objects.get(target_id=str(held.pk))
    response = second.post("/admin/staff/approvalrequest/", {"action": "approve", "_selected_action": [request.pk],
                                                             "post": "yes", "reason": "agreed"})
    assert response.status_code == 302
    held.refresh_from_db()
    assert held.status == "settling"
    payout = Payout.objects.get(reference=str(held.id))
    assert payout.amount_base_units == int(held.quote.target_amount * 100) * 10**16


def test_release_refuses_transfers_that_are_not_held(operator, pricing, chain):
    """Release on an unpaid transfer changes nothing and tells the operator why."""
    unpaid = make_transfer()
    response = operator.post("/admin/payments/transfer/", {"action": "release", "_selected_action": [unpaid.pk]},
                             follow=True)
    assert "Only held transfers can be released" in response.content.decode()
    unpaid.refresh_from_db()
    assert unpaid.status == "awaiting_funding"
    assert not Payout.objects.exists()


def test_transfers_are_not_editable_in_admin(operator, pricing):
    """A transfer's fields cannot be changed through the admin form (money moves only through services)."""
    transfer = make_transfer()
    operator.post(f"/admin/payments/transfer/{transfer.pk}/change/", {"status": "completed"})
    transfer.refresh_from_db()
    assert transfer.status == "awaiting_funding"


def test_hot_wallet_page_shows_live_token_and_gas_balance(operator, chain):
    """The hot-wallet list reads the wallet's KGST and gas balances from the chain."""
    page = operator.get("/admin/onchain/hotwallet/").content.decode()
    assert chain["wallet"].address in page
    assert "KGST" in page and "unavailable" not in page


def test_admin_requires_staff_login(client):
    """Anonymous visitors are sent to the login page."""
    response = client.get("/admin/payments/transfer/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
