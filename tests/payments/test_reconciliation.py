"""Reconciliation against the real localstripe and anvil: card clearing vs Stripe's lists, partner balances vs their
statements, the KGST float vs the chain (a shortfall halts payouts until an operator resolves it with a reason)."""

import os
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone
from eth_account import Account
from web3.exceptions import TransactionNotFound

from onchain import client
from onchain.api import payout_request, payouts_halted
from onchain.models import Batch, OperatorAlert, Payout
from onchain.services.batches import batches_build
from onchain.services.sending import batch_send
from payments import pipeline, pipeline_disputes, pipeline_refunds
from payments.guarded_recon import RESOLVE
from payments.models import JournalEntry, PartnerStatement, ReconciliationItem, Transfer
from payments.providers import stripe_rail
from payments.services import ledger
from payments.services.quotes import quote_create
from payments.services.reconciliation import (
    card_reconcile,
    partner_statement_record,
    partner_statements_reconcile,
    treasury_dev_book_opening,
    treasury_funding_record,
    treasury_reconcile,
)
from payments.services.transfers import transfer_create, transfer_funding_prepare
from staff.models import AuditEntry
from staff.services import ReasonRequired, action_perform, roles_sync
from tests.conftest import new_recipient, pay_on_stripe, stripe_requests, token_balance, wait_for
from tests.helpers import staff_login

pytestmark = pytest.mark.django_db
Kind = ReconciliationItem.Kind
DISPUTED_CARD = "4000000000000259"


@pytest.fixture
def recon(settings):
    """No lag: everything Stripe holds from the last hour is in the window."""
    settings.RECONCILIATION_LAG_SECONDS = 0
    settings.RECONCILIATION_WINDOW_HOURS = 1


def run_card():
    """The job as beat runs it, a moment later (the window's end is exclusive, to the second)."""
    return card_reconcile(now=timezone.now() + timedelta(seconds=2))


def paid_transfer(amount="120.00", card="4242424242424242", fund=True):
    """A USD transfer paid on localstripe (as a partner's Stripe.js would), funded through the pipeline unless not."""
    quote = quote_create(source_currency="USD", source_amount=Decimal(amount))
    transfer, _ = transfer_create(
        partner=None, idempotency_key=str(quote.id), fingerprint="f", quote_id=quote.id,
        sender={"name": "John Smith", "phone": "+12125551234", "email": f"{quote.id}@example.com"},
        recipient={"name": "Aida Bekova", "phone": "+996555123456", "wallet_address": new_recipient()})
    transfer = transfer_funding_prepare(transfer=transfer)
    assert pay_on_stripe(transfer.payment_intent_id, card=card)["status"] == "succeeded"
    if fund:
        pipeline.transfer_mark_funded(payment_intent=stripe_rail.payment_intent_retrieve(transfer.payment_intent_id))
    transfer.refresh_from_db()
    return transfer


def refunded_transfer():
    """Funded, rejected by an operator, refunded on Stripe and in the ledger."""
    transfer = paid_transfer(amount="75.00")
    pipeline.transfer_reject(transfer_id=transfer.pk, reason="test")
    pipeline_refunds.transfer_refund(transfer_id=transfer.pk)
    transfer.refresh_from_db()
    assert transfer.status == Transfer.Status.REFUNDED
    return transfer


def disputed_transfer():
    """Paid with Stripe's dispute test card; the dispute Stripe files is booked as the webhook books it."""
    transfer = paid_transfer(amount="60.00", card=DISPUTED_CARD)
    start = int(timezone.now().timestamp()) - 3600
    dispute = wait_for(lambda: next(iter(d for d in stripe_rail.disputes_listed(created_gte=start, created_lt=start + 7200)
                                         if d.payment_intent == transfer.payment_intent_id), None),
                       timeout=15, what="Stripe's dispute")
    pipeline_disputes.card_dispute_record(kind="dispute", dispute=dispute, charge=stripe_rail.charge_retrieve(dispute.charge))
    assert JournalEntry.objects.filter(transfer=transfer, kind="dispute").exists()
    return transfer


