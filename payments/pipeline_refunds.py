"""Refunds: how a transfer moves while its money goes back to whoever paid. Part of the transfer pipeline
(payments/pipeline.py).

Every refund goes through `refunding`: the decision is committed first, then the rail (payments/services/refunds.py,
chosen in one place) is asked, with a key derived from the transfer; only a refund whose own status is `succeeded`
makes the transfer `refunded` and posts its entry. Pending refunds are followed to the end by the webhook (refund.*,
charge.refunded) and by the sweeper (lost webhooks); a failed one (also after it had succeeded) ends `refund_failed`
with an operator alert. A refund refused or failed because the card's bank disputed the charge is a chargeback
instead (payments/pipeline_disputes.py). The refund step's Celery task is at the bottom, beside the code. See
docs/states.md.
"""

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.db.models import Q

from onchain.api import operator_alert_raise, payout_is_dead
from payments.errors import FundingUnavailable, ProcessorRequestRefused
from payments.models import CardDispute, Transfer
from payments.pipeline_disputes import card_dispute_record, refund_owed_charged_back, returned_capture_charged_back
from payments.pipeline_steps import transfer_locked
from payments.providers import stripe_rail
from payments.services import refunds

log = logging.getLogger(__name__)
S = Transfer.Status


def _refundable(transfer):
    """Rejected transfers, and failed settlements whose payout can no longer pay (failed, never in a live batch)."""
    if transfer.status == S.REJECTED:
        return True
    if transfer.status == S.SETTLEMENT_FAILED:
        return payout_is_dead(reference=transfer.payout_reference)
    # The payout partner could not pay the person: the sender is refunded once treasury has recorded the KGST back
    # from the partner (`partner_payout_returned`); before that a partner that in fact paid would be paid for twice.
    if transfer.status == S.PAYOUT_FAILED:
        payout = getattr(transfer, "partner_payout", None)
        return payout is not None and payout.returned_at is not None
    return False


def transfer_refund(*, transfer_id):
    """Refund in full, once. A rejected transfer or a dead settlement moves to `refunding` (committed before anything
    is asked); a `refunding` transfer gets its refund asked for (or, once recorded, read again) and applied
    (refund_apply). Anything else is left as it is: an unfunded transfer has nothing to refund, a refunded one is not
    refunded twice. Safe to run again at any point: the refund's key derives from the transfer."""
    transfer = Transfer.objects.select_related("quote").get(pk=transfer_id)
    if not transfer.livemode:
        return transfer  # a sandbox transfer took no money: nothing to give back (transfer_cancel ends it)
    if transfer.status in (S.REJECTED, S.SETTLEMENT_FAILED, S.PAYOUT_FAILED):
        with transaction.atomic():
            transfer = transfer_locked(transfer_id)
            if not _refundable(transfer):
                return transfer
            try:
                refunds.refund_rail(transfer)
            except refunds.RefundRailMissing as exc:
                log.error("transfer_refund_no_rail transfer_id=%s %s", transfer.id, exc.detail)
                return transfer
            transfer.mark_refunding()
            transfer.save()
    if transfer.status != S.REFUNDING:
        return transfer
    try:
        rail = refunds.refund_rail(transfer)
    except refunds.RefundRailMissing as exc:
        log.error("transfer_refund_no_rail transfer_id=%s %s", transfer.id, exc.detail)
        return transfer
    try:
        refund = rail.retrieve(transfer.refund_id) if transfer.refund_id else rail.create(transfer)
    except ProcessorRequestRefused as exc:
        if _charge_disputed(transfer) and not CardDispute.objects.filter(
                kind=CardDispute.Kind.DISPUTE, payment_intent_id=transfer.payment_intent_id).exists():
            # Stripe refuses refunds of a disputed charge: the bank is returning the money, not a failed refund. Until
            # the dispute's event is here the sweeper asks again; once it is, _refund_refused charges the transfer back.
            log.warning("transfer_refund_charge_disputed transfer_id=%s", transfer.id)
            return transfer
        return _refund_refused(transfer_id, exc.detail)
    return refund_apply(refund=refund, transfer_id=transfer_id)


