"""Double-entry ledger: every movement is one balanced journal entry, posted once per step.

An entry is written in three steps in one transaction: the entry unposted, its postings, then the entry marked
posted. The database refuses to mark an entry posted unless its postings balance in every currency, and refuses any
change to a posted entry or its postings (PostgreSQL: the ledger_triggers migration; SQLite: payments/ledger_triggers.py).
`_check_balanced` refuses the same mistakes first, with a readable error; the database is the last line. Balances
count posted entries only.
"""

from collections import defaultdict
from dataclasses import dataclass

from django.db import IntegrityError, connections, transaction
from django.db.models import Q, Sum
from django.utils import timezone

from payments.assets import asset_for
from payments.errors import LedgerImbalance, UnknownLedgerAccount
from payments.models import JournalEntry, LedgerAccount, Posting, to_minor

ASSET, LIABILITY, INCOME, EXPENSE, EQUITY = "asset", "liability", "income", "expense", "equity"
DEBIT_NORMAL = {ASSET, EXPENSE}  # the others are credit-normal


@dataclass(frozen=True)
class AccountKind:
    """What an account code is. `may_go_negative`: whether its balance may cross to the side opposite its normal
    one (a debit balance on a liability, a credit balance on an asset). `per_partner`: each partner has its own
    account of this code and a line must name the partner; house accounts must not."""

    kind: str
    holds: str
    may_go_negative: bool = False
    per_partner: bool = False

    @property
    def debit_normal(self):
        return self.kind in DEBIT_NORMAL


# The chart of accounts: every code a posting may name (docs/ledger.md, "Accounts", says the same in words).
ACCOUNTS = {
    "card_clearing": AccountKind(ASSET, "card money captured at Stripe, not yet refunded or taken by a dispute"),
    "partner_settlement_bank": AccountKind(ASSET, "our bank account that partners' prefunding arrives in and "
                                                  "withdrawals leave from"),
    "disputes_receivable": AccountKind(ASSET, "money Stripe took for an open dispute, which we may win back"),
    "kgst_treasury": AccountKind(ASSET, "KGST held in the treasury wallet, from which the float is topped up"),
    "kgst_float": AccountKind(ASSET, "KGST in the payout float: the treasury's funding debits it, payouts credit it; "
                                     "negative until the opening balance is booked", may_go_negative=True),
    "usdkg_float": AccountKind(ASSET, "USDKG (dollars, on Ethereum) in the payout float for USD targets: payouts "
                                      "credit it, in USD; negative until the opening balance is booked",
                               may_go_negative=True),
    "payout_partner_clearing": AccountKind(ASSET, "KGST sent to a payout partner's settlement address for payouts it "
                                                  "has not confirmed yet: it holds them for us until it pays the "
                                                  "person (or returns them)", per_partner=True),
    "payouts_in_transit": AccountKind(ASSET, "som sent on chain whose block is not final yet"),
    "partner_balance": AccountKind(LIABILITY, "a partner's prefunded balance: what we owe the partner",
                                   per_partner=True),
    "recipient_payable": AccountKind(LIABILITY, "som owed to the recipients of funded transfers, until paid out"),
    "refunds_payable": AccountKind(LIABILITY, "payments owed back to senders whose refund failed, until an operator "
                                              "returns them another way"),
    "unmatched_funds": AccountKind(LIABILITY, "a capture that does not match its quote, to be returned"),
    "refused_funds": AccountKind(LIABILITY, "a capture refused at funding (card country, freeze), to be returned"),
    "fee_revenue": AccountKind(INCOME, "fees earned"),
    "chargeback_loss": AccountKind(EXPENSE, "disputes lost after the som was paid out"),
    "treasury_capital": AccountKind(EQUITY, "KGST the treasury put into the float (credit), less what it took out",
                                    may_go_negative=True),
    "fx_position": AccountKind(EQUITY, "the conversion: source currency sold (credit) and som bought (debit), one "
                                       "account per currency", may_go_negative=True),
}


def account_kind(code):
    """The chart's entry for `code`; an unknown code raises UnknownLedgerAccount."""
    try:
        return ACCOUNTS[code]
    except KeyError:
        raise UnknownLedgerAccount(f"No ledger account {code!r}: the chart of accounts is ACCOUNTS in "
                                   "payments/services/ledger.py (and docs/ledger.md).") from None


def _check_accounts(lines):
    """Every code is in the chart; a partner's own account names its partner, a house account names none."""
    for code, _currency, _amount, *partner in lines:
        named = bool(partner) and partner[0] is not None
        if account_kind(code).per_partner and not named:
            raise UnknownLedgerAccount(f"{code!r} is a partner's own account: the line names the partner.")
        if named and not ACCOUNTS[code].per_partner:
            raise UnknownLedgerAccount(f"{code!r} is a house account: a partner has no account of its own there.")