def staff_user(name, role="operator"):
    roles_sync()
    user = get_user_model().objects.create_user(name, password="x", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    return get_user_model().objects.get(pk=user.pk)


# Card clearing against Stripe --------------------------------------------------------------------

def test_a_matched_set_produces_no_items_and_lists_instead_of_retrieving(pricing, stripe_server, recon, monkeypatch):
    """Funded, refunded and disputed transfers, each booked as Stripe holds them: no item. Stripe is read through its
    list endpoints with the `created` window, page by page (a page of 2 here), never one retrieve per transfer."""
    monkeypatch.setattr(stripe_rail, "LIST_PAGE_SIZE", 2)
    transfers = [paid_transfer() for _ in range(3)] + [refunded_transfer(), disputed_transfer()]
    before = len(stripe_requests())
    report = run_card()
    assert report.items == []
    assert (report.payment_intents, report.refunds, report.disputes) == (5, 1, 1)
    assert not ReconciliationItem.objects.exists()
    requests = stripe_requests()[before:]
    assert all(r["method"] == "GET" for r in requests)
    assert {r["path"] for r in requests} == {"/v1/payment_intents", "/v1/refunds", "/v1/disputes"}
    pages = [r for r in requests if r["path"] == "/v1/payment_intents"]
    assert len(pages) == 3 and sum("starting_after" in r["params"] for r in pages) == 2
    assert all({"created[gte]", "created[lt]"} <= set(r["params"]) for r in requests)
    assert len(transfers) == 5


def test_a_payment_succeeded_in_stripe_without_a_ledger_entry_is_an_item_once(pricing, stripe_server, recon):
    """Stripe took the money but our books never recorded it (the webhook and the poller both missed it): one open
    item with Stripe's amount against our zero, however often the job runs."""
    transfer = paid_transfer(amount="120.00", fund=False)
    assert not JournalEntry.objects.filter(transfer=transfer).exists()
    run_card()
    run_card()
    (item,) = ReconciliationItem.objects.all()
    assert (item.kind, item.subject, item.currency) == (Kind.CARD_PAYMENT, transfer.payment_intent_id, "USD")
    assert (item.expected, item.actual) == (Decimal("0"), Decimal("120.00"))
    assert item.status == ReconciliationItem.Status.OPEN and not item.halts_payouts
    assert str(transfer.pk) in item.detail


def test_a_ledger_refund_that_stripe_never_made_is_an_item(pricing, stripe_server, recon):
    """The ledger books a refund whose Stripe refund does not exist: an item with our amount against Stripe's zero
    (found by the one retrieve the exception warrants)."""
    transfer = paid_transfer(amount="80.00")
    Transfer.objects.filter(pk=transfer.pk).update(refund_id="re_neverissued")
    transfer.refresh_from_db()
    ledger.ledger_post_refund(transfer=transfer, refund_id="re_neverissued")
    run_card()
    (item,) = ReconciliationItem.objects.all()
    assert (item.kind, item.subject, item.currency) == (Kind.CARD_REFUND, "re_neverissued", "USD")
    assert (item.expected, item.actual) == (Decimal("80.00"), Decimal("0"))


def test_a_funding_entry_whose_payment_stripe_does_not_report_as_succeeded_is_an_item(pricing, stripe_server, recon):
    """The other way round: the ledger books card money for a PaymentIntent Stripe holds as unpaid."""
    quote = quote_create(source_currency="USD", source_amount=Decimal("50.00"))
    transfer, _ = transfer_create(
        partner=None, idempotency_key=str(quote.id), fingerprint="f", quote_id=quote.id,
        sender={"name": "John Smith", "phone": "+12125551234", "email": "unpaid@example.com"},
        recipient={"name": "Aida Bekova", "phone": "+996555123456", "wallet_address": new_recipient()})
    transfer = transfer_funding_prepare(transfer=transfer)
    ledger.ledger_post_funding(transfer=transfer)
    run_card()
    (item,) = ReconciliationItem.objects.all()
    assert (item.kind, item.subject) == (Kind.CARD_PAYMENT, transfer.payment_intent_id)
    assert (item.expected, item.actual) == (Decimal("50.00"), Decimal("0"))
    assert "requires_payment_method" in item.detail


def test_resolving_needs_a_reason_is_audited_and_an_accepted_difference_stays_resolved(pricing, stripe_server, recon):
    """A blank reason is refused and changes nothing; with a reason the item is resolved by that operator, in the
    audit trail; the job seeing the very same difference again does not reopen it."""
    paid_transfer(fund=False)
    run_card()
    item = ReconciliationItem.objects.get()
    operator = staff_user("olga")
    with pytest.raises(ReasonRequired):
        action_perform(action=RESOLVE, actor=operator, ids=[item.pk], reason="  ")
    item.refresh_from_db()
    assert item.status == ReconciliationItem.Status.OPEN
    assert not AuditEntry.objects.exists()
    (outcome,) = action_perform(action=RESOLVE, actor=operator, ids=[item.pk], reason="booked by hand, ticket 42")
    assert outcome.outcome == "done"
    item.refresh_from_db()
    assert (item.status, item.resolved_by, item.resolution) == ("resolved", "olga", "booked by hand, ticket 42")
    assert AuditEntry.objects.get().action == "payments.resolve_reconciliation_item"
    run_card()
    assert ReconciliationItem.objects.count() == 1
    (again,) = action_perform(action=RESOLVE, actor=operator, ids=[item.pk], reason="twice")
    assert again.outcome == "refused"


# Partner balances against their statements -------------------------------------------------------

def _top_up(partner, rub_minor, reference):
    ledger.ledger_post(kind="partner_topup", reference=reference, lines=[
        ("partner_settlement_bank", "RUB", rub_minor), ("partner_balance", "RUB", -rub_minor, partner)])


def test_a_partner_statement_is_compared_once_its_day_is_over(partner):
    """Today's statement waits for the day to end; then the one that matches raises nothing and the one that differs
    is an item with our balance against the partner's."""
    _top_up(partner, 150_000, "topup:1")
    _top_up(partner, 50_000, "topup:2")
    today = timezone.localdate()
    matching = partner_statement_record(partner=partner, currency="RUB", as_of=today, closing_balance=Decimal("2000.00"))
    differing = partner_statement_record(partner=partner, currency="RUB", as_of=today, closing_balance=Decimal("1990.50"),
                                         reference="acme-2026-11")
    assert partner_statements_reconcile() == []  # the day is not over
    (item,) = partner_statements_reconcile(now=timezone.now() + timedelta(days=1))
    assert (item.kind, item.currency, item.expected, item.actual) == (Kind.PARTNER_BALANCE, "RUB", Decimal("2000.00"),
                                                                      Decimal("1990.50"))
    assert f"#{differing.pk}" in item.subject and "acme-2026-11" in item.detail
    matching.refresh_from_db()
    assert matching.compared_at and matching.ledger_balance == Decimal("2000.00")
    assert partner_statements_reconcile(now=timezone.now() + timedelta(days=2)) == []  # compared once


def test_a_past_statement_is_compared_when_recorded(partner):
    """Yesterday's closing balance counts only entries made before today: today's top-up is not in it."""
    _top_up(partner, 10_000, "topup:today")
    partner_statement_record(partner=partner, currency="RUB", as_of=timezone.localdate() - timedelta(days=1),
                             closing_balance=Decimal("100.00"))
    item = ReconciliationItem.objects.get()
    assert (item.expected, item.actual) == (Decimal("0"), Decimal("100.00"))


# The KGST treasury against the chain -------------------------------------------------------------

def _raw_transfer_from_hot_wallet(chain, amount_base_units):
    """Someone with the hot wallet's key moves float out, outside the gateway."""
    w3, token, wallet = chain["w3"], chain["token"], chain["wallet"]
    tx = client.erc20(token.address).functions.transfer(new_recipient(), amount_base_units).build_transaction({
        "from": wallet.address, "nonce": w3.eth.get_transaction_count(wallet.address, "pending"), "gas": 100_000,
        "chainId": w3.eth.chain_id})
    signed = Account.sign_transaction(tx, os.environ["HOT_WALLET_PRIVATE_KEY"])
    receipt = w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(signed.raw_transaction), timeout=30)
    assert receipt["status"] == 1