def _charge_disputed(transfer):
    if not transfer.payment_intent_id:
        return False
    charge_id = transfer.charge_id or stripe_rail.payment_intent_retrieve(transfer.payment_intent_id).charge_id
    return bool(charge_id) and stripe_rail.charge_retrieve(charge_id).disputed


def refund_apply(*, refund, transfer_id=None, disputed=False):
    """Apply a refund as the rail holds it (a stripe_rail.RefundState read from the API), whoever read it: the refund
    step, the webhook or the sweeper. Under the row lock: the refund id is recorded; `succeeded` → `refunded` and the
    refund entry; `failed`/`canceled` → `refund_failed`, the `refund_failed` entry and an operator alert (from
    `refunding`, or from `refunded` when a refund that had succeeded fails later); pending changes nothing. Applying
    the same state again changes nothing.
    Stripe fails a refund of a charge the card's bank disputed: then the charge's disputes are read from Stripe and
    recorded (card_dispute_record), so the chargeback is booked in place of a failed refund owed to the sender
    (booking the refund as owed would have an operator pay the sender a second time). `disputed`: what
    disputes_behind(refund) read, when the caller read it outside its transaction (the webhook); else read here."""
    if disputed is False:
        disputed = disputes_behind(refund)
    with transaction.atomic():
        candidates = Transfer.objects.select_for_update(of=("self",)).select_related("quote")
        if transfer_id:
            transfer = candidates.filter(pk=transfer_id).first()
        else:
            # Ours by its id; or a refunding transfer whose refund our own commit has not recorded yet (the webhook can
            # arrive before the refund step commits).
            transfer = candidates.filter(refund_id=refund.id).first()
            if transfer is None and refund.payment_intent:
                transfer = candidates.filter(payment_intent_id=refund.payment_intent, status=S.REFUNDING,
                                             refund_id="").first()
                if transfer is not None and not refunds.refund_is_ours_in_full(transfer, refund):
                    log.warning("refund_not_ours transfer_id=%s refund=%s amount=%s %s", transfer.id, refund.id,
                                refund.amount, refund.currency)
                    return transfer
        if transfer is None:
            log.warning("refund_unknown refund=%s payment_intent=%s", refund.id, refund.payment_intent)
            return None
        if transfer.refund_id and transfer.refund_id != refund.id:
            log.warning("refund_not_ours transfer_id=%s refund=%s ours=%s", transfer.id, refund.id, transfer.refund_id)
            return transfer
        if transfer.status == S.REFUNDING:
            transfer.refund_id = refund.id
            if refund.succeeded:
                transfer.mark_refunded(refund.id)
                transfer.save()
                refunds.refund_rail(transfer).book_succeeded(transfer=transfer, refund=refund)
                log.info("transfer_refunded transfer_id=%s refund=%s", transfer.id, refund.id)
            elif refund.failed and disputed:
                # Nothing is owed: the dispute (recorded below, in this transaction) charges the transfer back.
                transfer.save(update_fields=["refund_id", "updated_at"])
                log.warning("transfer_refund_failed_disputed transfer_id=%s refund=%s", transfer.id, refund.id)
            elif refund.failed:
                _refund_failed(transfer, refund.id, f"refund {refund.id} {refund.status} "
                                                    f"({refund.failure_reason or 'no reason given'})")
            else:
                transfer.save(update_fields=["refund_id", "updated_at"])  # still pending: looked at now
        elif transfer.status == S.REFUNDED and refund.failed:
            # Disputed: owed for a moment only, the dispute below takes it off refunds_payable (no alert to pay it).
            _refund_failed(transfer, refund.id, f"refund {refund.id} {refund.status} after it had succeeded "
                                                f"({refund.failure_reason or 'no reason given'})", alert=not disputed)
        else:
            return transfer
        if disputed:
            charge, disputes = disputed
            for dispute in disputes:
                card_dispute_record(kind=CardDispute.Kind.DISPUTE, dispute=dispute, charge=charge)
            transfer = Transfer.objects.select_related("quote").get(pk=transfer.pk)
            if transfer.status == S.REFUND_FAILED and disputes:
                # Its dispute was recorded while the refund still stood (booked then as a refunded transfer's).
                first = disputes[0]
                action = refund_owed_charged_back(
                    transfer, dispute_id=first.id, currency=first.currency or transfer.quote.source_currency,
                    amount=first.amount if first.amount is not None else transfer.source_minor)
                operator_alert_raise(kind="funding", message=f"transfer {transfer.id}: refund {refund.id} failed after "
                                                             f"dispute {first.id}: {action}"[:500])
                transfer = Transfer.objects.select_related("quote").get(pk=transfer.pk)
    return transfer


