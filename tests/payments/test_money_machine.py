"""The books always add up: a hypothesis state machine drives quotes (both directions, both currencies), card and
balance funding, screening, settlement, refunds, cancellations, expiry and crash-retries through the real services
(PostgreSQL, localstripe), and after every step checks that every journal entry balances per currency, that no
account that must not go negative does, and that each transfer's journal matches its state.

Examples: LEDGER_MACHINE_EXAMPLES (default 2000, fixed seed: `derandomize`) of up to LEDGER_MACHINE_STEPS steps
(default 10); `make test-money-deep` runs 50,000 of up to 30.
Each example runs in its own savepoint, rolled back at its end, so every example starts from the same books."""

import os
import uuid
from collections import Counter, defaultdict
from decimal import Decimal

import pytest
from django.db import connection, transaction
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, multiple, precondition, rule

from payments import pipeline, pipeline_cancel, pipeline_refunds
from payments.errors import PaymentsError
from payments.models import JournalEntry, Partner, Posting, Transfer, to_minor
from payments.providers import stripe_rail
from payments.services import balances
from payments.services.quotes import quote_create
from payments.services.transfers import transfer_create, transfer_funding_prepare
from tests.conftest import new_recipient, pay_on_stripe

pytestmark = pytest.mark.django_db
S = Transfer.Status
EXAMPLES = int(os.environ.get("LEDGER_MACHINE_EXAMPLES", "2000"))
SENDER = {"name": "Aibek Usenov", "phone": "+79161234567", "email": "aibek@example.com"}
RECIPIENT = {"name": "Gulnara Usenova", "phone": "+996555123456"}

# Which journal entries a transfer has in each state (docs/ledger.md lists their lines).
KINDS_BY_STATUS = {
    S.AWAITING_FUNDING: set(), S.EXPIRED: set(), S.CANCELLED: set(),
    S.FUNDED: {"funding"}, S.HELD: {"funding"}, S.REJECTED: {"funding"}, S.SETTLING: {"funding"},
    S.SETTLEMENT_FAILED: {"funding"}, S.REFUNDING: {"funding"},
    S.COMPLETED: {"funding", "payout"}, S.REFUNDED: {"funding", "refund"},
}
# Accounts whose balance may only sit on one side: + debit-only (assets we hold), − credit-only (what we owe or earned).
ONE_SIDED = {"card_clearing": +1, "recipient_payable": -1, "fee_revenue": -1, "partner_balance": -1}

# Amounts drawn around each corridor's limits (settings.CORRIDOR_DEFAULTS) and in between.
SEND_AMOUNTS = {"RUB": ["500.00", "500.01", "1234.56", "15000.00", "499999.99", "500000.00"],
                "USD": ["10.00", "10.01", "99.99", "250.00", "4999.99", "5000.00"]}
RECEIVE_AMOUNTS = {"RUB": ["500.00", "12345.67", "100000.00"], "USD": ["1000.00", "21000.00", "300000.00"]}


REACHED = Counter()  # (status, funding method) → transfers that ended an example there: the machine's coverage


class Crash(Exception):
    """Stands for the process dying right after a step did its work: the step's transaction is rolled back, what it
    asked of Stripe is not."""