def test_without_an_opening_balance_the_treasury_only_alerts(chain):
    """Nothing booked for the float yet: no item and no halt (there is nothing to compare), an alert says why."""
    assert treasury_reconcile() is None
    assert not ReconciliationItem.objects.exists() and payouts_halted() == []
    assert OperatorAlert.objects.filter(kind="reconciliation", message__contains="no opening balance").count() == 1


def _mined(w3, tx_hash):
    try:
        return w3.eth.get_transaction_receipt(tx_hash)
    except TransactionNotFound:
        return None


def test_a_booked_float_matches_the_chain_with_payouts_in_flight(chain):
    """Opening balance booked: no difference, also while a batch has paid on chain but is not final yet (its payout
    entries come at finality)."""
    assert treasury_dev_book_opening() is not None
    assert treasury_reconcile() is None
    payout_request(reference="recon-in-flight", to_address=new_recipient(), amount=Decimal("1234.56"))
    (batch,) = batches_build(token_id=chain["token"].pk, force=True)
    assert treasury_reconcile() is None  # signed, not yet sent
    batch_send(batch_id=batch.pk)
    tx_hash = batch.attempts.get().tx_hash
    wait_for(lambda: _mined(chain["w3"], tx_hash), what="the batch mined")
    assert Batch.objects.get(pk=batch.pk).status == Batch.Status.BROADCAST  # the tracker has not seen it yet
    assert treasury_reconcile() is None
    assert not ReconciliationItem.objects.exists()