def disputes_behind(refund):
    """(charge, its disputes) read from Stripe when a failed refund's charge is disputed; None otherwise. A disputed
    charge whose dispute is not listed yet leaves the transfer `refunding`, asked again by the sweeper."""
    if not refund.failed or not refund.charge:
        return None
    charge = stripe_rail.charge_retrieve(refund.charge)
    if not charge.disputed:
        return None
    return charge, stripe_rail.disputes_of_charge(refund.charge)


def _refund_failed(transfer, refund_id, why, *, alert=True):
    transfer.mark_refund_failed(f"{why}: the money is back with us, owed to the sender")
    transfer.save()
    refunds.refund_rail(transfer).book_failed(transfer=transfer, refund_id=refund_id, note=why)
    if alert:
        operator_alert_raise(kind="funding", message=f"transfer {transfer.id}: refund failed: {why}; the money is "
                                                     "owed to the sender (docs/runbook.md, refund failed)"[:500])
    log.error("transfer_refund_failed transfer_id=%s refund=%s %s", transfer.id, refund_id, why)


def _refund_refused(transfer_id, detail):
    """The rail refused to make the refund at all (e.g. Stripe: the charge was disputed, or is already refunded). A
    dispute moves the transfer itself (`charged_back`); anything else is a failed refund for an operator."""
    with transaction.atomic():
        transfer = transfer_locked(transfer_id)
        if transfer.status != S.REFUNDING or transfer.refund_id:
            return transfer
        disputed = CardDispute.objects.filter(kind=CardDispute.Kind.DISPUTE,
                                              payment_intent_id=transfer.payment_intent_id).first()
        if disputed and refunds.returned_capture(transfer):
            returned_capture_charged_back(transfer, stripe_id=disputed.stripe_id, amount=disputed.amount_minor,
                                           currency=disputed.currency)
            return transfer
        if disputed:
            return transfer  # the dispute itself charges a funded transfer back (card_dispute_record)
        _refund_failed(transfer, "", f"the refund was refused: {detail}")
    return transfer

def refunds_due(*, now):
    """Refunding transfers to look at again: a refund not asked for yet (its task lost after commit, or the rail did
    not answer) after 10 s; a pending refund every REFUND_POLL_SECONDS (its webhook may be lost)."""
    return Transfer.objects.filter(status=S.REFUNDING, livemode=True).filter(
        Q(refund_id="", updated_at__lt=now - timedelta(seconds=10))
        | Q(updated_at__lt=now - timedelta(seconds=settings.REFUND_POLL_SECONDS))).order_by("updated_at")


# The refund step's task: thin, named, retried only on the transient error listed. ---------------------------------

@shared_task(name="payments.transfer_refund", autoretry_for=(FundingUnavailable,), retry_backoff=2, max_retries=20)
def refund_task(transfer_id):
    transfer_refund(transfer_id=transfer_id)
