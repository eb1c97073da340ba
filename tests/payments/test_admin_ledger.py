"""The ledger in admin: a trial balance that adds up per currency, journal entries nobody can edit, and on a transfer's
page its journal and where its money is now."""

import re
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client

from payments.models import JournalEntry, LedgerAccount, Posting
from payments.services.ledger import ledger_post, ledger_post_funding, ledger_post_payout, ledger_post_refund
from payments.services.ledger_views import ledger_wrong_side_accounts, money_format, transfer_money_now
from payments.services.setup import partner_create
from tests.helpers import staff_login
from tests.payments.test_admin import make_transfer

pytestmark = pytest.mark.django_db

NBSP = "\u00a0"
TRIAL = "/admin/payments/ledgeraccount/trial-balance/"


@pytest.fixture
def operator(client):
    user = get_user_model().objects.create_superuser("ops", "ops@example.com", "a-long-password-123")
    return staff_login(client, user)


def money(amount, currency):
    """`money("15 000.00", "RUB")` as the page writes it: no-break spaces inside the amount and before the currency."""
    return f"{amount} {currency}".replace(" ", NBSP)


def trial_row(page, currency, account):
    """The text of one account's row in one currency's table, tags stripped, every run of spaces one plain space."""
    table = re.search(rf'<table class="trial-balance" data-currency="{currency}">(.*?)</table>', page, re.S).group(1)
    if account == "total":
        row = re.search(r'<tr class="total">(.*?)</tr>', table, re.S).group(1)
    else:
        row = re.search(rf'<tr data-account="{account}"[^>]*>(.*?)</tr>', table, re.S).group(0)
    return " ".join(re.sub(r"<[^>]+>", " ", row).split())


def test_money_format_groups_thousands_and_keeps_the_minor_digits():
    """Minor units read as money: 1 500 000 kopecks are 15 000.00 RUB; one tyiyn is 0.01 KGS."""
    assert money_format(1500000, "RUB") == f"15{NBSP}000.00{NBSP}RUB"
    assert money_format(1, "KGS") == f"0.01{NBSP}KGS"
    assert money_format(-123456789, "USD") == f"-1{NBSP}234{NBSP}567.89{NBSP}USD"


def test_trial_balance_lists_every_account_per_currency_and_totals_zero(operator, pricing):
    """After a funding and a payout, each currency's table lists every account with its posted debits, credits and
    balance, and its totals have equal debits and credits (balance zero). A draft entry counts nowhere."""
    transfer = make_transfer()
    ledger_post_funding(transfer=transfer)
    ledger_post_payout(transfer=transfer, tx_hash="0x" + "ab" * 32)
    som = int(transfer.quote.target_amount * 100)
    draft = JournalEntry.objects.create(kind="draft", reference="draft:1")
    Posting.objects.create(entry=draft, account=LedgerAccount.objects.get(code="card_clearing"), amount_minor=99999)
    LedgerAccount.objects.create(code="chargeback_loss", currency="RUB")  # no postings: listed with zeros

    page = operator.get(TRIAL)
    assert page.status_code == 200
    page = page.content.decode()
    assert trial_row(page, "RUB", "card_clearing") == "card_clearing asset 15 000.00 RUB 0.00 RUB 15 000.00 RUB"
    assert trial_row(page, "RUB", "fee_revenue") == "fee_revenue income 0.00 RUB 200.00 RUB -200.00 RUB"
    assert trial_row(page, "RUB", "chargeback_loss") == "chargeback_loss expense 0.00 RUB 0.00 RUB 0.00 RUB"
    assert trial_row(page, "RUB", "total") == "total 15 000.00 RUB 15 000.00 RUB 0.00 RUB"
    payable, both = (money_format(n, "KGS").replace(NBSP, " ") for n in (som, 2 * som))
    assert trial_row(page, "KGS", "recipient_payable") == f"recipient_payable liability {payable} {payable} 0.00 KGS"
    assert trial_row(page, "KGS", "total") == f"total {both} {both} 0.00 KGS"
    assert "wrong side" not in page and "do not balance" not in page


