"""Disputes and early fraud warnings on a transfer's card payment, as Stripe reports them (payments/webhooks.py), and
the chargebacks they book. Part of the transfer pipeline (payments/pipeline.py); a refund that fails because its charge
is disputed records the dispute here (payments/pipeline_refunds.py, refund_apply). See docs/ledger.md."""

import logging

from celery import current_app
from django.db import IntegrityError, transaction

from onchain.api import operator_alert_raise
from payments.models import CardDispute, JournalEntry, Transfer
from payments.services import fraud, ledger, refunds

log = logging.getLogger(__name__)
S = Transfer.Status

# payments.pipeline_refunds.refund_task, by its registered name: that module imports this one (refund_apply records a
# disputed charge's disputes), so this one cannot import it back. The sweeper re-sends a rejected transfer's refund.
REFUND_TASK = "payments.transfer_refund"

NOT_PAID_OUT = (S.FUNDED, S.HELD, S.REJECTED, S.AWAITING_CLAIM)
PAID_OUT = (S.SETTLING, S.COMPLETED, S.SETTLEMENT_FAILED, S.AWAITING_PAYOUT_CONFIRMATION, S.PAYOUT_FAILED)


def card_dispute_record(*, kind, dispute, charge):
    """Stripe reported a dispute (`charge.dispute.created`) or an early fraud warning
    (`radar.early_fraud_warning.created`) on a charge. Runs in the webhook's transaction, once per Stripe object:
    freezes the transfer's sender (email, phone), card (fingerprint) and wallet, raises an operator alert, and
    - a dispute: books the disputed amount from card_clearing to disputes_receivable; a transfer not paid out yet
      ends `charged_back` (the bank took the money back, so nothing is paid and its funding is unwound);
    - a fraud warning: a transfer not paid out yet is rejected and refunded in full.
    `dispute` is a stripe_rail.DisputeState, `charge` a ChargeState read from Stripe (or None)."""
    intent_id = dispute.payment_intent or (charge.payment_intent if charge else "")
    candidates = Transfer.objects.select_for_update(of=("self",)).select_related("quote")
    transfer = (candidates.filter(payment_intent_id=intent_id).first() if intent_id else None) or \
        candidates.filter(charge_id=dispute.charge).first()
    try:
        with transaction.atomic():
            CardDispute.objects.create(stripe_id=dispute.id, kind=kind, transfer=transfer, charge_id=dispute.charge,
                                       payment_intent_id=intent_id, amount_minor=dispute.amount,
                                       currency=dispute.currency, reason=dispute.reason)
    except IntegrityError:
        log.info("card_dispute_duplicate stripe_id=%s", dispute.id)
        return transfer
    what = "dispute" if kind == CardDispute.Kind.DISPUTE else "early fraud warning"
    if transfer is None:
        operator_alert_raise(kind="funding", message=f"Stripe {what} {dispute.id} on charge {dispute.charge}: "
                                                     "no transfer of ours has this payment")
        return None
    fingerprint = (charge.card.fingerprint if charge and charge.card else "") or transfer.card_fingerprint
    frozen = fraud.identities_freeze(pairs=fraud.transfer_identities(transfer, card_fingerprint=fingerprint),
                                     reason=f"{what} {dispute.id} ({dispute.reason or 'no reason given'})",
                                     source=dispute.id, transfer=transfer)
    status = transfer.status
    if kind == CardDispute.Kind.DISPUTE:
        action = _dispute_apply(transfer, dispute)
    else:
        action = _fraud_warning_apply(transfer, dispute)
    operator_alert_raise(kind="funding", message=(
        f"transfer {transfer.id} ({status}): Stripe {what} {dispute.id} ({dispute.reason or 'no reason given'}); "
        f"{action}; froze {', '.join(f.kind for f in frozen) or 'nothing new'}")[:500])
    log.error("card_dispute transfer_id=%s stripe_id=%s kind=%s action=%s", transfer.id, dispute.id, kind, action)
    return transfer


