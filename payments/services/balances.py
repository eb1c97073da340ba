"""Partners' prefunded balances: the ruble corridor's rail (Russian-issued cards do not work abroad, so a partner app
collects rubles locally and funds transfers from a balance it keeps with us). docs/ledger.md, "Partner balances".

A partner's balance in a currency is its own ledger account ("partner_balance", currency, partner): a liability, whose
credit balance is what we owe the partner. It is derived from the postings only, never typed in or stored.

Every movement on that account takes its row lock first (`balance_account_lock`, SELECT … FOR UPDATE on the
LedgerAccount), then sums it, then posts, all in one transaction:
- two spends (transfer fundings, withdrawals) can never both see the same balance, in any number of processes;
- postings on the account get their ids in commit order, so the statement reads the running balance by id.
Lock order: a transfer's quote or a transfer row (or, in admin, the Partner row) before the balance account; nothing
that holds the balance account waits on another row.
"""

import logging
from dataclasses import dataclass
from datetime import datetime

from celery import current_app
from django.db import transaction
from django.db.models import Q, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.translation import gettext as _

from payments.errors import (
    BalanceInputInvalid,
    BalanceMissing,
    BalanceReferenceUsed,
    FundingMethodRefused,
    InsufficientBalance,
)
from payments.models import MINOR_DIGITS, SOURCE_CURRENCIES, JournalEntry, LedgerAccount, Partner, Posting, from_minor, to_minor
from payments.services.ledger import funding_lines, ledger_account, ledger_post
from payments.services.webhook_events import balance_movement_record

log = logging.getLogger(__name__)

BALANCE = "partner_balance"  # liability, one per (currency, partner): what we owe the partner
BANK = "partner_settlement_bank"  # asset, one per currency: our bank account that partners' prefunding arrives in
TOPUP, WITHDRAWAL = "topup", "withdrawal"
REFERENCE_MAX = 64  # the partner's bank transfer reference; the entry's reference is "<kind>:<partner id>:<it>"
# payments.pipeline.advance_task, by its registered name: the pipeline imports this module (the refund dispatch), so
# this module cannot import the pipeline back.
ADVANCE_TASK = "payments.transfer_advance"


def _shown(amount_minor, currency):
    return f"{number_format(from_minor(amount_minor, currency), MINOR_DIGITS[currency], force_grouping=True)} {currency}"


# Reads -------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Balance:
    currency: str
    amount_minor: int

    @property
    def amount(self):
        return from_minor(self.amount_minor, self.currency)


def balances_list(*, partner):
    """The partner's balance in every currency it has one in (what we owe it, in minor units), by currency."""
    accounts = (LedgerAccount.objects.filter(code=BALANCE, partner=partner)
                .annotate(total=Coalesce(Sum("postings__amount_minor", filter=Q(postings__entry__posted=True)), 0))
                .order_by("currency"))
    return [Balance(account.currency, -account.total) for account in accounts]


def balance_get(*, partner, currency):
    """What we owe the partner in `currency`, in minor units (0 when it never had a balance there). No lock: a
    spend reads it again under the account's lock."""
    return -(Posting.objects.filter(account__code=BALANCE, account__currency=currency, account__partner=partner,
                                    entry__posted=True).aggregate(s=Sum("amount_minor"))["s"] or 0)


@dataclass(frozen=True)
class Movement:
    """One line of a partner's statement: a movement of its balance (+ in, − out) and the balance after it."""

    posting_id: int
    entry_id: int
    kind: str
    currency: str
    amount_minor: int
    balance_after_minor: int
    reference: str
    transfer_id: object
    at: datetime

    @property
    def amount(self):
        return from_minor(self.amount_minor, self.currency)

    @property
    def balance_after(self):
        return from_minor(self.balance_after_minor, self.currency)


def balance_statement(*, partner, currency):
    """The postings on the partner's balance in `currency`, newest first, with their entries: a queryset for a
    paginator (empty when the partner never had a balance there). `balance_movements` turns a page into lines."""
    return (Posting.objects.filter(account__code=BALANCE, account__currency=currency, account__partner=partner,
                                   entry__posted=True).select_related("entry", "account").order_by("-id"))