def test_trial_balance_flags_an_account_on_the_side_it_may_not_reach(operator, pricing):
    """A partner's balance overdrawn (a debit on a liability that must not go negative) is flagged on its row."""
    partner, _ = partner_create(name="overdrawn")
    ledger_post(kind="test", reference="overdraw:1",
                lines=[("partner_balance", "RUB", 500, partner), ("card_clearing", "RUB", -500)])
    page = operator.get(TRIAL).content.decode()
    assert "on the wrong side for this account" in trial_row(page, "RUB", "partner_balance:overdrawn")
    assert "on the wrong side for this account" in trial_row(page, "RUB", "card_clearing")
    assert "on the wrong side" not in trial_row(page, "RUB", "total")
    assert sorted((r.account.code, r.balance) for r in ledger_wrong_side_accounts()) == [
        ("card_clearing", -500), ("partner_balance", 500)]


def test_ledger_account_list_links_to_the_trial_balance_and_shows_kinds(operator, pricing):
    """The ledger account list shows each account's kind and posted balance and links to the trial balance."""
    ledger_post_funding(transfer=make_transfer())
    page = operator.get("/admin/payments/ledgeraccount/").content.decode()
    assert f'href="{TRIAL}"' in page
    assert "liability" in page and money("15 000.00", "RUB") in page


def test_trial_balance_needs_the_ledger_view_permission(pricing):
    """A staff member without view permission on ledger accounts gets 403 from the trial balance; with it, the page."""
    user = get_user_model().objects.create_user("clerk", "clerk@example.com", "a-long-password-123", is_staff=True)
    clerk = staff_login(Client(), user)
    assert clerk.get(TRIAL).status_code == 403
    user.user_permissions.add(Permission.objects.get(codename="view_ledgeraccount"))
    assert staff_login(Client(), get_user_model().objects.get(pk=user.pk)).get(TRIAL).status_code == 200


def test_journal_entries_cannot_be_added_changed_or_deleted_even_by_a_superuser(operator, pricing):
    """Journal entries are read-only in admin for everyone: add and delete answer 403, a change POST changes nothing."""
    entry = ledger_post_funding(transfer=make_transfer())
    assert operator.get("/admin/payments/journalentry/add/").status_code == 403
    assert operator.post(f"/admin/payments/journalentry/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    operator.post(f"/admin/payments/journalentry/{entry.pk}/change/", {"kind": "edited", "memo": "edited"})
    entry.refresh_from_db()
    assert (entry.kind, entry.posted) == ("funding", True) and entry.postings.count() == 5


def test_transfer_page_shows_its_journal_and_where_the_money_is(operator, pricing):
    """A funded transfer's page lists its funding entry with its postings and says, in words, where the money is:
    on card clearing, our fee, the som owed to the recipient. After the payout the recipient is owed nothing."""
    transfer = make_transfer()
    ledger_post_funding(transfer=transfer)
    som = money_format(int(transfer.quote.target_amount * 100), "KGS")
    page = operator.get(f"/admin/payments/transfer/{transfer.pk}/change/").content.decode()
    assert 'data-kind="funding"' in page
    assert money("15 000.00", "RUB") + " on card clearing (held at Stripe)" in page
    assert money("200.00", "RUB") + " earned as our fee" in page
    assert f"{som} owed to the recipient" in page
    assert transfer_money_now(transfer=transfer)[:3] == [money("15 000.00", "RUB") + " on card clearing (held at Stripe)",
                                                         money("14 800.00", "RUB") + " exchanged into som (FX position)",
                                                         money("200.00", "RUB") + " earned as our fee"]

    ledger_post_payout(transfer=transfer, tx_hash="0x" + "ab" * 32)
    page = operator.get(f"/admin/payments/transfer/{transfer.pk}/change/").content.decode()
    assert 'data-kind="payout"' in page
    assert "owed to the recipient" not in page
    assert f"{som} paid out on chain from the KGST float" in page


def test_refunded_transfer_holds_nothing(operator, pricing):
    """Funding then refund: every account the transfer touched is back to zero, and the page says so."""
    transfer = make_transfer(amount=str(Decimal("15000.00")))
    ledger_post_funding(transfer=transfer)
    ledger_post_refund(transfer=transfer, refund_id="re_1")
    assert transfer_money_now(transfer=transfer) == []
    page = operator.get(f"/admin/payments/transfer/{transfer.pk}/change/").content.decode()
    assert "Nothing held: every account this transfer touched is back to zero." in page
    assert 'data-kind="refund"' in page