class MoneyMachine(RuleBasedStateMachine):
    quotes = Bundle("quotes")
    transfers = Bundle("transfers")

    @initialize(rub=st.sampled_from([0, 2_000_000, 60_000_000]), usd=st.sampled_from([0, 100_000, 600_000]))
    def open_books(self, rub, usd):
        self.savepoint = transaction.savepoint()
        self.partner = Partner.objects.create(name=f"p-{uuid.uuid4().hex[:12]}")
        self.topped_up = defaultdict(int)  # currency → minor units the partner put in
        self.top_ups = self.quotes_open = 0
        for currency, units in (("RUB", rub), ("USD", usd)):
            if units:
                self._top_up(currency, units)

    def _top_up(self, currency, units):
        balances.balance_topup(partner=self.partner, currency=currency, amount=Decimal(units) / 100,
                               reference=uuid.uuid4().hex)
        self.topped_up[currency] += units

    def teardown(self):
        if getattr(self, "savepoint", None):
            for status, method in Transfer.objects.filter(partner=self.partner).values_list("status", "funding_method"):
                REACHED[(status, method)] += 1
            transaction.savepoint_rollback(self.savepoint)

    # Quotes ----------------------------------------------------------------------------------------------------

    @precondition(lambda self: self.quotes_open < 3)
    @rule(target=quotes, currency=st.sampled_from(["RUB", "USD"]), data=st.data())
    def quote_send_fixed(self, currency, data):
        amount = Decimal(data.draw(st.sampled_from(SEND_AMOUNTS[currency])))
        self.quotes_open += 1
        return quote_create(source_currency=currency, source_amount=amount, partner=self.partner)

    @precondition(lambda self: self.quotes_open < 3)
    @rule(target=quotes, currency=st.sampled_from(["RUB", "USD"]), data=st.data())
    def quote_receive_fixed(self, currency, data):
        amount = Decimal(data.draw(st.sampled_from(RECEIVE_AMOUNTS[currency])))
        try:
            quote = quote_create(source_currency=currency, target_amount=amount, partner=self.partner)
            self.quotes_open += 1
        except PaymentsError:
            return multiple()  # outside the corridor's limits in som: refused, nothing stored
        assert quote.target_amount == amount  # the recipient gets exactly what was asked
        return quote

    @precondition(lambda self: self.top_ups < 2)  # rules are drawn evenly: without a cap top-ups crowd out the rest
    @rule(currency=st.sampled_from(["RUB", "USD"]), units=st.sampled_from([100_000, 2_000_000, 60_000_000]))
    def top_up(self, currency, units):
        self.top_ups += 1
        self._top_up(currency, units)

    # Transfers ---------------------------------------------------------------------------------------------------

    def _create(self, quote, funding):
        self.quotes_open = max(self.quotes_open - 1, 0)
        key = uuid.uuid4().hex
        try:
            transfer, _ = transfer_create(partner=self.partner, idempotency_key=key, fingerprint=key, quote_id=quote.id,
                                          sender=SENDER, recipient={**RECIPIENT, "wallet_address": new_recipient()},
                                          funding=funding)
        except PaymentsError:
            return multiple()  # a used quote, a balance that does not cover it: refused, nothing created
        return transfer.pk

    @rule(target=transfers, quote=quotes)
    def create_card(self, quote):
        transfer_id = self._create(quote, None)
        if not isinstance(transfer_id, uuid.UUID):
            return transfer_id
        transfer_funding_prepare(transfer=Transfer.objects.get(pk=transfer_id))
        return transfer_id

    @rule(target=transfers, quote=quotes)
    def create_balance(self, quote):
        return self._create(quote, {"method": "balance"})

    def _get(self, transfer_id):
        return Transfer.objects.select_related("quote").get(pk=transfer_id)

    @rule(transfer_id=transfers, crash=st.booleans())
    def advance(self, transfer_id, crash):
        """One step along the transfer's happy path, as the webhook, the advance task, onchain's listener or the
        refund task would take it: paid by card, screened and queued for payout, final on chain, refund applied."""
        transfer = self._get(transfer_id)
        if transfer.status == S.AWAITING_FUNDING and transfer.payment_intent_id:
            pay_on_stripe(transfer.payment_intent_id)
            self._step(lambda: pipeline.transfer_mark_funded(
                payment_intent=stripe_rail.payment_intent_retrieve(transfer.payment_intent_id)), crash)
        elif transfer.status == S.FUNDED:
            Transfer.objects.filter(pk=transfer.pk).update(release_after=None)  # the card payout delay has passed
            self._step(lambda: pipeline.transfer_advance(transfer_id=transfer_id), crash)
        elif transfer.status == S.SETTLING:
            self._step(lambda: pipeline.TransferPayoutListener().payouts_final(
                references=[str(transfer_id)], tx_hash="0x" + "ab" * 32), crash)
        elif transfer.status in (S.REJECTED, S.REFUNDING):
            self._step(lambda: pipeline_refunds.transfer_refund(transfer_id=transfer_id), crash)

    @rule(transfer_id=transfers)
    def payout_failed(self, transfer_id):
        if self._get(transfer_id).status == S.SETTLING:
            pipeline.TransferPayoutListener().payouts_failed(references=[str(transfer_id)], reason="reverted")

    @rule(transfer_id=transfers, crash=st.booleans())
    def reject_and_refund(self, transfer_id, crash):
        transfer = self._get(transfer_id)
        if transfer.status in (S.FUNDED, S.HELD):
            pipeline.transfer_reject(transfer_id=transfer_id, reason="operator: sanctions review")
        if transfer.status in (S.FUNDED, S.HELD, S.REJECTED, S.REFUNDING):
            self._step(lambda: pipeline_refunds.transfer_refund(transfer_id=transfer_id), crash)

    @rule(transfer_id=transfers, crash=st.booleans())
    def cancel(self, transfer_id, crash):
        try:
            self._step(lambda: pipeline_cancel.transfer_cancel(transfer_id=transfer_id, reason="sender asked"), crash)
        except PaymentsError:
            assert self._get(transfer_id).status in (S.SETTLING, S.COMPLETED, S.SETTLEMENT_FAILED, S.HELD)
            return
        if self._get(transfer_id).status == S.REFUNDING:
            pipeline_refunds.transfer_refund(transfer_id=transfer_id)  # what the refund task does after commit

    @rule(transfer_id=transfers)
    def expire(self, transfer_id):
        pipeline.transfer_expire(transfer_id=transfer_id)

    @rule(transfer_id=transfers)
    def retry_everything(self, transfer_id):
        """Every step run again, in any state, changes nothing it already did (the sweeper's and redelivery's case)."""
        transfer = self._get(transfer_id)
        before = (transfer.status, JournalEntry.objects.count())
        if transfer.payment_intent_id:
            pipeline.transfer_mark_funded(payment_intent=stripe_rail.payment_intent_retrieve(transfer.payment_intent_id))
        pipeline_refunds.transfer_refund(transfer_id=transfer_id)
        if transfer.status == S.COMPLETED:
            pipeline.TransferPayoutListener().payouts_final(references=[str(transfer_id)], tx_hash="0x" + "cd" * 32)
        if transfer.status in (S.COMPLETED, S.REFUNDED, S.CANCELLED, S.EXPIRED):
            assert (self._get(transfer_id).status, JournalEntry.objects.count()) == before

    def _step(self, step, crash):
        """Run `step`; with `crash`, first run it in a transaction that dies after it (rolled back), then again."""
        if crash:
            try:
                with transaction.atomic():
                    step()
                    raise Crash
            except Crash:
                pass
        return step()

    # What must hold after every step -----------------------------------------------------------------------------

    @invariant()
    def every_entry_balances_per_currency(self):
        with connection.cursor() as cursor:
            cursor.execute("""
                SELECT p.entry_id, a.currency, SUM(p.amount_minor) FROM payments_posting p
                JOIN payments_ledgeraccount a ON a.id = p.account_id
                GROUP BY p.entry_id, a.currency HAVING SUM(p.amount_minor) <> 0""")
            assert cursor.fetchall() == []

    @invariant()
    def one_sided_accounts_stay_on_their_side(self):
        with connection.cursor() as cursor:
            cursor.execute("""
                SELECT a.code, a.currency, a.partner_id, SUM(p.amount_minor) FROM payments_posting p
                JOIN payments_ledgeraccount a ON a.id = p.account_id
                WHERE a.code = ANY(%s) GROUP BY a.code, a.currency, a.partner_id""", [list(ONE_SIDED)])
            for code, currency, partner_id, total in cursor.fetchall():
                assert total * ONE_SIDED[code] >= 0, f"{code}:{currency}:{partner_id} went to {total}"

    @invariant()
    def each_transfers_journal_matches_its_state(self):
        if not hasattr(self, "partner"):
            return
        kinds = defaultdict(set)
        for transfer_id, kind in JournalEntry.objects.filter(transfer__partner=self.partner).values_list(
                "transfer_id", "kind"):
            kinds[transfer_id].add(kind)
        spent = defaultdict(int)
        for transfer in Transfer.objects.filter(partner=self.partner).select_related("quote"):
            assert kinds[transfer.pk] == KINDS_BY_STATUS[transfer.status], (transfer.status, kinds[transfer.pk])
            if transfer.funding_method == Transfer.FundingMethod.BALANCE and transfer.status != S.REFUNDED:
                spent[transfer.quote.source_currency] += to_minor(transfer.quote.source_amount,
                                                                  transfer.quote.source_currency)
        owed = defaultdict(int)
        for currency, amount in Posting.objects.filter(account__partner=self.partner, account__code="partner_balance",
                                                       entry__posted=True).values_list("account__currency",
                                                                                        "amount_minor"):
            owed[currency] -= amount  # a liability: what we owe is its credit balance
        for currency in ("RUB", "USD"):
            assert owed[currency] == self.topped_up[currency] - spent[currency], currency


