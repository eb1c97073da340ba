"""The transfer state machine's driver: what moves a transfer forward, and what runs next.

quote → awaiting_funding → funded → (screening) → settling → completed
Failure paths: expired or cancelled (unfunded), held (review), rejected → refunding → refunded (or refund_failed),
settlement_failed; a cancel before settlement ends cancelled (unpaid) or goes refunding (paid).
The transitions themselves are guarded on the model (`Transfer.mark_*`, `Transfer.objects.mark_completed`);
this module takes the row lock, applies one transition, posts the ledger entry, and schedules the next step
after commit. The Celery tasks for those steps live at the bottom of their module, beside the code that
schedules them (payments/tasks.py holds only the periodic entry points). See docs/states.md.

This module holds the forward path (funding, screening, settlement) and the sweeper. Beside it, each in its own
module: the pay page's card payment (pipeline_card.py), refunds (pipeline_refunds.py, with the refund task), disputes
and early fraud warnings (pipeline_disputes.py), cancellation (pipeline_cancel.py), re-screening
(pipeline_rescreen.py), and the row lock and after-commit enqueue they all share (pipeline_steps.py).
"""

import logging
import time
from collections import defaultdict
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from common import ops_state
from onchain.api import operator_alert_raise, payouts_request
from onchain.errors import ChainUnavailable, SettlementNotConfigured
from payments.assets import asset_for
from payments.errors import (
    FundingUnavailable,
    ProcessorRequestRefused,
    ScreeningUndecided,
    TransferNotPayable,
)
from payments.models import CardDispute, PartnerPayout, Transfer, to_minor
from payments.pipeline_refunds import refund_task, refunds_due, transfer_refund
from payments.pipeline_steps import step_after_commit, transfer_locked
from payments.providers import stripe_rail
from payments.services import fraud, ledger, payout_partners, refunds, review, us_remittance
from payments.services.screening import CLEAR, HOLD, REJECT, screening_check, screening_check_many
from payments.services.transfers import transfer_funding_prepare

log = logging.getLogger(__name__)
S = Transfer.Status


# Funding -----------------------------------------------------------------------------------------

def _matches_quote(transfer, payment_intent):
    return (payment_intent.amount == transfer.source_minor
            and (payment_intent.currency or "").upper() == transfer.quote.source_currency)


MISMATCH, REFUSED = "mismatch", "refused"


def _funding_refusal(transfer, intent):
    """Why a succeeded payment must not fund this transfer, as (kind, reason), or None. Checked on every funding path
    (webhook, poller, pay page) with the PaymentIntent as Stripe holds it, its latest charge's card included."""
    if not _matches_quote(transfer, intent):
        currency = (intent.currency or "XXX")[:3].upper()
        return MISMATCH, (f"captured {intent.amount} {currency} minor units, the quote asks {transfer.source_minor} "
                          f"{transfer.quote.source_currency}: refunded in full")
    country = intent.card.country if intent.card else ""
    if not country:
        return REFUSED, "the charge does not say which country issued the card: refunded in full"
    if country in settings.CARD_COUNTRIES_REFUSED:
        return REFUSED, f"card issued in {country}, a refused country (CARD_COUNTRIES_REFUSED): refunded in full"
    frozen = fraud.identities_frozen(fraud.transfer_identities(transfer, card_fingerprint=intent.card.fingerprint))
    if frozen:
        log.warning("payment_frozen_identity transfer_id=%s frozen=%s", transfer.id, fraud.frozen_detail(frozen))
        return REFUSED, f"{fraud.frozen_reason(frozen)}: refunded in full"
    return None


def transfer_mark_funded(*, payment_intent):
    """Apply a succeeded PaymentIntent (from the webhook, the poller or the pay view): once, whoever comes first.
    `payment_intent` is a stripe_rail.PaymentIntentState read from the API, with its charge's card. A payment that
    does not match the quote, or whose card is from a refused country or frozen (or the sender or wallet is), is
    never funded: its refund is scheduled after commit. A funded transfer gets its payout release time."""
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
        refusal = _funding_refusal(transfer, payment_intent)
        if refusal:
            log.error("payment_refused transfer_id=%s payment_intent=%s kind=%s reason=%s", transfer.id,
                      payment_intent.id, *refusal)
            step_after_commit(funding_refuse_task, transfer.id)
            return transfer
        now = timezone.now()
        transfer.card_country = payment_intent.card.country
        transfer.card_fingerprint = payment_intent.card.fingerprint or transfer.card_fingerprint
        transfer.charge_id = payment_intent.charge_id
        transfer.mark_funded(now)
        transfer.release_after = fraud.payout_release_after(transfer, funded_at=now)
        us_remittance.cancel_window_start(transfer, funded_at=now)  # USD: no payout while the sender may cancel
        transfer.save()
        ledger.ledger_post_funding(transfer=transfer)
        advance_soon()
    log.info("transfer_funded transfer_id=%s payment_intent=%s release_after=%s", transfer.id, payment_intent.id,
             transfer.release_after)
    return transfer


