"""Double-entry ledger: balanced entries only, once per (transfer, step), funding/payout/refund amounts."""

from collections import defaultdict
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext

from payments.errors import LedgerImbalance, UnknownLedgerAccount
from payments.models import JournalEntry, LedgerAccount, Posting
from payments.services.ledger import (
    account_balance,
    ledger_accounts,
    ledger_post,
    ledger_post_funding,
    ledger_post_payout,
    ledger_post_refund,
)
from payments.services.quotes import quote_create
from payments.services.setup import partner_create
from payments.services.transfers import request_fingerprint, transfer_create
from tests.conftest import new_recipient

pytestmark = pytest.mark.django_db


def make_transfer(amount="15000.00", currency="RUB", key="order-1"):
    partner, _ = partner_create(name="acme")
    quote = quote_create(partner=partner, source_currency=currency, source_amount=Decimal(amount))
    transfer, created = transfer_create(
        partner=partner, idempotency_key=key, fingerprint=request_fingerprint({"key": key}), quote_id=quote.id,
        sender={"name": "Aibek Usenov", "phone": "+79161234567", "email": "aibek@example.com"},
        recipient={"name": "Gulnara Usenova", "phone": "+996555123456", "wallet_address": new_recipient()})
    assert created
    return transfer


@pytest.fixture
def transfer(pricing):
    return make_transfer()


def nothing_written():
    return not (JournalEntry.objects.exists() or Posting.objects.exists() or LedgerAccount.objects.exists())


def balances():
    """{(account, currency): balance} over every posting."""
    rows = Posting.objects.values("account__code", "account__currency").annotate(total=Sum("amount_minor"))
    return {(r["account__code"], r["account__currency"]): r["total"] for r in rows}


def entry_totals_by_currency(entry):
    totals = defaultdict(int)
    for posting in entry.postings.select_related("account"):
        totals[posting.account.currency] += posting.amount_minor
    return dict(totals)


@pytest.mark.parametrize("lines", [
    [("card_clearing", "RUB", 100), ("fee_revenue", "RUB", -99)],
    [("card_clearing", "RUB", 100)],
    [("card_clearing", "RUB", 100), ("fee_revenue", "KGS", -100)],  # balanced in sum, not per currency
    [("card_clearing", "RUB", 100), ("fee_revenue", "RUB", -100), ("fx_position", "KGS", 5)],
], ids=["off-by-one", "single-line", "cross-currency", "one-currency-unbalanced"])
def test_unbalanced_entry_is_refused(transfer, lines):
    """An entry whose debits and credits differ in any currency raises LedgerImbalance and writes nothing."""
    with pytest.raises(LedgerImbalance):
        ledger_post(transfer=transfer, kind="test", lines=lines)
    assert nothing_written()


@pytest.mark.parametrize("lines", [
    [("card_clearing", "RUB", 0), ("fee_revenue", "RUB", 0)],
    [("card_clearing", "RUB", 100), ("fee_revenue", "RUB", -100), ("fx_position", "RUB", 0)],
    [("card_clearing", "RUB", 1.5), ("fee_revenue", "RUB", -1.5)],
    [("card_clearing", "RUB", 100.0), ("fee_revenue", "RUB", -100.0)],
    [("card_clearing", "RUB", Decimal("100")), ("fee_revenue", "RUB", Decimal("-100"))],
], ids=["all-zero", "one-zero", "float-fraction", "float-whole", "decimal"])
def test_zero_or_non_integer_amount_is_refused(transfer, lines):
    """Posting amounts must be non-zero integers of minor units: zero, float and Decimal raise and write nothing."""
    with pytest.raises(LedgerImbalance):
        ledger_post(transfer=transfer, kind="test", lines=lines)
    assert nothing_written()


def test_same_step_posts_once(transfer):
    """Posting the same (transfer, kind) twice returns the first entry and adds no postings, even with other lines."""
    first = ledger_post(transfer=transfer, kind="test", lines=[("card_clearing", "RUB", 100), ("fee_revenue", "RUB", -100)])
    again = ledger_post(transfer=transfer, kind="test", lines=[("card_clearing", "RUB", 500), ("fee_revenue", "RUB", -500)])
    assert again.pk == first.pk
    assert JournalEntry.objects.filter(transfer=transfer, kind="test").count() == 1
    assert Posting.objects.count() == 2
    assert account_balance("card_clearing", "RUB") == 100