def _check_balanced(kind, lines):
    """Every entry, single or bulk, passes here: non-zero integer amounts, debits = credits per currency."""
    totals = defaultdict(int)
    for _code, currency, amount, *_partner in lines:
        if not isinstance(amount, int) or isinstance(amount, bool) or amount == 0:
            raise LedgerImbalance(f"Posting amounts are non-zero integers, got {amount!r}.")
        totals[currency] += amount
    if any(totals.values()):
        raise LedgerImbalance(f"Entry {kind} does not balance: {dict(totals)}")


def ledger_account(code, currency, partner=None):
    """The account of `code` in `currency` (the partner's own when `partner`), created on first use."""
    return ledger_accounts([(code, currency, partner)])[(code, currency, getattr(partner, "pk", partner))]


def ledger_accounts(keys):
    """`ledger_account` for several accounts at once: {(code, currency, partner id or None): account} for `keys`
    [(code, currency, partner or None)], in one read; accounts not there yet are created by one insert (one a
    concurrent transaction creates first is kept: the unique constraints make the insert skip it) and read again."""
    keys = {(code, currency, getattr(partner, "pk", partner)) for code, currency, partner in keys}
    if not keys:
        return {}
    found = _accounts_read(keys)
    missing = keys - found.keys()
    if missing:
        # In one order, so two transactions creating the same accounts wait on each other without deadlocking.
        LedgerAccount.objects.bulk_create([LedgerAccount(code=code, currency=currency, partner_id=partner)
                                           for code, currency, partner in sorted(missing, key=str)],
                                          ignore_conflicts=True)
        found |= _accounts_read(missing)
    return found


def _accounts_read(keys):
    which = Q()
    for code, currency, partner in keys:
        which |= Q(code=code, currency=currency, partner_id=partner)  # partner None reads as IS NULL
    return {(a.code, a.currency, a.partner_id): a for a in LedgerAccount.objects.filter(which)}


def _line_account(line):
    code, currency, _amount, *partner = line
    partner = partner[0] if partner else None
    return code, currency, getattr(partner, "pk", partner)


def ledger_post(*, kind, lines, transfer=None, reference="", memo="", transfer_is_new=False):
    """Post `lines` [(account_code, currency, amount_minor[, partner])] (debit +, credit −) once for (transfer, kind),
    or, for a movement of no transfer, once for (kind, reference). A line naming a partner posts to that partner's
    own account of that code.

    Returns the entry; posting the same step again returns the first entry and changes nothing.
    `transfer_is_new`: `transfer` was inserted in the caller's (still open) transaction, so no entry of it exists and
    no other transaction can post one (it cannot see the transfer yet): no look-up of a first entry and no savepoint
    to fall back to it. The (transfer, kind) unique key still refuses a second entry, rolling the caller back.
    """
    if (transfer is None) == (not reference):
        raise LedgerImbalance("An entry belongs to a transfer or carries a reference, not both or neither.")
    if transfer_is_new and transfer is None:
        raise LedgerImbalance("transfer_is_new names a transfer.")
    _check_balanced(kind, lines)
    _check_accounts(lines)
    if transfer_is_new:
        with transaction.atomic(savepoint=False):
            return _entry_write(kind=kind, lines=lines, transfer=transfer, reference=reference, memo=memo)
    key = {"transfer": transfer, "kind": kind} if transfer is not None else {
        "transfer__isnull": True, "kind": kind, "reference": reference}
    existing = JournalEntry.objects.filter(**key).first()
    if existing:
        return existing
    try:
        with transaction.atomic():
            return _entry_write(kind=kind, lines=lines, transfer=transfer, reference=reference, memo=memo)
    except IntegrityError:
        # Another transaction posted this step first (its unique key); anything else the database refused is raised.
        existing = JournalEntry.objects.filter(**key).first()
        if existing is None:
            raise
        return existing


def _entry_write(*, kind, lines, transfer, reference, memo):
    """The entry unposted, its postings (their accounts read in one query, one insert), then the entry posted: the
    database refuses to post it unless the postings balance in every currency (docs/ledger.md)."""
    entry = JournalEntry.objects.create(transfer=transfer, kind=kind, reference=reference, memo=memo)
    accounts = ledger_accounts(_line_account(line) for line in lines)
    Posting.objects.bulk_create(Posting(entry=entry, account=accounts[_line_account(line)], amount_minor=line[2])
                                for line in lines)
    JournalEntry.objects.filter(pk=entry.pk).update(posted=True)
    entry.posted = True
    return entry


