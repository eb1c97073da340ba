"""How a transfer's money goes back to whoever paid: the refund rail, chosen in one place (`refund_rail`), and the
ledger entries of each outcome. The transfer's status moves in payments.pipeline_refunds (transfer_refund, refund_apply);
docs/ledger.md ("Refunds and cancellation") lists the entries.

A rail asks for the refund (`create`, idempotent per transfer), reads it again (`retrieve`), and books its outcome:
`book_succeeded` when the refund's own status is `succeeded`, `book_failed` when it failed or was cancelled (also
after it had succeeded: card refunds can fail days later). A pending refund books nothing."""

import logging

from payments.errors import PaymentsError
from payments.models import JournalEntry, Posting, Transfer
from payments.providers import stripe_rail
from payments.services import balances
from payments.services.ledger import (
    _funding_unwound,
    ledger_post,
    ledger_post_refund,
    ledger_post_returned_capture,
)

log = logging.getLogger(__name__)

# Liability: money that came back to us after a refund failed, owed to the sender until an operator returns it.
REFUNDS_PAYABLE = "refunds_payable"
RETURNED_CAPTURES = {"refused_capture": "refused", "unmatched_capture": "unmatched"}


class RefundRailMissing(PaymentsError):
    """Nothing can return this transfer's money automatically (no card payment, and no other rail yet)."""

    status = 409
    code = "refund-rail-missing"
    title = "No refund rail for this transfer"


def returned_capture(transfer):
    """'refused' or 'unmatched' when the payment was captured but never funded the transfer (refused at funding; its
    capture sits in a suspense account), else None (a funded transfer: its funding entry is unwound)."""
    kind = (JournalEntry.objects.filter(transfer=transfer, kind__in=RETURNED_CAPTURES)
            .values_list("kind", flat=True).first())
    return RETURNED_CAPTURES.get(kind)


def refund_is_ours_in_full(transfer, refund):
    """A refund of the transfer's PaymentIntent that we did not record by id (its webhook came before our commit)
    is ours only if it returns what we would: the whole payment in its currency (a funded transfer's total, or a
    refused capture's captured amount). A partial refund made in Stripe's dashboard is not."""
    prefix = returned_capture(transfer)
    if prefix:
        capture = Posting.objects.filter(entry__transfer=transfer, entry__kind=f"{prefix}_capture",
                                         account__code="card_clearing").select_related("account").first()
        if capture is None:
            return False
        amount, currency = capture.amount_minor, capture.account.currency
    else:
        amount, currency = transfer.source_minor, transfer.quote.source_currency
    return refund.amount == amount and (refund.currency or "").upper() == currency.upper()


def capture_book_returned(*, transfer, amount_minor, currency, refused):
    """A captured payment we do not accept, booked from card_clearing into its suspense account (refused_funds or
    unmatched_funds) when its refund is decided; the refund's own entry follows when the refund succeeds."""
    prefix, account = ("refused", "refused_funds") if refused else ("unmatched", "unmatched_funds")
    return ledger_post(transfer=transfer, kind=f"{prefix}_capture", memo=f"PaymentIntent {transfer.payment_intent_id}",
                       lines=[("card_clearing", currency, amount_minor), (account, currency, -amount_minor)])


def _posted(transfer, kind):
    return JournalEntry.objects.filter(transfer=transfer, kind=kind).exists()


class CardRefundRail:
    """A card payment goes back through a Stripe refund of the transfer's PaymentIntent."""

    name = "card"

    def create(self, transfer):
        return stripe_rail.refund_create(transfer_id=transfer.id, payment_intent_id=transfer.payment_intent_id)

    def retrieve(self, refund_id):
        return stripe_rail.refund_retrieve(refund_id)

    def book_succeeded(self, *, transfer, refund):
        """The refund succeeded: a funded transfer's funding entry is unwound (`refund`); a capture refused at funding
        leaves its suspense account (`refused_refund` / `unmatched_refund`)."""
        prefix = returned_capture(transfer)
        if prefix:
            return ledger_post_returned_capture(transfer=transfer, amount_minor=refund.amount, currency=refund.currency,
                                                refused=prefix == "refused", refund_id=refund.id)
        return ledger_post_refund(transfer=transfer, refund_id=refund.id)

    def book_failed(self, *, transfer, refund_id, note):
        """The refund failed: the money is at Stripe again (or never left), owed to the sender: `refund_failed`
        credits refunds_payable. Whichever way it got there, the transfer's journal ends the same: card_clearing
        holds the payment, refunds_payable owes it, every other account of the transfer is back to zero."""
        prefix = returned_capture(transfer)
        if prefix:
            capture = Posting.objects.filter(entry__transfer=transfer, entry__kind=f"{prefix}_capture",
                                             account__code="card_clearing").select_related("account").get()
            amount, currency = capture.amount_minor, capture.account.currency
            source = "card_clearing" if _posted(transfer, f"{prefix}_refund") else f"{prefix}_funds"
            lines = [(source, currency, amount), (REFUNDS_PAYABLE, currency, -amount)]
        elif _posted(transfer, "refund"):
            total, currency = transfer.source_minor, transfer.quote.source_currency
            lines = [("card_clearing", currency, total), (REFUNDS_PAYABLE, currency, -total)]
        else:
            lines = _funding_unwound(transfer, money_back_from=REFUNDS_PAYABLE)
        return ledger_post(transfer=transfer, kind="refund_failed", lines=lines,
                           memo=f"refund {refund_id or '(refused)'}: {note}"[:200])


CARD = CardRefundRail()


class BalanceRefundRail:
    """A transfer funded from a partner's prefunded balance goes back to that balance: no processor is asked, so the
    refund exists and has succeeded as soon as it is asked for (its id names the transfer, so asking again gives the
    same one). Its entry is posted when it is applied, under the transfer's row lock."""

    name = "balance"

    def _state(self, transfer):
        return stripe_rail.RefundState(id=f"balance:{transfer.id}", status="succeeded", amount=transfer.source_minor,
                                       currency=transfer.quote.source_currency, payment_intent="", charge="")

    def create(self, transfer):
        return self._state(transfer)

    def retrieve(self, refund_id):
        transfer = Transfer.objects.select_related("quote").get(pk=refund_id.removeprefix("balance:"))
        return self._state(transfer)

    def book_succeeded(self, *, transfer, refund):
        return balances.balance_refund_book(transfer=transfer)

    def book_failed(self, *, transfer, refund_id, note):
        raise RefundRailMissing(f"A balance refund cannot fail (transfer {transfer.id}, {refund_id}: {note}).")


BALANCE = BalanceRefundRail()


def refund_rail(transfer):
    """The one place that chooses how a transfer's money goes back. A card payment (the transfer has a
    PaymentIntent) goes back through Stripe; a balance-funded one to the partner's balance; any other transfer
    never calls anyone."""
    if transfer.funding_method == Transfer.FundingMethod.BALANCE:
        return BALANCE
    if transfer.payment_intent_id:
        return CARD
    raise RefundRailMissing(f"Transfer {transfer.id} has no card payment and no other refund rail.")