def _dispute_apply(transfer, dispute):
    amount = dispute.amount if dispute.amount is not None else transfer.source_minor
    currency = dispute.currency or transfer.quote.source_currency
    if transfer.status in NOT_PAID_OUT or _refund_not_booked(transfer):
        ledger.ledger_post_dispute(transfer=transfer, amount_minor=amount, currency=currency, dispute_id=dispute.id)
        ledger.ledger_post_charged_back(transfer=transfer, dispute_id=dispute.id)
        transfer.mark_charged_back(f"card payment disputed ({dispute.reason or 'no reason given'}) before payout: "
                                   "nothing paid out")
        transfer.save()
        return "not paid out: charged back, nothing will be paid, its funding unwound"
    if transfer.status == S.REFUNDING and refunds.returned_capture(transfer) and not _returned(transfer):
        returned_capture_charged_back(transfer, stripe_id=dispute.id, amount=dispute.amount, currency=currency)
        return "a refused capture not refunded yet: charged back, its capture returned through the chargeback"
    if transfer.status == S.REFUND_FAILED:
        return refund_owed_charged_back(transfer, dispute_id=dispute.id, amount=amount, currency=currency)
    if transfer.status == S.REFUNDED:
        ledger.ledger_post_dispute(transfer=transfer, amount_minor=amount, currency=currency, dispute_id=dispute.id)
        return ("already refunded: the disputed amount is booked to disputes_receivable; answer the dispute in Stripe "
                "with the refund as evidence")
    if transfer.status in PAID_OUT:
        ledger.ledger_post_dispute(transfer=transfer, amount_minor=amount, currency=currency, dispute_id=dispute.id)
        return "already paid out: the disputed amount is booked to disputes_receivable; answer the dispute in Stripe"
    if transfer.status == S.AWAITING_FUNDING:
        return "not funded yet: the funding check refuses it and it ends charged back"
    return "nothing to book"


def _refund_not_booked(transfer):
    """A funded transfer being refunded whose refund has not succeeded: the dispute stands in for it (Stripe fails a
    pending refund of a disputed charge), so it is charged back like a transfer not paid out."""
    return (transfer.status == S.REFUNDING and JournalEntry.objects.filter(transfer=transfer, kind="funding").exists()
            and not JournalEntry.objects.filter(transfer=transfer, kind="refund").exists())


def refund_owed_charged_back(transfer, *, dispute_id, amount, currency):
    """A transfer whose refund failed (owed to the sender), then disputed: the bank returned the money, so what it
    took is owed no more; all of it → `charged_back`. Once per transfer (its entries are unique per step)."""
    if JournalEntry.objects.filter(transfer=transfer, kind="refund_owed_charged_back").exists():
        return "its refund had failed and a chargeback was already booked against it"
    ledger.ledger_post_dispute(transfer=transfer, amount_minor=amount, currency=currency, dispute_id=dispute_id)
    owed = -ledger.transfer_account_total(transfer=transfer, code="refunds_payable", currency=currency)
    taken = min(amount, owed)
    if taken > 0:
        ledger.ledger_post_refund_owed_charged_back(transfer=transfer, amount_minor=taken, currency=currency,
                                                    dispute_id=dispute_id)
    if taken < owed:
        return (f"its refund had failed: the bank took {taken} of the {owed} (minor units) owed back to the sender; "
                "the rest is still owed (docs/runbook.md, refund failed)")
    transfer.mark_charged_back(f"{transfer.failure_reason}; then charged back by the card's bank ({dispute_id}): "
                               "nothing is owed to the sender any more")
    transfer.save()
    return "its refund had failed: the chargeback returned the money, nothing is owed to the sender any more"


def _returned(transfer):
    prefix = refunds.returned_capture(transfer)
    return JournalEntry.objects.filter(transfer=transfer, kind__in=[f"{prefix}_refund", f"{prefix}_chargeback"]).exists()


def _fraud_warning_apply(transfer, warning):
    if transfer.status in (S.FUNDED, S.HELD, S.AWAITING_CLAIM):
        transfer.mark_rejected("refused by our risk checks (card payment reported as fraud)")
        transfer.save()
        transaction.on_commit(lambda: current_app.send_task(REFUND_TASK, args=[str(transfer.id)]))
        return "not paid out: rejected, full refund scheduled"
    if transfer.status == S.AWAITING_FUNDING:
        return "not funded yet: the funding check refunds it"
    if transfer.status in PAID_OUT:
        return "already paid out: consider refunding it in Stripe before a dispute comes (docs/runbook.md)"
    return "nothing to do"


def returned_capture_charged_back(transfer, *, stripe_id, amount, currency):
    """A capture refused at funding, then disputed: the bank's chargeback returns it instead of our refund."""
    prefix = refunds.returned_capture(transfer)
    transfer.mark_charged_back(f"{transfer.failure_reason}; charged back by the card's bank ({stripe_id})")
    transfer.save()
    ledger.ledger_post_returned_capture(
        transfer=transfer, amount_minor=amount or transfer.source_minor,
        currency=currency or transfer.quote.source_currency, refused=prefix == "refused", chargeback=stripe_id)