def balance_movements(postings):
    """A page of `balance_statement` (newest first) as Movements, each with the balance after it: one sum of what
    came before the page's oldest posting, then added up in id order (ids follow commit order on this account)."""
    postings = list(postings)
    if not postings:
        return []
    oldest = min(postings, key=lambda p: p.pk)
    before = -(Posting.objects.filter(account_id=oldest.account_id, pk__lt=oldest.pk, entry__posted=True)
               .aggregate(s=Sum("amount_minor"))["s"] or 0)
    after = {}
    for posting in sorted(postings, key=lambda p: p.pk):
        before -= posting.amount_minor
        after[posting.pk] = before
    return [Movement(posting_id=p.pk, entry_id=p.entry_id, kind=p.entry.kind, currency=p.account.currency,
                     amount_minor=-p.amount_minor, balance_after_minor=after[p.pk],
                     reference=_bank_reference(p.entry), transfer_id=p.entry.transfer_id, at=p.entry.created_at)
            for p in postings]


def _bank_reference(entry):
    """The partner's own bank reference of a top-up or withdrawal ("topup:<partner id>:<reference>")."""
    if entry.transfer_id or entry.kind not in (TOPUP, WITHDRAWAL):
        return entry.reference
    return entry.reference.split(":", 2)[-1]


# The lock ----------------------------------------------------------------------------------------------------------

def balance_account_lock(*, partner, currency, create=False):
    """The partner's balance account in `currency`, its row locked until the transaction ends. `create` opens the
    account when missing (a top-up); otherwise a partner without one gets BalanceMissing."""
    if create:
        ledger_account(BALANCE, currency, partner)
    account = LedgerAccount.objects.select_for_update().filter(code=BALANCE, currency=currency, partner=partner).first()
    if account is None:
        raise BalanceMissing(_("You hold no %(currency)s balance with us: top it up before funding from it.")
                             % {"currency": currency})
    return account


def _owed(account):
    return -(account.postings.filter(entry__posted=True).aggregate(s=Sum("amount_minor"))["s"] or 0)


# Top-ups and withdrawals (an operator records them in admin, with a reason: payments/guarded_balances.py) ---------

def balance_topup(*, partner, currency, amount, reference, memo=""):
    """The partner sent `amount` (Decimal, major units) to our bank, under its bank `reference`: our bank account
    rises and so does what we owe the partner. Returns the journal entry. A reference already recorded for this
    partner is refused (BalanceReferenceUsed), so a form sent twice posts once."""
    return _movement(kind=TOPUP, partner=partner, currency=currency, amount=amount, reference=reference, memo=memo)


def balance_withdraw(*, partner, currency, amount, reference, memo=""):
    """We paid `amount` of the partner's balance back to its bank, under the bank `reference`. More than the
    balance is refused (InsufficientBalance), as is a reference already recorded; nothing is posted then."""
    return _movement(kind=WITHDRAWAL, partner=partner, currency=currency, amount=amount, reference=reference,
                     memo=memo)


def _movement(*, kind, partner, currency, amount, reference, memo):
    if currency not in dict(SOURCE_CURRENCIES):
        raise BalanceInputInvalid(_("Balances are kept in RUB or USD."), field="currency")
    try:
        amount_minor = to_minor(amount, currency)
    except (ValueError, ArithmeticError):
        amount_minor = 0
    if amount_minor <= 0:
        raise BalanceInputInvalid(_("Enter a positive amount with at most two decimals."), field="amount")
    reference = " ".join(str(reference or "").split())
    if not reference or len(reference) > REFERENCE_MAX:
        raise BalanceInputInvalid(_("Enter the bank transfer's reference (1 to %(max)s characters).")
                                  % {"max": REFERENCE_MAX}, field="reference")
    key = f"{kind}:{partner.pk}:{reference}"
    with transaction.atomic():
        # The reference is one per partner across currencies, and each currency's account has its own lock: the
        # partner's row serialises its movements, so a reference sent in RUB and USD at once is refused by name
        # (not answered with the other currency's entry by ledger_post's duplicate handling).
        Partner.objects.select_for_update().filter(pk=partner.pk).first()
        account = balance_account_lock(partner=partner, currency=currency, create=kind == TOPUP)
        existing = JournalEntry.objects.filter(transfer__isnull=True, kind=kind, reference=key).first()
        if existing:
            raise BalanceReferenceUsed(_("Bank reference %(reference)s is already recorded (journal entry "
                                         "#%(entry)s): nothing was posted.") % {"reference": reference,
                                                                                 "entry": existing.pk},
                                       field="reference")
        owed = _owed(account)
        if kind == WITHDRAWAL and amount_minor > owed:
            raise InsufficientBalance(_("The balance is %(balance)s: it does not cover a withdrawal of %(amount)s. "
                                        "Nothing was posted.") % {"balance": _shown(owed, currency),
                                                                  "amount": _shown(amount_minor, currency)},
                                      field="amount")
        sign = 1 if kind == TOPUP else -1
        entry = ledger_post(kind=kind, reference=key, memo=memo[:200], lines=[
            (BANK, currency, sign * amount_minor), (BALANCE, currency, -sign * amount_minor, partner)])
        balance_movement_record(partner=partner, currency=currency, kind=kind, amount_minor=sign * amount_minor,
                                balance_after_minor=owed + sign * amount_minor, entry_id=entry.pk)
    log.info("partner_balance_%s partner=%s currency=%s amount_minor=%s entry=%s balance_minor=%s", kind, partner.pk,
             currency, amount_minor, entry.pk, owed + sign * amount_minor)
    return entry


