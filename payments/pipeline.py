"""The transfer state machine's driver: what moves a transfer forward, and what runs next.

quote → awaiting_funding → funded → (screening) → settling → completed
Failure paths: expired (unfunded), held (review), rejected → refunded, settlement_failed.
The transitions themselves are guarded on the model (`Transfer.mark_*`, `Transfer.objects.mark_completed`);
this module takes the row lock, applies one transition, posts the ledger entry, and schedules the next step
after commit. The Celery tasks for those steps live at the bottom of this module, beside the code that
schedules them (payments/tasks.py holds only the periodic entry points). See docs/states.md.
"""

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from onchain.api import operator_alert_raise, payout_is_dead, payout_request
from onchain.errors import ChainUnavailable, SettlementNotConfigured
from payments.errors import CardRefused, FundingUnavailable, ProcessorRequestRefused, ScreeningUndecided, TransferNotPayable
from payments.models import Transfer
from payments.providers import stripe_rail
from payments.services import ledger
from payments.services.screening import CLEAR, HOLD, REJECT, screening_check
from payments.services.transfers import transfer_funding_prepare

log = logging.getLogger(__name__)
S = Transfer.Status


def _locked(transfer_id):
    return Transfer.objects.select_for_update(of=("self",)).select_related("quote").get(pk=transfer_id)


def _after_commit(task, transfer_id):
    # The sweeper re-derives the step from the table if this enqueue is lost (a crash right after the commit).
    transaction.on_commit(lambda: task.delay(str(transfer_id)))


# Funding -----------------------------------------------------------------------------------------

def transfer_pay_card(*, transfer, card_token):
    """Web flow: the browser tokenised the card with Stripe.js; refuse cards from refused countries
    before charging, then set the card on the PaymentIntent and confirm it."""
    if transfer.status != S.AWAITING_FUNDING or not transfer.payment_intent_id:
        raise TransferNotPayable(_("This transfer is not waiting for a payment."))
    try:
        country, method_id = stripe_rail.card_country(card_token)
    except ProcessorRequestRefused as exc:
        raise CardRefused(_("The card details could not be read: please enter them again."), field="card") from exc
    if country in settings.CARD_COUNTRIES_REFUSED:
        raise CardRefused(_("Cards issued in Russia cannot be used for international transfers. "
                            "Please pay with a card issued in another country."), field="card")
    try:
        # A declined card raises CardDeclined (a CardRefused on the card field) with the issuer's message.
        intent = stripe_rail.payment_intent_pay(transfer_id=transfer.id, payment_intent_id=transfer.payment_intent_id,
                                                payment_method_id=method_id)
    except ProcessorRequestRefused:
        # A double submit: the first confirm already went through (or is in flight). Ask Stripe what stands.
        intent = stripe_rail.payment_intent_retrieve(transfer.payment_intent_id)
        if intent.status not in ("succeeded", "processing", "requires_action"):
            raise CardRefused(_("This payment could not be completed with this card; please try another card."),
                              field="card") from None
    if intent.status == "succeeded":
        transfer_mark_funded(payment_intent=intent)
    return intent


def _matches_quote(transfer, payment_intent):
    return (payment_intent.amount == transfer.source_minor
            and (payment_intent.currency or "").upper() == transfer.quote.source_currency)


def transfer_mark_funded(*, payment_intent):
    """Apply a succeeded PaymentIntent (from the webhook, the poller or the pay view): once, whoever comes first.
    A captured payment that does not match the quote is never funded: its refund is scheduled after commit."""
    if payment_intent.status != "succeeded":
        return None
    with transaction.atomic():
        transfer = Transfer.objects.select_for_update().select_related("quote").filter(
            payment_intent_id=payment_intent.id).first()
        if transfer is None:
            log.warning("payment_intent_unknown payment_intent=%s", payment_intent.id)
            return None
        if transfer.status != S.AWAITING_FUNDING:
            return transfer
        if not _matches_quote(transfer, payment_intent):
            log.error("payment_intent_mismatch transfer_id=%s payment_intent=%s amount=%s currency=%s",
                      transfer.id, payment_intent.id, payment_intent.amount, payment_intent.currency)
            _after_commit(funding_refuse_task, transfer.id)
            return transfer
        transfer.mark_funded(timezone.now())
        transfer.save()
        ledger.ledger_post_funding(transfer=transfer)
        _after_commit(advance_task, transfer.id)
    log.info("transfer_funded transfer_id=%s payment_intent=%s", transfer.id, payment_intent.id)
    return transfer


