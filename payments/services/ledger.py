"""Double-entry ledger: every movement is one balanced journal entry, posted once per step."""

from collections import defaultdict

from django.db import IntegrityError, transaction

from payments.errors import PaymentsError
from payments.models import JournalEntry, LedgerAccount, Posting, to_minor


class LedgerImbalance(PaymentsError):
    status = 500
    code = "ledger-imbalance"
    title = "Unbalanced ledger entry"


def ledger_post(*, transfer, kind, lines, memo=""):
    """Post `lines` [(account_code, currency, amount_minor)] (debit +, credit −) once for (transfer, kind).

    Returns the entry; posting the same step again returns the first entry and changes nothing.
    """
    totals = defaultdict(int)
    for _code, currency, amount in lines:
        if not isinstance(amount, int) or amount == 0:
            raise LedgerImbalance(f"Posting amounts are non-zero integers, got {amount!r}.")
        totals[currency] += amount
    if any(totals.values()):
        raise LedgerImbalance(f"Entry {kind} does not balance: {dict(totals)}")
    existing = JournalEntry.objects.filter(transfer=transfer, kind=kind).first()
    if existing:
        return existing
    try:
        with transaction.atomic():
            entry = JournalEntry.objects.create(transfer=transfer, kind=kind, memo=memo)
            Posting.objects.bulk_create(
                Posting(entry=entry, account=_account(code, currency), amount_minor=amount)
                for code, currency, amount in lines
            )
    except IntegrityError:
        return JournalEntry.objects.get(transfer=transfer, kind=kind)
    return entry


def _account(code, currency):
    account, _ = LedgerAccount.objects.get_or_create(code=code, currency=currency)
    return account


def ledger_post_funding(*, transfer):
    """Card money captured: the fee is earned, the rest buys som owed to the recipient."""
    q = transfer.quote
    total = to_minor(q.source_amount, q.source_currency)
    fee = to_minor(q.fee, q.source_currency)
    som = to_minor(q.target_amount, q.target_currency)
    lines = [("card_clearing", q.source_currency, total), ("fee_revenue", q.source_currency, -fee)]
    if total - fee:
        lines.append(("fx_position", q.source_currency, -(total - fee)))
    lines += [("fx_position", q.target_currency, som), ("recipient_payable", q.target_currency, -som)]
    return ledger_post(transfer=transfer, kind="funding", lines=lines, memo=f"PaymentIntent {transfer.payment_intent_id}")


def ledger_post_payout(*, transfer, tx_hash):
    """KGST left the hot wallet and is final: the debt to the recipient is paid from the float."""
    q = transfer.quote
    som = to_minor(q.target_amount, q.target_currency)
    return ledger_post(transfer=transfer, kind="payout", memo=f"tx {tx_hash}",
                       lines=[("recipient_payable", q.target_currency, som), ("kgst_float", q.target_currency, -som)])


def ledger_post_payouts(*, transfers, tx_hash):
    """`ledger_post_payout` for a whole batch in three statements: one balanced entry per transfer, once."""
    done = set(JournalEntry.objects.filter(transfer__in=transfers, kind="payout").values_list("transfer_id", flat=True))
    todo = [t for t in transfers if t.pk not in done]
    if not todo:
        return []
    entries = JournalEntry.objects.bulk_create(
        JournalEntry(transfer=t, kind="payout", memo=f"tx {tx_hash}") for t in todo)
    postings, accounts = [], {}
    for transfer, entry in zip(todo, entries, strict=True):
        q = transfer.quote
        som = to_minor(q.target_amount, q.target_currency)
        for code, amount in (("recipient_payable", som), ("kgst_float", -som)):
            account = accounts.get((code, q.target_currency)) or _account(code, q.target_currency)
            accounts[(code, q.target_currency)] = account
            postings.append(Posting(entry=entry, account=account, amount_minor=amount))
    Posting.objects.bulk_create(postings)
    return entries


def ledger_post_refund(*, transfer, refund_id):
    """Money returned to the card in full, fee included; the som leg is unwound."""
    q = transfer.quote
    total = to_minor(q.source_amount, q.source_currency)
    fee = to_minor(q.fee, q.source_currency)
    som = to_minor(q.target_amount, q.target_currency)
    lines = [("card_clearing", q.source_currency, -total), ("fee_revenue", q.source_currency, fee)]
    if total - fee:
        lines.append(("fx_position", q.source_currency, total - fee))
    lines += [("fx_position", q.target_currency, -som), ("recipient_payable", q.target_currency, som)]
    return ledger_post(transfer=transfer, kind="refund", lines=lines, memo=f"refund {refund_id}")


def account_balance(code, currency):
    from django.db.models import Sum

    return Posting.objects.filter(account__code=code, account__currency=currency).aggregate(
        s=Sum("amount_minor"))["s"] or 0