def test_a_treasury_shortfall_halts_payouts_until_resolved_with_a_reason(chain):
    """Float moved out of the hot wallet outside the gateway: one item (however often the job runs) that halts
    payouts and alerts; a new payout is not batched. A blank reason is refused; once the loss is booked and the
    item resolved with a reason, payouts resume and the waiting payout is batched."""
    treasury_dev_book_opening()
    held = token_balance(chain["token"], chain["wallet"].address)
    _raw_transfer_from_hot_wallet(chain, 5 * 10**18)
    treasury_reconcile()
    item = treasury_reconcile()
    assert ReconciliationItem.objects.count() == 1
    assert (item.kind, item.currency, item.halts_payouts) == (Kind.TREASURY, "KGS", True)
    assert item.expected - item.actual == Decimal("5")
    assert token_balance(chain["token"], chain["wallet"].address) == held - 5 * 10**18
    assert payouts_halted() and OperatorAlert.objects.filter(kind="reconciliation",
                                                              message__contains="payouts halted").exists()

    payout = payout_request(reference="recon-halted", to_address=new_recipient(), amount=Decimal("10.00"))
    assert batches_build(token_id=chain["token"].pk, force=True) == []
    assert Payout.objects.get(pk=payout.pk).status == Payout.Status.QUEUED

    treasury = staff_user("tima", role="treasury")
    with pytest.raises(ReasonRequired):
        action_perform(action=RESOLVE, actor=treasury, ids=[item.pk], reason="")
    assert payouts_halted()
    treasury_funding_record(amount=Decimal("-5"), reference="incident-7", memo="key leak, written off")
    assert treasury_reconcile() is None  # the books agree again...
    assert payouts_halted() and ReconciliationItem.objects.get(pk=item.pk).status == "open"  # ...an operator resolves
    (outcome,) = action_perform(action=RESOLVE, actor=treasury, ids=[item.pk],
                                reason="5 KGST taken with the leaked key; booked as withdrawal incident-7")
    assert outcome.detail == "resolved; payouts resumed"
    assert payouts_halted() == []
    assert treasury_reconcile() is None
    (batch,) = batches_build(token_id=chain["token"].pk, force=True)
    assert Payout.objects.get(pk=payout.pk).batch_id == batch.pk