def transfer_funding_refuse(*, transfer_id):
    """A captured payment we do not accept (it does not match its quote; its card is from a refused country; the card,
    sender or wallet is frozen) goes back in full. The decision is committed first (the transfer moves to `refunding`,
    the capture is booked into its suspense account, operators get an alert), then the refund is asked for like every
    refund (transfer_refund: key derived from the transfer; only a `succeeded` refund ends it `refunded`). If the
    cardholder's bank has already taken the payment back (a dispute: Stripe refuses the refund), the transfer ends
    `charged_back` instead. The poller finds the same payment again if this task is lost."""
    transfer = Transfer.objects.select_related("quote").get(pk=transfer_id)
    if transfer.status == S.REFUNDING:
        return transfer_refund(transfer_id=transfer_id)
    if transfer.status != S.AWAITING_FUNDING or not transfer.payment_intent_id:
        return transfer
    intent = stripe_rail.payment_intent_retrieve(transfer.payment_intent_id)
    refusal = _funding_refusal(transfer, intent) if intent.status == "succeeded" else None
    if refusal is None:
        return transfer
    kind, reason = refusal
    currency = (intent.currency or "XXX")[:3].upper()
    disputed = CardDispute.objects.filter(kind=CardDispute.Kind.DISPUTE, payment_intent_id=intent.id).first()
    with transaction.atomic():
        transfer = transfer_locked(transfer_id)
        if transfer.status != S.AWAITING_FUNDING:
            return transfer
        if disputed:
            reason = f"{reason.removesuffix(': refunded in full')}; charged back by the card's bank ({disputed.stripe_id})"
            transfer.mark_charged_back(reason)
            transfer.save()
            ledger.ledger_post_returned_capture(transfer=transfer, amount_minor=intent.amount, currency=currency,
                                                 refused=kind == REFUSED, chargeback=disputed.stripe_id)
        else:
            transfer.mark_funding_refused(reason)
            transfer.save()
            refunds.capture_book_returned(transfer=transfer, amount_minor=intent.amount, currency=currency,
                                          refused=kind == REFUSED)
        operator_alert_raise(kind="funding", message=f"transfer {transfer.id}: {reason}")
    log.error("transfer_funding_refused transfer_id=%s %s", transfer.id, reason)
    return transfer if disputed else transfer_refund(transfer_id=transfer_id)


def transfer_expire(*, transfer_id):
    """Unfunded past the funding window: cancel the PaymentIntent first, so no late payment can land. Nothing was
    funded, so nothing is posted (docs/ledger.md)."""
    transfer = Transfer.objects.get(pk=transfer_id)
    if transfer.status != S.AWAITING_FUNDING:
        return transfer
    stopped = payment_intent_stop(transfer)
    if stopped == "succeeded":
        return transfer_mark_funded(payment_intent=stripe_rail.payment_intent_retrieve(transfer.payment_intent_id))
    if stopped == "processing":
        return transfer
    with transaction.atomic():
        transfer = transfer_locked(transfer_id)
        if transfer.status == S.AWAITING_FUNDING:
            transfer.mark_expired()
            transfer.save()
            log.info("transfer_expired transfer_id=%s", transfer.id)
    return transfer


def payment_intent_stop(transfer):
    """Cancel the transfer's PaymentIntent unless it is already cancelled: "stopped", or "succeeded" (it was paid: it
    must be funded, not cancelled) or "processing" (it may yet succeed). No PaymentIntent: "stopped" (none can be
    paid; transfer_funding_prepare creates none for a transfer no longer awaiting funding)."""
    if not transfer.payment_intent_id:
        return "stopped"
    intent = stripe_rail.payment_intent_retrieve(transfer.payment_intent_id)
    if intent.status in ("succeeded", "processing"):
        return intent.status
    if intent.status != "canceled":
        try:
            stripe_rail.payment_intent_cancel(transfer_id=transfer.id, payment_intent_id=transfer.payment_intent_id)
        except ProcessorRequestRefused:
            # It moved meanwhile (paid a moment ago): say what it is now.
            intent = stripe_rail.payment_intent_retrieve(transfer.payment_intent_id)
            if intent.status in ("succeeded", "processing"):
                return intent.status
            if intent.status != "canceled":
                raise
    return "stopped"


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
    """A funded transfer is screened; clear ones get their payout queued in the same transaction, unless their
    payout release time (payout delay for new senders and large amounts) is still ahead: then they stay `funded`
    and the sweeper brings them back when it is due (transfers_due_for_advance). Every run is recorded (a
    ScreeningResult, trigger `inline`) in the transaction that applies its decision."""
    with transaction.atomic():
        transfer = transfer_locked(transfer_id)
        if transfer.status != S.FUNDED or not transfer.livemode:  # the sandbox moves only by services/sandbox.py
            return transfer
        _advance_locked([transfer])
    return transfer