def transfer_funding_refuse(*, transfer_id):
    """A captured payment that does not match its quote goes back in full. Stripe is asked first (outside any lock;
    the refund's key derives from the transfer, so a retry gets the same refund), then the capture and the refund
    are booked as two balanced entries, the transfer ends `refunded` and operators get an alert. The poller finds
    the same mismatch again if this task is lost."""
    transfer = Transfer.objects.select_related("quote").get(pk=transfer_id)
    if transfer.status != S.AWAITING_FUNDING or not transfer.payment_intent_id:
        return transfer
    intent = stripe_rail.payment_intent_retrieve(transfer.payment_intent_id)
    if intent.status != "succeeded" or _matches_quote(transfer, intent):
        return transfer
    currency = (intent.currency or "XXX")[:3].upper()
    reason = (f"captured {intent.amount} {currency} minor units, the quote asks {transfer.source_minor} "
              f"{transfer.quote.source_currency}: refunded in full")
    refund = stripe_rail.refund_create(transfer_id=transfer.id, payment_intent_id=intent.id)
    with transaction.atomic():
        transfer = _locked(transfer_id)
        if transfer.status != S.AWAITING_FUNDING:
            return transfer
        transfer.mark_funding_refused(refund.id, reason)
        transfer.save()
        ledger.ledger_post_unmatched_payment(transfer=transfer, amount_minor=intent.amount, currency=currency,
                                            refund_id=refund.id)
        operator_alert_raise(kind="funding", message=f"transfer {transfer.id}: {reason} (refund {refund.id})")
    log.error("transfer_funding_refused transfer_id=%s refund=%s %s", transfer.id, refund.id, reason)
    return transfer


def transfer_expire(*, transfer_id):
    """Unfunded past the funding window: cancel the PaymentIntent first, so no late payment can land."""
    transfer = Transfer.objects.get(pk=transfer_id)
    if transfer.status != S.AWAITING_FUNDING:
        return transfer
    if transfer.payment_intent_id:
        intent = stripe_rail.payment_intent_retrieve(transfer.payment_intent_id)
        if intent.status == "succeeded":
            return transfer_mark_funded(payment_intent=intent)
        if intent.status not in ("canceled", "processing"):
            stripe_rail.payment_intent_cancel(transfer_id=transfer.id, payment_intent_id=transfer.payment_intent_id)
        elif intent.status == "processing":
            return transfer
    with transaction.atomic():
        transfer = _locked(transfer_id)
        if transfer.status == S.AWAITING_FUNDING:
            transfer.mark_expired()
            transfer.save()
            log.info("transfer_expired transfer_id=%s", transfer.id)
    return transfer


def funding_poll():
    """Fallback for lost webhooks: ask Stripe about transfers that have waited a while."""
    now = timezone.now()
    waiting = Transfer.objects.filter(status=S.AWAITING_FUNDING,
                                      created_at__lt=now - timedelta(seconds=settings.FUNDING_POLL_AFTER_SECONDS))
    for transfer in waiting.exclude(payment_intent_id="").iterator():
        if transfer.created_at < now - timedelta(seconds=settings.FUNDING_WINDOW_SECONDS):
            transfer_expire(transfer_id=transfer.id)
        else:
            transfer_mark_funded(payment_intent=stripe_rail.payment_intent_retrieve(transfer.payment_intent_id))


# Screening and settlement ------------------------------------------------------------------------

def transfer_advance(*, transfer_id):
    """A funded transfer is screened; clear ones get their payout queued in the same transaction."""
    with transaction.atomic():
        transfer = _locked(transfer_id)
        if transfer.status != S.FUNDED:
            return transfer
        outcome = screening_check(transfer=transfer)
        if outcome.decision == REJECT:
            transfer.mark_rejected(outcome.reason)
            transfer.save()
            _after_commit(refund_task, transfer.id)
        elif outcome.decision == HOLD:
            transfer.mark_held(outcome.reason)
            transfer.save()
        elif outcome.decision == CLEAR:
            _settle(transfer)
        else:
            raise ScreeningUndecided(f"screening returned {outcome.decision!r} for transfer {transfer.id}")
    log.info("transfer_screened transfer_id=%s decision=%s", transfer.id, outcome.decision)
    return transfer


def _settle(transfer):
    reference = str(transfer.id)
    payout_request(reference=reference, to_address=transfer.recipient_wallet, amount=transfer.quote.target_amount)
    transfer.mark_settling(reference)
    transfer.save()


def transfer_release(*, transfer_id):
    """An operator cleared a held transfer."""
    with transaction.atomic():
        transfer = _locked(transfer_id)
        if transfer.status != S.HELD:
            raise TransferNotPayable(_("Only held transfers can be released."))
        _settle(transfer)
    return transfer