def test_a_treasury_surplus_is_an_item_that_does_not_halt(chain):
    """Tokens arrive that we did not book (anyone can send tokens to our address): an item and an alert, payouts go
    on, so nobody can stop them by sending us tokens."""
    treasury_dev_book_opening()
    token = chain["token"]
    minted = client.erc20(token.address).functions.mint(token.batch_contract, 7 * 10**16).transact(
        {"from": chain["w3"].eth.accounts[0]})
    receipt = chain["w3"].eth.wait_for_transaction_receipt(minted, timeout=30)
    assert receipt["status"] == 1
    item = treasury_reconcile()
    assert (item.kind, item.halts_payouts, item.actual - item.expected) == (Kind.TREASURY, False, Decimal("0.07"))
    assert payouts_halted() == []


# Admin -------------------------------------------------------------------------------------------

def test_admin_lists_items_and_resolves_only_with_a_reason(client, partner):
    """An operator sees the item with both figures and the difference; the resolve action's blank reason re-renders
    the confirmation page with the error beside the field and resolves nothing; with a reason it is resolved."""
    partner_statement_record(partner=partner, currency="RUB", as_of=timezone.localdate() - timedelta(days=1),
                             closing_balance=Decimal("250.00"))
    item = ReconciliationItem.objects.get()
    operator = staff_login(client, staff_user("olga"))
    page = operator.get("/admin/payments/reconciliationitem/").content.decode()
    assert item.subject in page and "-250" not in page and "250" in page
    blank = operator.post("/admin/payments/reconciliationitem/", {"action": "resolve", "_selected_action": [item.pk],
                                                                  "post": "yes", "reason": ""})
    assert blank.status_code == 200 and "Give a reason" in blank.content.decode()
    assert ReconciliationItem.objects.get(pk=item.pk).status == "open"
    done = operator.post("/admin/payments/reconciliationitem/", {"action": "resolve", "_selected_action": [item.pk],
                                                                 "post": "yes", "reason": "statement misread"})
    assert done.status_code == 302
    assert ReconciliationItem.objects.get(pk=item.pk).resolution == "statement misread"


def test_an_operator_records_a_partner_statement_in_admin(client, partner):
    """The add form records the statement under the operator's name and compares a past day at once."""
    _top_up(partner, 30_000, "topup:admin")
    operator = staff_login(client, staff_user("olga"))
    response = operator.post("/admin/payments/partnerstatement/add/", {
        "partner": partner.pk, "currency": "RUB", "as_of": str(timezone.localdate()),
        "closing_balance": "300.00", "reference": "acme-nov"})
    assert response.status_code == 302
    statement = PartnerStatement.objects.get()
    assert (statement.recorded_by, statement.closing_balance, statement.compared_at) == ("olga", Decimal("300.00"), None)
    assert partner_statements_reconcile(now=timezone.now() + timedelta(days=1)) == []


def test_the_treasury_funding_command_books_once_per_reference():
    """`manage.py treasury_funding` posts kgst_float against treasury_capital under its reference (a withdrawal with a
    negative amount); the same reference again changes nothing; bad amounts are refused with nothing posted."""
    from django.core.management import CommandError, call_command

    call_command("treasury_funding", "1000.50", reference="0xfund", by="tima", reason="opening balance")
    call_command("treasury_funding", "1000.50", reference="0xfund", by="tima", reason="opening balance")
    call_command("treasury_funding", "-0.50", reference="sweep-1", by="tima", reason="sweep")
    assert ledger.account_balance("kgst_float", "KGS") == 100_000
    assert ledger.account_balance("treasury_capital", "KGS") == -100_000
    assert sorted(JournalEntry.objects.values_list("kind", "reference")) == [
        ("treasury_funding", "treasury:0xfund"), ("treasury_withdrawal", "treasury:sweep-1")]
    for bad in ("0", "1.001", "lots"):
        with pytest.raises(CommandError):
            call_command("treasury_funding", bad, reference=f"bad-{bad}", by="tima", reason="x")
    assert JournalEntry.objects.count() == 2