STEPS = int(os.environ.get("LEDGER_MACHINE_STEPS", "10"))
MoneyMachine.TestCase.settings = settings(max_examples=EXAMPLES, stateful_step_count=STEPS, derandomize=True,
                                          deadline=None, database=None, suppress_health_check=list(HealthCheck))


@pytest.mark.timeout(5400)  # 5,000 examples on a 2-core machine: minutes, not the suite's per-test default
def test_the_books_add_up_whatever_happens(pricing, stripe_server, chain, settings):
    """Quote, fund (card or balance), screen, settle, refund, cancel, expire and crash-retry in any order: every entry
    balances, no one-sided account crosses zero, and each transfer's journal matches its state."""
    settings.FIRST_TRANSFERS_PAYOUT_DELAY_SECONDS = 0
    from hypothesis.stateful import run_state_machine_as_test

    REACHED.clear()
    run_state_machine_as_test(MoneyMachine, settings=MoneyMachine.TestCase.settings)
    if EXAMPLES >= 1000:  # a full run must have taken transfers down every road, or the checks above proved little
        ends = {status for status, _method in REACHED}
        assert {S.COMPLETED, S.REFUNDED, S.CANCELLED, S.EXPIRED, S.SETTLEMENT_FAILED, S.SETTLING} <= ends, REACHED
        assert {("refunded", "card"), ("refunded", "balance"), ("completed", "balance")} <= set(REACHED), REACHED