def test_funding_entry_amounts(transfer):
    """Funding debits card clearing with the full amount, credits the fee as revenue and books the som owed."""
    q = transfer.quote
    entry = ledger_post_funding(transfer=transfer)
    assert entry.kind == "funding"
    total, fee, som = int(q.source_amount * 100), int(q.fee * 100), int(q.target_amount * 100)
    assert (total, fee) == (1500000, 20000)
    assert balances() == {
        ("card_clearing", "RUB"): total,
        ("fee_revenue", "RUB"): -fee,
        ("fx_position", "RUB"): -(total - fee),
        ("fx_position", "KGS"): som,
        ("recipient_payable", "KGS"): -som,
    }
    assert entry_totals_by_currency(entry) == {"RUB": 0, "KGS": 0}


def test_funding_then_payout_balance_and_clear_the_payable(transfer):
    """Funding plus payout balance in every currency and leave nothing owed to the recipient."""
    funding = ledger_post_funding(transfer=transfer)
    payout = ledger_post_payout(transfer=transfer, tx_hash="0x" + "ab" * 32)
    for entry in (funding, payout):
        assert all(total == 0 for total in entry_totals_by_currency(entry).values())
    som = int(transfer.quote.target_amount * 100)
    assert account_balance("recipient_payable", "KGS") == 0
    assert account_balance("kgst_float", "KGS") == -som
    assert account_balance("fx_position", "KGS") == som
    per_currency = defaultdict(int)
    for (_code, currency), total in balances().items():
        per_currency[currency] += total
    assert per_currency == {"RUB": 0, "KGS": 0}
    # Retrying either step changes nothing.
    ledger_post_funding(transfer=transfer)
    ledger_post_payout(transfer=transfer, tx_hash="0x" + "cd" * 32)
    assert JournalEntry.objects.count() == 2
    assert account_balance("recipient_payable", "KGS") == 0


def test_refund_reverses_funding_exactly(transfer):
    """A refund entry is the funding entry's mirror: every account is back to zero."""
    funding = ledger_post_funding(transfer=transfer)
    refund = ledger_post_refund(transfer=transfer, refund_id="re_123")
    assert refund.kind == "refund" and refund.pk != funding.pk
    assert set(balances().values()) == {0}
    assert len(balances()) == 5
    funding_lines = sorted((p.account_id, p.amount_minor) for p in funding.postings.all())
    refund_lines = sorted((p.account_id, -p.amount_minor) for p in refund.postings.all())
    assert funding_lines == refund_lines


def test_usd_funding_balances(pricing):
    """The USD corridor's funding entry balances in USD and KGS too."""
    transfer = make_transfer(amount="100.00", currency="USD")
    entry = ledger_post_funding(transfer=transfer)
    assert entry_totals_by_currency(entry) == {"USD": 0, "KGS": 0}
    assert account_balance("card_clearing", "USD") == 10000
    assert account_balance("fee_revenue", "USD") == -int(transfer.quote.fee * 100)


def test_entries_of_different_transfers_are_separate(pricing):
    """The once-per-step rule is per transfer: two transfers get two funding entries."""
    first, second = make_transfer(key="a"), make_transfer(key="b")
    ledger_post_funding(transfer=first)
    ledger_post_funding(transfer=second)
    assert JournalEntry.objects.filter(kind="funding").count() == 2
    assert account_balance("card_clearing", "RUB") == 2 * 1500000


@pytest.mark.parametrize("lines", [
    [("card_clearing", "RUB", 100), ("petty_cash", "RUB", -100)],
    [("card_clearing", "RUB", 100), ("partner_balance", "RUB", -100)],  # a partner's own account, no partner named
], ids=["unknown-code", "partner-account-without-partner"])
def test_account_outside_the_chart_is_refused(transfer, lines):
    """A line to a code the chart of accounts does not list, or to a partner's own account without its partner, raises
    UnknownLedgerAccount and writes nothing (no entry, no posting, no account)."""
    with pytest.raises(UnknownLedgerAccount):
        ledger_post(transfer=transfer, kind="test", lines=lines)
    assert nothing_written()