# What screening's transitions write (mark_rejected, mark_held, mark_awaiting_claim, mark_settling): the rest of the
# locked row is as it was read, so writing it back (and checksumming its wallet again) is work for nothing.
MOVED = ["status", "failure_reason", "payout_reference", "updated_at"]


def _advance_locked(transfers):
    """transfer_advance's step for funded live transfers the caller holds locked, in the caller's transaction: each
    screened (each table read once for all of them), each decision applied by its own guarded transition, the clear
    ones' payouts queued together, and one `inline` result recorded per transfer."""
    if len(transfers) == 1:
        outcomes = [screening_check(transfer=transfers[0])]
    else:
        outcomes = screening_check_many(transfers=transfers)
    payable = []
    for transfer, outcome in zip(transfers, outcomes, strict=True):
        if outcome.decision == REJECT:
            transfer.mark_rejected(outcome.reason)
            transfer.save(update_fields=MOVED)
            step_after_commit(refund_task, transfer.id)
        elif outcome.decision == HOLD:
            transfer.mark_held(outcome.reason)
            transfer.save(update_fields=MOVED)
        elif outcome.decision == CLEAR:
            if not transfer.recipient_wallet:  # sent to a phone: waits for the recipient's claim (services/claims.py)
                transfer.mark_awaiting_claim()
                transfer.save(update_fields=MOVED)
            elif transfer.release_after and transfer.release_after > timezone.now():
                log.info("transfer_payout_delayed transfer_id=%s release_after=%s", transfer.id, transfer.release_after)
            else:
                payable.append(transfer)
        else:
            raise ScreeningUndecided(f"screening returned {outcome.decision!r} for transfer {transfer.id}")
    _settle_many(payable)
    applied = list(zip(transfers, outcomes, strict=True))
    if len(applied) == 1:
        review.screening_result_record(transfer=transfers[0], outcome=outcomes[0], trigger=review.INLINE)
    else:
        review.screening_results_record(applied=applied, trigger=review.INLINE)
    for transfer, outcome in applied:
        log.info("transfer_screened transfer_id=%s decision=%s", transfer.id, outcome.decision)


def _settle(transfer):
    _settle_many([transfer])


def _settle_many(transfers):
    """Queue the payout of each (locked, in the caller's transaction) and move it to `settling`; one without a
    destination waits for its recipient's claim instead."""
    if any(not t.livemode for t in transfers):
        raise TransferNotPayable(_("A sandbox transfer is never paid out."))
    paying = []
    for transfer in transfers:
        if not transfer.recipient_wallet:  # released from review before the recipient claimed it: waits for the claim
            transfer.mark_awaiting_claim()
            transfer.save(update_fields=MOVED)
            continue
        if us_remittance.cancel_window_open(transfer):  # every path to a payout passes here (an operator's release too)
            raise TransferNotPayable(us_remittance.payout_held_message())
        paying.append(transfer)
    if not paying:
        return
    # The token of the target currency (KGST for som, USDKG for dollars); onchain makes base units from its decimals.
    payouts_request(requests=[
        {"reference": str(t.id), "to_address": t.recipient_wallet, "amount": t.quote.target_amount,
         "symbol": asset_for(t.quote.target_currency).symbol} for t in paying])
    for transfer in paying:
        transfer.mark_settling(str(transfer.id))
        transfer.save(update_fields=MOVED)


# Many funded transfers at once: one task screens every transfer due, a batch per transaction -------------------------

ADVANCE_BATCH = 100  # transfers screened per transaction (their rows stay locked until it commits)
ADVANCE_RUN_SECONDS = 30  # one task's share of a backlog; past it the task hands over to a new one


def _due_now(now):
    """Funded live transfers whose screening/payout step may run now (no payout release time still ahead)."""
    return Transfer.objects.filter(status=S.FUNDED, livemode=True).filter(
        Q(release_after__isnull=True) | Q(release_after__lte=now))