def funding_lines(transfer, *, money_in="card_clearing", partner=None):
    """The funding entry's lines: the quoted amount came in through `money_in` (card clearing, or the partner's own
    `partner_balance` when `partner` is given); the fee is earned, the rest buys som owed to the recipient."""
    q = transfer.quote
    total = to_minor(q.source_amount, q.source_currency)
    fee = to_minor(q.fee, q.source_currency)
    som = to_minor(q.target_amount, q.target_currency)
    money = (money_in, q.source_currency, total) + ((partner,) if partner is not None else ())
    lines = [money, ("fee_revenue", q.source_currency, -fee)]
    if q.source_currency == q.target_currency:  # dollars to dollars: no conversion, so no FX leg
        return lines + [("recipient_payable", q.target_currency, -som)]
    if total - fee:
        lines.append(("fx_position", q.source_currency, -(total - fee)))
    return lines + [("fx_position", q.target_currency, som), ("recipient_payable", q.target_currency, -som)]


def ledger_post_funding(*, transfer):
    """Card money captured: the fee is earned, the rest buys som owed to the recipient."""
    return ledger_post(transfer=transfer, kind="funding", lines=funding_lines(transfer),
                       memo=f"PaymentIntent {transfer.payment_intent_id}")


def float_account(currency):
    """The payout float account of a target currency: kgst_float for KGS, usdkg_float for USD (payments/assets.py)."""
    return asset_for(currency).float_account


def _payout_lines(transfer):
    q = transfer.quote
    return payout_lines(q.target_currency, to_minor(q.target_amount, q.target_currency))


def ledger_post_payout(*, transfer, tx_hash):
    return ledger_post(transfer=transfer, kind="payout", memo=f"tx {tx_hash}", lines=_payout_lines(transfer))


def ledger_post_payouts(*, transfers, tx_hash=None, tx_hashes=None):
    """`ledger_post_payout` for a whole batch in a few statements (`ledger_post_payout_rows`). `tx_hashes` (transfer pk
    -> hash) instead of `tx_hash` posts several batches at once, each entry naming its own transaction."""
    if tx_hashes is None:
        tx_hashes = {t.pk: tx_hash for t in transfers}
    return ledger_post_payout_rows(rows=[(t.pk, t.quote.target_currency, to_minor(t.quote.target_amount,
                                                                                  t.quote.target_currency),
                                          tx_hashes[t.pk]) for t in transfers])


def payout_lines(currency, owed_minor):
    """The `payout` entry's lines: the token left its float (KGST for som, USDKG for dollars) and is final, so the
    debt to the recipient is paid, in the target currency on both sides."""
    return [("recipient_payable", currency, owed_minor), (float_account(currency), currency, -owed_minor)]


def ledger_post_payout_rows(*, rows):
    """The `payout` entry of each transfer in `rows` [(transfer pk, target currency, som owed in minor units, tx hash)]
    (a block's final payouts, thousands at once), in a fixed number of statements whatever their count: which are
    posted already, the entries (unposted), their postings, then one UPDATE that posts them all (the database checks
    each one's balance). One entry per transfer, as `ledger_post_payout` writes it (its own memo naming its own
    transaction, (transfer, kind) unique); every entry's lines pass `ledger_post`'s checks before anything is
    written. On PostgreSQL the rows go as arrays (no model instance per entry or posting: they were most of a block's
    finalising time). Returns the number of entries posted."""
    rows = list(rows)
    if not rows:
        return 0
    done = set(JournalEntry.objects.filter(transfer_id__any=[r[0] for r in rows], kind="payout")
               .values_list("transfer_id", flat=True))
    todo = [(pk, tx_hash, payout_lines(currency, owed)) for pk, currency, owed, tx_hash in rows if pk not in done]
    for _pk, _tx_hash, lines in todo:
        _check_balanced("payout", lines)
        _check_accounts(lines)
    if not todo:
        return 0
    accounts = {(code, currency): account.pk for (code, currency, _none), account in ledger_accounts(
        (code, currency, None) for _pk, _tx_hash, lines in todo for code, currency, _amount in lines).items()}
    connection = connections[JournalEntry.objects.db]
    with transaction.atomic(savepoint=False):
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    "INSERT INTO payments_journalentry (transfer_id, kind, reference, memo, created_at, posted) "
                    "SELECT t, 'payout', '', m, %s, false FROM unnest(%s::uuid[], %s::text[]) AS u(t, m) "
                    "RETURNING transfer_id, id",
                    [timezone.now(), [pk for pk, _tx, _lines in todo], [f"tx {tx}" for _pk, tx, _lines in todo]])
                entry_of = dict(cursor.fetchall())
                postings = [(entry_of[pk], accounts[(code, currency)], amount)
                            for pk, _tx, lines in todo for code, currency, amount in lines]
                cursor.execute("INSERT INTO payments_posting (entry_id, account_id, amount_minor) "
                               "SELECT * FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[])",
                               [list(col) for col in zip(*postings, strict=True)])
            entry_ids = list(entry_of.values())
        else:
            entries = JournalEntry.objects.bulk_create(
                JournalEntry(transfer_id=pk, kind="payout", memo=f"tx {tx}") for pk, tx, _lines in todo)
            Posting.objects.bulk_create(
                Posting(entry=entry, account_id=accounts[(code, currency)], amount_minor=amount)
                for (_pk, _tx, lines), entry in zip(todo, entries, strict=True) for code, currency, amount in lines)
            entry_ids = [e.pk for e in entries]
        JournalEntry.objects.filter(pk__any=entry_ids).update(posted=True)
    return len(todo)