def transfer_reject(*, transfer_id, reason):
    with transaction.atomic():
        transfer = _locked(transfer_id)
        transfer.mark_rejected(reason)
        transfer.save()
        _after_commit(refund_task, transfer.id)
    return transfer


def _refundable(transfer):
    """Rejected transfers, and failed settlements whose payout can no longer pay (failed, never in a live batch)."""
    if transfer.status == S.REJECTED:
        return True
    if transfer.status == S.SETTLEMENT_FAILED:
        return payout_is_dead(reference=transfer.payout_reference)
    return False


def transfer_refund(*, transfer_id):
    """Refund in full. The Stripe call carries a key derived from the transfer, so a retry after a crash
    between the call and the commit gets the same refund back."""
    transfer = Transfer.objects.get(pk=transfer_id)
    if not _refundable(transfer):
        return transfer
    refund = stripe_rail.refund_create(transfer_id=transfer.id, payment_intent_id=transfer.payment_intent_id)
    with transaction.atomic():
        transfer = _locked(transfer_id)
        if _refundable(transfer):
            transfer.mark_refunded(refund.id)
            transfer.save()
            ledger.ledger_post_refund(transfer=transfer, refund_id=refund.id)
    log.info("transfer_refunded transfer_id=%s refund=%s", transfer.id, refund.id)
    return transfer


class TransferPayoutListener:
    """payments' side of onchain.api.PayoutListener, registered in PaymentsConfig.ready(). Called inside
    onchain's transaction, so the payouts' state and the transfers' commit together."""

    def payouts_final(self, *, references, tx_hash):
        # Lock in a fixed order, then one compare-and-set statement for the batch (per-row saves cost more than the
        # rest of the pass); the ledger gets one balanced entry per transfer that moved.
        transfers = list(Transfer.objects.select_for_update(of=("self",)).select_related("quote")
                         .filter(pk__in=references, status=S.SETTLING).order_by("pk"))
        moved = Transfer.objects.filter(pk__in=[t.pk for t in transfers]).mark_completed(timezone.now())
        if moved != len(transfers):  # impossible under the row locks; refuse rather than post a partial ledger
            raise TransferNotPayable(f"{len(transfers) - moved} of {len(transfers)} transfers left settling meanwhile")
        ledger.ledger_post_payouts(transfers=transfers, tx_hash=tx_hash)
        log.info("transfers_completed count=%s tx_hash=%s transfer_ids=%s", len(transfers), tx_hash,
                 ",".join(str(t.pk) for t in transfers[:20]))

    def payouts_failed(self, *, references, reason):
        for transfer in Transfer.objects.select_for_update(of=("self",)).filter(pk__in=references,
                                                                                 status=S.SETTLING).order_by("pk"):
            transfer.mark_settlement_failed(reason)
            transfer.save()
            log.error("transfer_settlement_failed transfer_id=%s reason=%s", transfer.id, reason)


def transfers_sweep():
    """Outbox sweeper: re-send the next step for transfers whose task was lost after commit."""
    cutoff = timezone.now() - timedelta(seconds=10)
    # A crash between the transfer's commit and its PaymentIntent: create it with the same idempotency key.
    for transfer in Transfer.objects.filter(status=S.AWAITING_FUNDING, payment_intent_id="", created_at__lt=cutoff):
        transfer_funding_prepare(transfer=transfer)
    for transfer_id in Transfer.objects.filter(status=S.FUNDED, updated_at__lt=cutoff).values_list("id", flat=True):
        advance_task.delay(str(transfer_id))
    for transfer_id in Transfer.objects.filter(status=S.REJECTED, updated_at__lt=cutoff).values_list("id", flat=True):
        refund_task.delay(str(transfer_id))


# The steps' tasks: thin, named, retried only on the transient errors listed. -------------------------

@shared_task(name="payments.transfer_advance", autoretry_for=(SettlementNotConfigured, ChainUnavailable),
             retry_backoff=2, max_retries=20)
def advance_task(transfer_id):
    transfer_advance(transfer_id=transfer_id)


@shared_task(name="payments.transfer_refund", autoretry_for=(FundingUnavailable,), retry_backoff=2, max_retries=20)
def refund_task(transfer_id):
    transfer_refund(transfer_id=transfer_id)


@shared_task(name="payments.transfer_funding_refuse", autoretry_for=(FundingUnavailable,), retry_backoff=2,
             max_retries=20)
def funding_refuse_task(transfer_id):
    transfer_funding_refuse(transfer_id=transfer_id)