def advance_soon():
    """After the caller's transaction commits, have a worker screen every funded transfer due (advance_kick)."""
    transaction.on_commit(advance_kick, robust=True)


def advance_kick():
    """Enqueue one transfers_advance_due task unless one is already pending (single flight: a Redis mark set NX,
    cleared by the task as it starts; a mark whose task was lost lapses in a few seconds). A transfer funded while
    a task is pending is in the table that task reads when it starts; one funded after it started kicks again. The
    sweeper kicks too (transfers_sweep), so a lost kick or task delays a transfer, never strands it."""
    if ops_state.pending_claim("advance", ADVANCE_PENDING_SECONDS):
        advance_due_task.delay()
        return True
    return False


ADVANCE_PENDING_SECONDS = 5


def transfers_advance_due(*, batch=ADVANCE_BATCH, run_seconds=ADVANCE_RUN_SECONDS):
    """Screen and advance every funded transfer due, oldest funding first, `batch` per transaction: the rows are
    locked with SKIP LOCKED, so concurrent runs share the work and a row held elsewhere (a cancel, an operator) is
    left to the next run; each row is then moved as transfer_advance moves it (its status checked under the lock,
    each decision its own guarded transition, a result recorded per transfer). A batch that fails is done again
    one transfer per transaction, so one transfer's error does not block the others; a transfer that failed is left
    out of batches for SWEEP_RESEND_SECONDS (then a run takes it again: the sweeper kicks while it waits). Returns
    the number of transfers taken."""
    ops_state.pending_clear("advance")  # later fundings must kick again: what committed before now is read below
    # Rows that failed lately (in this run or one before) wait SWEEP_RESEND_SECONDS before a batch takes them again.
    started, done, failed = time.monotonic(), 0, set(ops_state.failing("advance"))
    while True:
        if time.monotonic() - started > run_seconds:
            advance_kick()  # a long backlog: hand over rather than hold a worker (and its time limit) for it
            break
        rows = []
        try:
            with transaction.atomic():
                rows = list(_due_now(timezone.now()).exclude(pk__in=failed).select_related("quote")
                            .select_for_update(of=("self",), skip_locked=True).order_by("funded_at", "pk")[:batch])
                if rows:
                    _advance_locked(rows)
        except Exception:
            log.exception("transfers_advance_batch_failed count=%s: advancing them one by one", len(rows))
            for transfer in rows:
                try:
                    transfer_advance(transfer_id=transfer.pk)
                except Exception:
                    log.exception("transfer_advance_failed transfer_id=%s", transfer.pk)
                    failed.add(str(transfer.pk))
                    ops_state.failing_add("advance", [transfer.pk], settings.SWEEP_RESEND_SECONDS)
        done += len(rows)
        if len(rows) < batch:
            break
    return done


def transfer_release(*, transfer_id):
    """An operator cleared a held transfer."""
    with transaction.atomic():
        transfer = transfer_locked(transfer_id)
        if transfer.status != S.HELD:
            raise TransferNotPayable(_("Only held transfers can be released."))
        _settle(transfer)
    return transfer


def transfer_reject(*, transfer_id, reason):
    with transaction.atomic():
        transfer = transfer_locked(transfer_id)
        transfer.mark_rejected(reason)
        transfer.save()
        step_after_commit(refund_task, transfer.id)
    return transfer


