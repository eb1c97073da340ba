"""Staff actions on transfers (run from admin through staff.services: permission, reason, four-eyes, audit trail).
Registered in PaymentsConfig.ready(); each calls the pipeline's service."""

from django.utils.translation import gettext as _

from payments import pipeline, pipeline_cancel, pipeline_refunds, pipeline_rescreen
from payments.errors import TransferNotCancellable, TransferNotPayable
from payments.models import ReviewDecision, Transfer
from payments.services import review
from staff.actions import GuardedAction

S = Transfer.Status


def _held_to_release(transfer):
    if transfer.status != S.HELD:
        raise TransferNotPayable(_("Only held transfers can be released."))


def _held_to_reject(transfer):
    if transfer.status != S.HELD:
        raise TransferNotPayable("Only held transfers can be rejected.")


def _sanctions_hold(transfer):
    """Releasing any held transfer needs a second compliance officer (docs/compliance.md, "Review"): a hold is screening
    saying "this may be a listed person or wallet", and paying one out is the mistake that cannot be undone. Rejecting
    needs one officer: the money goes back to the sender, nothing leaves."""
    return transfer.status == S.HELD


def _release(transfer, *, reason, actor):
    released = pipeline.transfer_release(transfer_id=transfer.pk)
    review.review_decision_record(transfer=released, decision=ReviewDecision.Decision.APPROVED, reason=reason,
                                  actor=actor, permission=RELEASE.permission)


def _reject(transfer, *, reason, actor):
    rejected = pipeline.transfer_reject(transfer_id=transfer.pk, reason=f"rejected by {actor.get_username()}: {reason}")
    review.review_decision_record(transfer=rejected, decision=ReviewDecision.Decision.REJECTED, reason=reason,
                                  actor=actor, permission=REJECT.permission)


def _release_state(transfer):
    """What a second officer approves: the hold as it was asked about, and the evidence (the latest screening result):
    a re-screening in between makes the request stale."""
    return f"{transfer.status}|{transfer.failure_reason}|{review.latest_result_id(transfer)}"


def _settlement_failed(transfer):
    if transfer.status in (S.REFUNDING, S.REFUNDED, S.REFUND_FAILED):
        raise TransferNotPayable(f"Already {transfer.status}: a transfer is refunded once.")
    if transfer.status in (S.AWAITING_FUNDING, S.EXPIRED, S.CANCELLED):
        raise TransferNotPayable("This transfer was never paid: there is nothing to refund.")
    if transfer.status not in (S.SETTLEMENT_FAILED, S.PAYOUT_FAILED):
        raise TransferNotPayable("Only transfers whose settlement or partner payout failed can be refunded here "
                                 "(cancel a transfer before settlement instead).")


def _refund(transfer, *, reason, actor):
    result = pipeline_refunds.transfer_refund(transfer_id=transfer.pk)
    if result.status == S.REFUNDING:
        return "refund asked for; Stripe reports it pending (the transfer becomes refunded when it succeeds)"
    if result.status == S.REFUND_FAILED:
        return f"the refund failed: {result.failure_reason}"
    if result.status != S.REFUNDED:
        raise TransferNotPayable("Its payout may still be mined: not refundable yet.")
    return None


def _cancellable(transfer):
    if transfer.status in pipeline_cancel.CANCEL_TOO_LATE:
        raise TransferNotCancellable(f"Settlement has started ({transfer.status}): it can no longer be cancelled.")
    if not pipeline_cancel.transfer_cancellable(transfer, by_operator=True):
        raise TransferNotCancellable(f"Already {transfer.status}: nothing to cancel.")


def _cancel(transfer, *, reason, actor):
    result = pipeline_cancel.transfer_cancel(transfer_id=transfer.pk, reason="cancelled by an operator", by_operator=True)
    if result.status == S.REFUNDING:
        return "cancelled: refund in full queued"
    return f"cancelled ({result.status})"


RELEASE = GuardedAction(permission="payments.release_transfer", model=Transfer, done="released",
                        check=_held_to_release, perform=_release, four_eyes=_sanctions_hold,
                        state=_release_state)
REJECT = GuardedAction(permission="payments.reject_transfer", model=Transfer, done="rejected (refund queued)",
                       check=_held_to_reject, perform=_reject)
# The refund calls Stripe: outside any transaction (persist, then act), recorded once it returns.
REFUND = GuardedAction(permission="payments.refund_transfer", model=Transfer, done="refunded",
                       check=_settlement_failed, perform=_refund, atomic=False)
# Cancel before settlement: an unpaid transfer's PaymentIntent is cancelled at Stripe (network: not atomic); a paid one
# is refunded in full. The operator's reason goes to the audit trail, not to the transfer the sender sees.
CANCEL = GuardedAction(permission="payments.cancel_transfer", model=Transfer, done="cancelled",
                       check=_cancellable, perform=_cancel, atomic=False)


def _held(transfer):
    if transfer.status != S.HELD:
        raise TransferNotPayable("Only held transfers are screened again from the review queue.")


def _rescreen(transfer, *, reason, actor):
    result = pipeline_rescreen.transfer_rescreen(transfer_id=transfer.pk, trigger=review.MANUAL)
    if result is None:
        raise TransferNotPayable("No longer held: not screened.")
    return f"screened again: {result.decision} ({len(result.hits)} hits); it stays held for a decision"


# A compliance officer screens a held transfer again (the lists in force now): a new result, the transfer stays held.
RESCREEN = GuardedAction(permission="payments.rescreen_transfer", model=Transfer, done="screened again",
                         check=_held, perform=_rescreen)
ACTIONS = (RELEASE, REJECT, REFUND, CANCEL, RESCREEN)