def test_house_account_with_a_partner_is_refused(transfer):
    """Only per-partner codes (partner_balance) have partners' own accounts: card_clearing for a partner is refused."""
    with pytest.raises(UnknownLedgerAccount):
        ledger_post(transfer=transfer, kind="test",
                    lines=[("card_clearing", "RUB", 100, transfer.partner), ("fee_revenue", "RUB", -100)])
    assert nothing_written()


def test_partner_line_posts_to_the_partners_own_account(pricing):
    """A line naming a partner posts to that partner's own partner_balance account; the entry is posted."""
    partner, _ = partner_create(name="topup-partner")
    entry = ledger_post(kind="topup", reference="topup:1",
                        lines=[("partner_settlement_bank", "RUB", 5000), ("partner_balance", "RUB", -5000, partner)])
    assert entry.posted and JournalEntry.objects.get(pk=entry.pk).posted
    assert account_balance("partner_balance", "RUB", partner) == -5000
    assert account_balance("partner_balance", "RUB") == 0



def test_accounts_are_read_in_one_query_and_the_missing_ones_created_in_one_insert(pricing):
    """An entry's accounts: one read when they exist; when some do not, one insert for all of them and one more read.
    A partner's own account and the house account of the same code are two accounts."""
    partner, _ = partner_create(name="accounts")
    house = LedgerAccount.objects.create(code="fee_revenue", currency="RUB")
    keys = [("fee_revenue", "RUB", None), ("partner_balance", "RUB", partner), ("fx_position", "KGS", None)]
    with CaptureQueriesContext(connection) as created:
        accounts = ledger_accounts(keys)
    assert [q["sql"].split()[0] for q in created.captured_queries] == ["SELECT", "INSERT", "SELECT"]
    assert accounts[("fee_revenue", "RUB", None)] == house
    assert accounts[("partner_balance", "RUB", partner.pk)].partner_id == partner.pk
    assert LedgerAccount.objects.count() == 3
    with CaptureQueriesContext(connection) as again:
        assert ledger_accounts(keys) == accounts
    assert len(again.captured_queries) == 1


def test_a_new_transfers_entry_skips_the_look_up_and_a_second_one_is_refused_by_the_database(transfer):
    """`transfer_is_new` (the transfer was inserted in this transaction, balance funding): no look-up of a first entry
    and no savepoint: the entry, its accounts (none yet here: read, created, read), its postings, the entry posted.
    Posting the same step again that way is not answered with the first entry: the (transfer, kind) key refuses it."""
    lines = [("card_clearing", "RUB", 100), ("fee_revenue", "RUB", -100)]
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        first = ledger_post(transfer=transfer, kind="test", lines=lines, transfer_is_new=True)
    sql = [q["sql"] for q in queries.captured_queries]
    assert [s.split()[0] for s in sql] == ["INSERT", "SELECT", "INSERT", "SELECT", "INSERT", "UPDATE"], sql
    assert sql[1].startswith('SELECT "payments_ledgeraccount"') and first.posted
    with pytest.raises(IntegrityError), transaction.atomic():
        ledger_post(transfer=transfer, kind="test", lines=lines, transfer_is_new=True)
    assert JournalEntry.objects.filter(transfer=transfer, kind="test").count() == 1


def test_docs_list_every_account_of_the_chart_with_its_kind():
    """docs/ledger.md "Accounts" lists exactly the chart's codes, each with its kind and whether it may go negative."""
    import re
    from pathlib import Path

    from payments.services.ledger import ACCOUNTS

    text = (Path(__file__).resolve().parents[2] / "docs" / "ledger.md").read_text()
    section = text.split("## Accounts", 1)[1].split("\n## ", 1)[0]
    rows = {m[0]: (m[1], m[2]) for m in re.findall(r"^\| `([a-z_]+)` \| ([a-z]+)[^|]*\|[^|]*\|[^|]*\| (yes|no)", section,
                                                   re.M)}
    assert rows == {code: (spec.kind, "yes" if spec.may_go_negative else "no") for code, spec in ACCOUNTS.items()}
