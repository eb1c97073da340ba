"""Cancelling a transfer before settlement, by its sender or an operator: an unpaid one ends `cancelled`, a paid one
is refunded in full (payments/pipeline_refunds.py). Part of the transfer pipeline: a payment found to have succeeded
meanwhile is funded first (payments/pipeline.py), so this module stands above it. See docs/states.md.
"""

import logging

from django.db import transaction
from django.utils.translation import gettext as _

from payments.errors import TransferNotCancellable
from payments.models import Transfer
from payments.pipeline import payment_intent_stop, transfer_funding_refuse, transfer_mark_funded
from payments.pipeline_refunds import refund_task
from payments.pipeline_steps import step_after_commit, transfer_locked
from payments.providers import stripe_rail
from payments.services import refunds, us_remittance

log = logging.getLogger(__name__)
S = Transfer.Status

CANCEL_TOO_LATE = (S.SETTLING, S.COMPLETED, S.SETTLEMENT_FAILED, S.AWAITING_PAYOUT_CONFIRMATION, S.PAYOUT_FAILED)
# Already stopped: a cancel answers with the transfer as it is (a second cancel is not an error).
CANCEL_DONE = (S.CANCELLED, S.EXPIRED, S.REJECTED, S.REFUNDING, S.REFUNDED, S.REFUND_FAILED, S.CHARGED_BACK)


def transfer_cancellable(transfer, *, by_operator=False):
    """True while a cancel would still stop the transfer: before settlement, unpaid or funded; a transfer `held` for
    compliance review only by an operator (its review decides: a true sanctions match must stay blocked, and
    returning it on the sender's request would undo the hold)."""
    if by_operator:
        return transfer.status in (S.AWAITING_FUNDING, S.FUNDED, S.HELD, S.AWAITING_CLAIM)
    # An unclaimed transfer was never paid out: its sender may take it back after the US window too.
    return transfer.status == S.AWAITING_CLAIM or (
        transfer.status in (S.AWAITING_FUNDING, S.FUNDED) and not us_remittance.cancel_window_closed(transfer))


def under_review_message():
    # Neutral on purpose: the sender is not told why (no tipping-off about a sanctions match).
    return _("This transfer is being checked and cannot be cancelled right now. We will let you know the outcome; "
             "for help, contact support.")


def _too_late_message():
    return _("This transfer can no longer be cancelled: the money is already on its way to the recipient.")


def transfer_cancel(*, transfer_id, reason, by_operator=False):
    """Cancel before settlement, by the sender (API, web) or an operator (admin, `by_operator`; `reason` says who and
    why). A `held` transfer is cancelled by an operator only: the sender's cancel is TransferNotCancellable (409).
    - awaiting_funding: its PaymentIntent is cancelled first, so no late payment can land; the transfer ends
      `cancelled`, nothing posted. If the payment turns out to have succeeded, the transfer is funded and the cancel
      becomes a refund; while the payment is being processed the cancel is refused (try again).
    - funded or held: `refunding` (committed with the reason), and the refund task returns the money in full.
    - already stopped (cancelled, expired, rejected, refunding, refunded, …): returned as it is.
    - settling, completed, settlement_failed: TransferNotCancellable (409), nothing changes.
    - a USD card transfer (US remittance rule) whose cancellation window has closed: the sender's cancel is
      TransferNotCancellable (409); an operator's still goes through.
    Stripe is called outside any transaction; a Stripe that does not answer raises FundingUnavailable (503)."""
    transfer = Transfer.objects.select_related("quote").get(pk=transfer_id)
    if transfer.status in CANCEL_TOO_LATE:
        raise TransferNotCancellable(_too_late_message())
    if transfer.status in CANCEL_DONE:
        return transfer
    if transfer.status == S.HELD and not by_operator:
        raise TransferNotCancellable(under_review_message())
    if transfer.status == S.AWAITING_FUNDING:
        stopped = payment_intent_stop(transfer)
        if stopped == "processing":
            raise TransferNotCancellable(_("Your card payment is being processed right now. Please try again in a "
                                           "few minutes."))
        if stopped == "succeeded":
            intent = stripe_rail.payment_intent_retrieve(transfer.payment_intent_id)
            transfer = transfer_mark_funded(payment_intent=intent) or transfer
            if transfer.status == S.AWAITING_FUNDING:  # a payment we refuse: it is refunded anyway
                return transfer_funding_refuse(transfer_id=transfer_id)
    with transaction.atomic():
        transfer = transfer_locked(transfer_id)
        if transfer.status == S.AWAITING_FUNDING:
            transfer.mark_cancelled(reason)
            transfer.save()
            log.info("transfer_cancelled transfer_id=%s reason=%s", transfer.id, reason)
        elif transfer.status == S.HELD and not by_operator:  # held while we asked Stripe
            raise TransferNotCancellable(under_review_message())
        elif transfer.status == S.FUNDED and not by_operator and us_remittance.cancel_window_closed(transfer):
            raise TransferNotCancellable(us_remittance.window_closed_message())  # under the lock: no race at 30:00
        elif transfer.status in (S.FUNDED, S.HELD, S.AWAITING_CLAIM) and not transfer.livemode:
            # The sandbox took no money: refunded at once, no rail, no ledger.
            transfer.mark_refunding(reason)
            transfer.mark_refunded(refund_id="sandbox")
            transfer.save()
            log.info("sandbox_transfer_cancelled_refunded transfer_id=%s", transfer.id)
        elif transfer.status in (S.FUNDED, S.HELD, S.AWAITING_CLAIM):
            refunds.refund_rail(transfer)  # refuses (nothing changes) when no rail can return the money
            transfer.mark_refunding(reason)
            transfer.save()
            step_after_commit(refund_task, transfer.id)
            log.info("transfer_cancelled_refunding transfer_id=%s reason=%s", transfer.id, reason)
        elif transfer.status in CANCEL_TOO_LATE:
            raise TransferNotCancellable(_too_late_message())
    return transfer
