"""The whole pipeline over real parts: partner API → localstripe payment → signed webhook → Celery worker →
KGST transfer on anvil → completion after confirmations → ledger."""

from decimal import Decimal

import pytest

from payments.models import JournalEntry, Transfer
from payments.services.ledger import account_balance
from tests.conftest import QUOTE_BODY, new_recipient, pay_on_stripe, token_balance, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_api_transfer_paid_by_card_completes_and_recipient_gets_exactly_the_quoted_kgst(
        api, pricing, chain, stripe_webhook_to, celery_processes):
    """A transfer created through the API and paid with a test card on localstripe reaches `completed`
    through the real worker, and the recipient's on-chain KGST balance rises by exactly the quoted som."""
    token = chain["token"]
    recipient = new_recipient()
    quote = api.post("/api/v1/quotes", QUOTE_BODY, format="json").json()
    body = {"quote_id": quote["id"],
            "sender": {"name": "Aibek Usenov", "phone": "+79161234567", "email": "aibek@example.com"},
            "recipient": {"name": "Gulnara Usenova", "phone": "+996555123456", "wallet_address": recipient}}
    created = api.post("/api/v1/transfers", body, format="json", HTTP_IDEMPOTENCY_KEY="order-1")
    assert created.status_code == 201, created.content
    transfer = created.json()
    assert transfer["status"] == "awaiting_funding"
    assert transfer["funding"]["payment_intent_id"].startswith("pi_")
    assert token_balance(token, recipient) == 0

    paid = pay_on_stripe(transfer["funding"]["payment_intent_id"])
    assert paid["status"] == "succeeded"

    wait_for(lambda: Transfer.objects.get(pk=transfer["id"]).status == "completed", timeout=90,
             what="the transfer to complete")
    expected = int(Decimal(quote["target_amount"]).scaleb(token.decimals))
    assert token_balance(token, recipient) == expected

    final = api.get(f"/api/v1/transfers/{transfer['id']}").json()
    assert final["status"] == "completed"
    assert final["settlement"]["to_address"] == recipient
    assert int(final["settlement"]["amount_base_units"]) == expected
    assert final["settlement"]["confirmations"] >= 2
    receipt = chain["w3"].eth.get_transaction_receipt(final["settlement"]["tx_hash"])
    assert receipt["status"] == 1

    # Ledger: funding and payout posted once each; what the recipient was owed is paid off.
    assert set(JournalEntry.objects.filter(transfer_id=transfer["id"]).values_list("kind", flat=True)) == {
        "funding", "payout"}
    assert account_balance("recipient_payable", "KGS") == 0
    assert account_balance("kgst_float", "KGS") == -int(Decimal(quote["target_amount"]) * 100)