# Transfers ---------------------------------------------------------------------------------------------------------

def balance_funding_check(*, partner):
    """Only a partner's API transfer can be funded from a balance (a web transfer has no partner)."""
    if partner is None:
        raise FundingMethodRefused(_("Only a partner's transfers can be funded from a prefunded balance."),
                                   field="funding.method")


# What mark_funded writes: the rest of the row is as it was just inserted, so writing it all back is work for nothing.
FUNDED = ["status", "funded_at", "updated_at"]


def balance_fund(*, transfer):
    """Fund `transfer`, just inserted in the caller's transaction, from its partner's balance in the quote's currency:
    under the account's lock, a balance that does not cover the quoted amount (fee included) is refused
    (InsufficientBalance, or BalanceMissing without an account) and the caller's transaction rolls back, so nothing
    is created or posted. Otherwise the transfer moves awaiting_funding → funded and the funding entry takes the money
    from the balance, in the same transaction; the advance step (screening, payout) is sent after commit. No payout
    delay: the card delays guard against chargebacks, and a balance cannot be charged back."""
    balance_funding_check(partner=transfer.partner)
    currency = transfer.quote.source_currency
    account = balance_account_lock(partner=transfer.partner, currency=currency)
    owed, needed = _owed(account), transfer.source_minor
    if needed > owed:
        raise InsufficientBalance(_("Your %(currency)s balance is %(balance)s: it does not cover this transfer of "
                                    "%(amount)s. Nothing was created; top up and send it again (the quote stays usable "
                                    "until it expires).") % {"currency": currency, "balance": _shown(owed, currency),
                                                             "amount": _shown(needed, currency)},
                                  field="funding.method")
    transfer.mark_funded(timezone.now())
    transfer.save(update_fields=FUNDED)
    entry = ledger_post(transfer=transfer, kind="funding", memo="partner balance", transfer_is_new=True,
                        lines=funding_lines(transfer, money_in=BALANCE, partner=transfer.partner))
    balance_movement_record(partner=transfer.partner, currency=currency, kind="funding", amount_minor=-needed,
                            balance_after_minor=owed - needed, entry_id=entry.pk, transfer_id=transfer.pk)
    transfer_id = str(transfer.id)
    transaction.on_commit(lambda: current_app.send_task(ADVANCE_TASK, args=[transfer_id]))
    log.info("transfer_funded transfer_id=%s method=balance partner=%s balance_minor=%s", transfer_id,
             transfer.partner_id, owed - needed)
    return transfer


def balance_refund_book(*, transfer):
    """A balance-funded transfer's money back to its partner's balance (no card rail): the funding entry reversed line
    by line (kind `refund`), posted once. The caller holds the transfer's row lock (payments.pipeline_refunds.refund_apply);
    the balance account is locked after it, the order every balance writer keeps."""
    account = balance_account_lock(partner=transfer.partner, currency=transfer.quote.source_currency)
    lines = [(code, currency, -amount, *partner) for code, currency, amount, *partner in
             funding_lines(transfer, money_in=BALANCE, partner=transfer.partner)]
    entry = ledger_post(transfer=transfer, kind="refund", lines=lines, memo="back to the partner balance")
    balance_movement_record(partner=transfer.partner, currency=transfer.quote.source_currency, kind="refund",
                            amount_minor=transfer.source_minor, balance_after_minor=_owed(account), entry_id=entry.pk,
                            transfer_id=transfer.pk)
    log.info("transfer_refunded transfer_id=%s method=balance entry=%s", transfer.id, entry.pk)
    return entry