class TransferPayoutListener:
    """payments' side of onchain.api.PayoutListener, registered in PaymentsConfig.ready(). Called inside
    onchain's transaction, so the payouts' state and the transfers' commit together."""

    def payouts_final(self, *, references, tx_hash):
        self.payouts_final_many(finals=[(references, tx_hash)])

    def payouts_final_many(self, *, finals):
        """`finals` is [(references, tx_hash)], one pair per batch made final (onchain's tracker calls this once per
        pass with every batch of the blocks it found final): the same work as one payouts_final per batch, in a fixed
        number of statements whatever the count (a block carries up to ten batches of 200; each statement is a round
        trip on a busy machine, and a model instance per transfer, quote, entry and posting cost more than the SQL)."""
        tx_of = {str(ref): tx_hash for references, tx_hash in finals for ref in references}
        # Lock in a fixed order; read only what the ledger needs (no model instances).
        locked = list(Transfer.objects.select_for_update(of=("self",)).filter(pk__any=list(tx_of), status=S.SETTLING)
                      .order_by("pk").values_list("pk", "quote__target_amount", "quote__target_currency"))
        # Payouts to a payout partner's settlement address are final here but not yet paid to the person: those wait
        # for the partner's confirmation (payments/services/payout_partners.py).
        routed = set(PartnerPayout.objects.filter(transfer_id__any=[pk for pk, _a, _c in locked])
                     .values_list("transfer_id", flat=True))
        if routed:
            partner = list(Transfer.objects.select_related("quote").filter(pk__in=routed).order_by("pk"))
            for tx_hash in dict.fromkeys(tx_of[str(t.pk)] for t in partner):
                payout_partners.partner_payouts_final(
                    transfers=[t for t in partner if tx_of[str(t.pk)] == tx_hash], tx_hash=tx_hash)
        rows = [(pk, currency, to_minor(amount, currency), tx_of[str(pk)])
                for pk, amount, currency in locked if pk not in routed]
        # One compare-and-set statement for all (settling → completed), then one balanced entry per transfer.
        moved = Transfer.objects.mark_completed_ids([pk for pk, *_rest in rows], timezone.now())
        if moved != len(rows):  # impossible under the row locks; refuse rather than post a partial ledger
            raise TransferNotPayable(f"{len(rows) - moved} of {len(rows)} transfers left settling meanwhile")
        ledger.ledger_post_payout_rows(rows=rows)
        by_tx = defaultdict(list)
        for pk, _currency, _owed, tx_hash in rows:
            by_tx[tx_hash].append(pk)
        for _references, tx_hash in finals:
            done = by_tx.get(tx_hash, [])
            log.info("transfers_completed count=%s tx_hash=%s transfer_ids=%s", len(done), tx_hash,
                     ",".join(str(pk) for pk in done[:20]))

    def payouts_failed(self, *, references, reason):
        for transfer in Transfer.objects.select_for_update(of=("self",)).filter(pk__in=references,
                                                                                 status=S.SETTLING).order_by("pk"):
            transfer.mark_settlement_failed(reason)
            transfer.save()
            log.error("transfer_settlement_failed transfer_id=%s reason=%s", transfer.id, reason)


def transfers_due_for_advance(*, now):
    """Funded transfers whose screening/payout step is due: their task may have been lost after commit (10 s ago),
    or their payout release time has come."""
    return _due_now(now).filter(updated_at__lt=now - timedelta(seconds=10))


REFUNDS_PER_SWEEP = 200


def transfers_sweep():
    """Outbox sweeper: re-send the next step for transfers whose task was lost after commit, and advance funded
    transfers whose payout delay has passed (no long Celery ETAs: the table says what is due)."""
    now = timezone.now()
    cutoff = now - timedelta(seconds=10)
    # A crash between the transfer's commit and its PaymentIntent: create it with the same idempotency key.
    live = Transfer.objects.filter(livemode=True)  # sandbox transfers never reach Stripe, the chain or refunds
    for transfer in live.filter(status=S.AWAITING_FUNDING, payment_intent_id="", created_at__lt=cutoff):
        transfer_funding_prepare(transfer=transfer)
    # Funded transfers waiting: one transfers_advance_due task takes every one of them (single flight), never a copy
    # per row: behind a screening backlog, per-row copies (one per sweep, later one per SWEEP_RESEND_SECONDS) queued
    # each waiting transfer again and deepened the backlog (bench/README.md, bench-latency at 200/s).
    if transfers_due_for_advance(now=now).exists():
        advance_kick()
    rejected = live.filter(status=S.REJECTED, updated_at__lt=cutoff).values_list("id", flat=True)
    for transfer_id in ops_state.resend_claim("refund", rejected, settings.SWEEP_RESEND_SECONDS):
        refund_task.delay(transfer_id)
    for transfer_id in refunds_due(now=now).values_list("id", flat=True)[:REFUNDS_PER_SWEEP]:
        refund_task.delay(str(transfer_id))
    fraud.velocity_prune(now=now)


# The steps' tasks: thin, named, retried only on the transient errors listed. -------------------------

@shared_task(name="payments.transfer_advance", autoretry_for=(SettlementNotConfigured, ChainUnavailable),
             retry_backoff=2, max_retries=20)
def advance_task(transfer_id):
    transfer_advance(transfer_id=transfer_id)


@shared_task(name="payments.transfers_advance_due", autoretry_for=(SettlementNotConfigured, ChainUnavailable),
             retry_backoff=2, max_retries=20)
def advance_due_task():
    transfers_advance_due()


@shared_task(name="payments.transfer_funding_refuse", autoretry_for=(FundingUnavailable,), retry_backoff=2,
             max_retries=20)
def funding_refuse_task(transfer_id):
    transfer_funding_refuse(transfer_id=transfer_id)