def _funding_unwound(transfer, *, money_back_from):
    """The funding entry's lines reversed, the money leaving `money_back_from` (the card, or a disputes receivable
    when the bank's chargeback stands in for our refund): fee, conversion and the som owed to the recipient."""
    q = transfer.quote
    total = to_minor(q.source_amount, q.source_currency)
    fee = to_minor(q.fee, q.source_currency)
    som = to_minor(q.target_amount, q.target_currency)
    lines = [(money_back_from, q.source_currency, -total), ("fee_revenue", q.source_currency, fee)]
    if q.source_currency == q.target_currency:
        return lines + [("recipient_payable", q.target_currency, som)]
    if total - fee:
        lines.append(("fx_position", q.source_currency, total - fee))
    return lines + [("fx_position", q.target_currency, -som), ("recipient_payable", q.target_currency, som)]


def ledger_post_refund(*, transfer, refund_id):
    """Money returned to the card in full, fee included; the som leg is unwound."""
    return ledger_post(transfer=transfer, kind="refund", lines=_funding_unwound(transfer, money_back_from="card_clearing"),
                       memo=f"refund {refund_id}")


def ledger_post_returned_capture(*, transfer, amount_minor, currency, refused=False, refund_id=None, chargeback=None):
    """Money captured that we do not accept, and its way back: in and out of a suspense account, so the card clearing
    account still agrees with Stripe. `unmatched_funds` for a payment that does not match its quote,
    `refused_funds` for a refused card (country, frozen identity). It goes back by our refund (`refund_id`), or by
    the card's bank when it was disputed first (`chargeback`, the dispute's id)."""
    prefix, account = ("refused", "refused_funds") if refused else ("unmatched", "unmatched_funds")
    ledger_post(transfer=transfer, kind=f"{prefix}_capture", memo=f"PaymentIntent {transfer.payment_intent_id}",
                lines=[("card_clearing", currency, amount_minor), (account, currency, -amount_minor)])
    kind, memo = (f"{prefix}_chargeback", f"dispute {chargeback}") if chargeback else (f"{prefix}_refund",
                                                                                        f"refund {refund_id}")
    return ledger_post(transfer=transfer, kind=kind, memo=memo,
                       lines=[(account, currency, amount_minor), ("card_clearing", currency, -amount_minor)])


def ledger_post_dispute(*, transfer, amount_minor, currency, dispute_id):
    """The cardholder's bank disputed the payment and Stripe took the disputed amount from our balance: it leaves
    card_clearing for disputes_receivable (what we may win back; written off to chargeback_loss when lost)."""
    return ledger_post(transfer=transfer, kind="dispute", memo=f"dispute {dispute_id}",
                       lines=[("disputes_receivable", currency, amount_minor), ("card_clearing", currency, -amount_minor)])


def ledger_post_charged_back(*, transfer, dispute_id):
    """A disputed transfer that was never paid out: the bank's chargeback stands in for our refund. The funding entry
    is unwound against disputes_receivable."""
    return ledger_post(transfer=transfer, kind="charged_back", memo=f"dispute {dispute_id}",
                       lines=_funding_unwound(transfer, money_back_from="disputes_receivable"))


def ledger_post_refund_owed_charged_back(*, transfer, amount_minor, currency, dispute_id):
    """A transfer whose refund failed (owed to the sender in refunds_payable) that the card's bank then charged
    back: the bank returned the money, so it is owed no more; the dispute's receivable stands against it."""
    return ledger_post(transfer=transfer, kind="refund_owed_charged_back", memo=f"dispute {dispute_id}",
                       lines=[("refunds_payable", currency, amount_minor),
                              ("disputes_receivable", currency, -amount_minor)])


def transfer_account_total(*, transfer, code, currency):
    """Debits less credits of one transfer's posted entries on one account, in minor units."""
    return Posting.objects.filter(entry__transfer=transfer, entry__posted=True, account__code=code,
                                  account__currency=currency).aggregate(s=Sum("amount_minor"))["s"] or 0


def account_balance(code, currency, partner=None):
    """Debits less credits of posted entries, in minor units: a house account, or the partner's own account of that
    code."""
    return Posting.objects.filter(account__code=code, account__currency=currency, account__partner=partner,
                                  entry__posted=True).aggregate(s=Sum("amount_minor"))["s"] or 0
