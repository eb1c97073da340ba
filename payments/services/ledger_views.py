"""Reads of the ledger for operators: the trial balance, a transfer's journal and "where its money is now". Posted
entries only (a draft, inserted and never posted, is not part of the books)."""

from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import Q, Sum
from django.db.models.functions import Coalesce
from django.utils.translation import gettext as _

from common.money import from_units
from payments.models import MINOR_DIGITS, JournalEntry, LedgerAccount, Posting
from payments.services.ledger import ACCOUNTS


def money_format(minor, currency):
    """Minor units as `15 000.00 RUB`: groups of three split by a no-break space, the currency's own decimals."""
    digits = MINOR_DIGITS.get(currency, 2)
    amount = from_units(minor, digits)
    return f"{amount:,.{digits}f}".replace(",", "\u00a0") + f"\u00a0{currency}"


def _wrong_side(code, balance):
    """True when `balance` (debit +) sits on the side opposite the account's normal one and the chart forbids it."""
    spec = ACCOUNTS.get(code)
    if spec is None or spec.may_go_negative or not balance:
        return False
    return balance < 0 if spec.debit_normal else balance > 0


@dataclass(frozen=True)
class TrialRow:
    account: LedgerAccount
    kind: str
    holds: str
    debits: int
    credits: int  # shown positive

    @property
    def balance(self):
        return self.debits - self.credits

    @property
    def wrong_side(self):
        return _wrong_side(self.account.code, self.balance)


@dataclass
class TrialCurrency:
    currency: str
    rows: list = field(default_factory=list)

    @property
    def debits(self):
        return sum(r.debits for r in self.rows)

    @property
    def credits(self):
        return sum(r.credits for r in self.rows)

    @property
    def balance(self):
        return self.debits - self.credits


def ledger_trial_balance():
    """Every account, grouped by currency (alphabetical), with its posted debits, credits and balance. In books that
    balance, each currency's balance is zero; rows on a side their account may not reach are flagged `wrong_side`."""
    posted = Q(postings__entry__posted=True)
    accounts = (LedgerAccount.objects.select_related("partner")
                .annotate(debits=Coalesce(Sum("postings__amount_minor", filter=posted & Q(postings__amount_minor__gt=0)), 0),
                          credits=Coalesce(-Sum("postings__amount_minor", filter=posted & Q(postings__amount_minor__lt=0)),
                                           0))
                .order_by("currency", "code", "partner__name", "pk"))
    by_currency = {}
    for account in accounts:
        spec = ACCOUNTS.get(account.code)
        row = TrialRow(account=account, kind=spec.kind if spec else "?", holds=spec.holds if spec else "",
                       debits=account.debits, credits=account.credits)
        by_currency.setdefault(account.currency, TrialCurrency(account.currency)).rows.append(row)
    return list(by_currency.values())


def ledger_wrong_side_accounts():
    """The trial balance's rows whose balance sits on a side their account may not reach (an overdrawn partner
    balance, a recipient paid more than owed): what an invariant check or an operator looks for first."""
    return [row for block in ledger_trial_balance() for row in block.rows if row.wrong_side]


def transfer_journal(*, transfer):
    """The transfer's posted entries, oldest first, each with its postings and their accounts."""
    return list(JournalEntry.objects.filter(transfer=transfer, posted=True).order_by("created_at", "pk")
                .prefetch_related("postings__account__partner"))


# What a net balance on one account means for one transfer, in words: (on the debit side, on the credit side).
def _phrases():
    """Built per call, so each reads in the active language."""
    return {
        "card_clearing": (_("%(amount)s on card clearing (held at Stripe)"),
                          _("%(amount)s more returned to the card than was taken (card clearing)")),
        "partner_settlement_bank": (_("%(amount)s in our safeguarding bank account"), None),
        "disputes_receivable": (_("%(amount)s taken by Stripe for a dispute, which we may win back"), None),
        "kgst_treasury": (_("%(amount)s of KGST in the treasury"), None),
        "kgst_float": (None, _("%(amount)s paid out on chain from the KGST float")),
        "usdkg_float": (None, _("%(amount)s paid out on chain from the USDKG float")),
        "payouts_in_transit": (_("%(amount)s sent on chain, waiting for a final block"), None),
        "partner_balance": (_("%(amount)s spent from the partner's balance"),
                            _("%(amount)s added to the partner's balance")),
        "recipient_payable": (_("%(amount)s paid to the recipient beyond what was owed"),
                              _("%(amount)s owed to the recipient")),
        "refunds_payable": (None, _("%(amount)s owed back to the sender (the refund failed)")),
        "unmatched_funds": (None, _("%(amount)s captured that does not match the quote, to be returned")),
        "refused_funds": (None, _("%(amount)s captured from a refused payment, to be returned")),
        "fee_revenue": (_("%(amount)s of fee given back beyond what was earned"), _("%(amount)s earned as our fee")),
        "chargeback_loss": (_("%(amount)s lost to a chargeback"), None),
        "fx_position": (_("%(amount)s bought for the recipient (FX position)"),
                        _("%(amount)s exchanged into som (FX position)")),
    }


def transfer_money_now(*, transfer):
    """Where this transfer's money is now: the net of its posted postings per account, as sentences, the source
    currency first, largest first within each currency (e.g. "15 000.00 RUB on card clearing (held at Stripe)",
    "180 000.00 KGS owed to the recipient"). Empty when every account it touched is back to zero."""
    rows = (Posting.objects.filter(entry__transfer=transfer, entry__posted=True)
            .values("account__code", "account__currency", "account__partner__name")
            .annotate(net=Sum("amount_minor")).order_by("account__currency", "account__code"))
    phrases = _phrases()
    out = defaultdict(list)
    for row in rows:
        code, currency, net = row["account__code"], row["account__currency"], row["net"]
        if not net:
            continue
        debit, credit = phrases.get(code, (None, None))
        phrase = debit if net > 0 else credit
        if phrase is None:
            phrase = (_("%(amount)s debit on %(account)s") if net > 0 else _("%(amount)s credit on %(account)s"))
        sentence = phrase % {"amount": money_format(abs(net), currency), "account": code}
        if row["account__partner__name"]:
            sentence += f" ({row['account__partner__name']})"
        out[currency].append((-abs(net), sentence))
    first = (transfer.quote.source_currency, transfer.quote.target_currency)
    order = sorted(out, key=lambda c: (first.index(c) if c in first else len(first), c))
    return [sentence for currency in order for _net, sentence in sorted(out[currency])]
