"""Double-entry ledger: every movement is one balanced journal entry, posted once per step."""

from collections import defaultdict

from django.db import IntegrityError, transaction
from django.db.models import Sum

from payments.errors import LedgerImbalance
from payments.models import JournalEntry, LedgerAccount, Posting, to_minor


def _check_balanced(kind, lines):
    """Every entry, single or bulk, passes here: non-zero integer amounts, debits = credits per currency."""
    totals = defaultdict(int)
    for _code, currency, amount, *_partner in lines:
        if not isinstance(amount, int) or isinstance(amount, bool) or amount == 0:
            raise LedgerImbalance(f"Posting amounts are non-zero integers, got {amount!r}.")
        totals[currency] += amount
    if any(totals.values()):
        raise LedgerImbalance(f"Entry {kind} does not balance: {dict(totals)}")


def ledger_post(*, kind, lines, transfer=None, reference="", memo=""):
    """Post `lines` [(account_code, currency, amount_minor[, partner])] (debit +, credit −) once for (transfer, kind),
    or, for a movement of no transfer, once for (kind, reference). A line naming a partner posts to that partner's
    own account of that code.

    Returns the entry; posting the same step again returns the first entry and changes nothing.
    """
    if (transfer is None) == (not reference):
        raise LedgerImbalance("An entry belongs to a transfer or carries a reference, not both or neither.")
    _check_balanced(kind, lines)
    key = {"transfer": transfer, "kind": kind} if transfer is not None else {
        "transfer__isnull": True, "kind": kind, "reference": reference}
    existing = JournalEntry.objects.filter(**key).first()
    if existing:
        return existing
    try:
        with transaction.atomic():
            entry = JournalEntry.objects.create(transfer=transfer, kind=kind, reference=reference, memo=memo)
            Posting.objects.bulk_create(
                Posting(entry=entry, account=ledger_account(code, currency, *partner), amount_minor=amount)
                for code, currency, amount, *partner in lines
            )
    except IntegrityError:
        return JournalEntry.objects.get(**key)
    return entry


def ledger_account(code, currency, partner=None):
    account, _ = LedgerAccount.objects.get_or_create(code=code, currency=currency, partner=partner)
    return account


def funding_lines(transfer, *, money_in="card_clearing", partner=None):
    """The funding entry's lines: the quoted amount came in through `money_in` (card clearing, or the partner's own
    `partner_balance` when `partner` is given); the fee is earned, the rest buys som owed to the recipient."""
    q = transfer.quote
    total = to_minor(q.source_amount, q.source_currency)
    fee = to_minor(q.fee, q.source_currency)
    som = to_minor(q.target_amount, q.target_currency)
    money = (money_in, q.source_currency, total) + ((partner,) if partner is not None else ())
    lines = [money, ("fee_revenue", q.source_currency, -fee)]
    if total - fee:
        lines.append(("fx_position", q.source_currency, -(total - fee)))
    return lines + [("fx_position", q.target_currency, som), ("recipient_payable", q.target_currency, -som)]


def ledger_post_funding(*, transfer):
    """Card money captured: the fee is earned, the rest buys som owed to the recipient."""
    return ledger_post(transfer=transfer, kind="funding", lines=funding_lines(transfer),
                       memo=f"PaymentIntent {transfer.payment_intent_id}")


def _payout_lines(transfer):
    """KGST left the float and is final: the debt to the recipient is paid."""
    q = transfer.quote
    som = to_minor(q.target_amount, q.target_currency)
    return [("recipient_payable", q.target_currency, som), ("kgst_float", q.target_currency, -som)]


def ledger_post_payout(*, transfer, tx_hash):
    return ledger_post(transfer=transfer, kind="payout", memo=f"tx {tx_hash}", lines=_payout_lines(transfer))


def ledger_post_payouts(*, transfers, tx_hash):
    """`ledger_post_payout` for a whole batch in three statements: one balanced entry per transfer, once.
    Each entry's lines pass the same balance check as `ledger_post`, before anything is written."""
    done = set(JournalEntry.objects.filter(transfer__in=transfers, kind="payout").values_list("transfer_id", flat=True))
    todo = [(t, _payout_lines(t)) for t in transfers if t.pk not in done]
    for _transfer, lines in todo:
        _check_balanced("payout", lines)
    if not todo:
        return []
    entries = JournalEntry.objects.bulk_create(
        JournalEntry(transfer=t, kind="payout", memo=f"tx {tx_hash}") for t, _lines in todo)
    postings, accounts = [], {}
    for (_transfer, lines), entry in zip(todo, entries, strict=True):
        for code, currency, amount in lines:
            if (code, currency) not in accounts:
                accounts[(code, currency)] = ledger_account(code, currency)
            postings.append(Posting(entry=entry, account=accounts[(code, currency)], amount_minor=amount))
    Posting.objects.bulk_create(postings)
    return entries


def _funding_unwound(transfer, *, money_back_from):
    """The funding entry's lines reversed, the money leaving `money_back_from` (the card, or a disputes receivable
    when the bank's chargeback stands in for our refund): fee, conversion and the som owed to the recipient."""
    q = transfer.quote
    total = to_minor(q.source_amount, q.source_currency)
    fee = to_minor(q.fee, q.source_currency)
    som = to_minor(q.target_amount, q.target_currency)
    lines = [(money_back_from, q.source_currency, -total), ("fee_revenue", q.source_currency, fee)]
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


def account_balance(code, currency, partner=None):
    """Debits less credits, in minor units: a house account, or the partner's own account of that code."""
    return Posting.objects.filter(account__code=code, account__currency=currency, account__partner=partner).aggregate(
        s=Sum("amount_minor"))["s"] or 0
