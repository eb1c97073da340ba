"""The USDKG float is reconciled against its own chain as KGST's is against BNB Chain's stand-in: an opening balance
per float, a shortfall that halts payouts, an item in dollars; one chain that does not answer leaves the other's
float reconciled (the error is raised after)."""

import os
from decimal import Decimal

import pytest
import requests
from django.core.management import CommandError, call_command
from eth_account import Account
from web3.exceptions import Web3RPCError

from onchain import client
from onchain.api import payouts_halted
from onchain.models import OperatorAlert
from payments.models import ReconciliationItem
from payments.services.ledger import account_balance
from payments.services.reconciliation import (
    treasury_dev_book_opening,
    treasury_funding_record,
    treasury_reconcile_all,
)
from tests.conftest import new_recipient

pytestmark = pytest.mark.django_db


def _usdkg_out_of_hot_wallet(usdkg_chain, base_units):
    """Someone with the USDKG hot wallet's key moves float out, outside the gateway."""
    w3, token, wallet = usdkg_chain["w3"], usdkg_chain["token"], usdkg_chain["wallet"]
    tx = client.erc20(token.address, token.chain).functions.transfer(new_recipient(), base_units).build_transaction({
        "from": wallet.address, "nonce": w3.eth.get_transaction_count(wallet.address, "pending"), "gas": 100_000,
        "chainId": w3.eth.chain_id})
    signed = Account.sign_transaction(tx, os.environ["HOT_WALLET_USDKG_PRIVATE_KEY"])
    receipt = w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(signed.raw_transaction), timeout=30)
    assert receipt["status"] == 1


def test_each_float_needs_its_own_opening_balance(chain, usdkg_chain):
    """KGST's opening booked, USDKG's not: KGST agrees, USDKG only alerts (nothing to compare), no item, no halt."""
    assert treasury_dev_book_opening(currency="KGS") is not None
    assert treasury_reconcile_all() == []
    assert not ReconciliationItem.objects.exists() and payouts_halted() == []
    alerts = list(OperatorAlert.objects.filter(kind="reconciliation").values_list("message", flat=True))
    assert len(alerts) == 1 and alerts[0].startswith("USDKG treasury: no opening balance"), alerts


def test_a_usdkg_shortfall_is_an_item_in_dollars_that_halts_payouts(chain, usdkg_chain):
    """5 USDKG moved out of its hot wallet: one item in USD for the USDKG float (not KGST's), payouts halted; booking
    the loss makes the books agree again."""
    treasury_dev_book_opening(currency="KGS")
    opening = treasury_dev_book_opening(currency="USD")
    assert opening is not None and account_balance("usdkg_float", "USD") > 0
    assert treasury_reconcile_all() == []
    _usdkg_out_of_hot_wallet(usdkg_chain, 5 * 10**6)
    (item,) = treasury_reconcile_all()
    assert (item.currency, item.subject, item.halts_payouts) == ("USD", "USDKG float", True)
    assert item.expected - item.actual == Decimal("5")
    assert payouts_halted()
    treasury_funding_record(amount=Decimal("-5"), reference="usdkg-incident", memo="written off", currency="USD")
    assert treasury_reconcile_all() == []
    assert ReconciliationItem.objects.count() == 1


def test_a_usdkg_chain_that_does_not_answer_leaves_kgst_reconciled(chain, usdkg_chain):
    """USDKG's node down: the KGST float is still compared (its shortfall found), then the node's error is raised."""
    treasury_dev_book_opening(currency="KGS")
    treasury_dev_book_opening(currency="USD")
    treasury_funding_record(amount=Decimal("3"), reference="not-on-chain", memo="booked, never sent")
    usdkg_chain["switch"].down()
    try:
        with pytest.raises((requests.RequestException, Web3RPCError)):  # the node's failure, raised after KGST's turn
            treasury_reconcile_all()
    finally:
        usdkg_chain["switch"].restore()
    (item,) = ReconciliationItem.objects.all()
    assert (item.currency, item.subject, item.expected - item.actual) == ("KGS", "KGST float", Decimal("3"))


def test_the_funding_command_books_the_usdkg_float_in_dollars_and_refuses_other_currencies(usdkg_chain):
    call_command("treasury_funding", "250.50", "--currency", "USD", "--reference", "0xabc", "--by", "tima",
                 "--reason", "opening")
    assert account_balance("usdkg_float", "USD") == 25050
    assert account_balance("kgst_float", "KGS") == 0
    with pytest.raises(CommandError, match="invalid choice"):
        call_command("treasury_funding", "1.00", "--currency", "EUR", "--reference", "x", "--by", "t", "--reason", "r")
    assert account_balance("usdkg_float", "USD") == 25050
