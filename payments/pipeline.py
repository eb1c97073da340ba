"""The transfer state machine's driver: what moves a transfer forward, and what runs next.

quote → awaiting_funding → funded → (screening) → settling → completed
Failure paths: expired or cancelled (unfunded), held (review), rejected → refunding → refunded (or refund_failed),
settlement_failed; a cancel before settlement ends cancelled (unpaid) or goes refunding (paid).
The transitions themselves are guarded on the model (`Transfer.mark_*`, `Transfer.objects.mark_completed`);
this module takes the row lock, applies one transition, posts the ledger entry, and schedules the next step
after commit. The Celery tasks for those steps live at the bottom of this module, beside the code that
schedules them (payments/tasks.py holds only the periodic entry points). See docs/states.md.
"""

import logging
import time
from collections import defaultdict
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from common import ops_state
from onchain.api import operator_alert_raise, payout_is_dead, payouts_request
from onchain.errors import ChainUnavailable, SettlementNotConfigured
from payments.assets import asset_for
from payments.errors import (
    CardAttemptsExhausted,
    CardRefused,
    FundingUnavailable,
    ProcessorRequestRefused,
    ScreeningUndecided,
    TransferNotCancellable,
    TransferNotPayable,
)
from payments.models import CardDispute, JournalEntry, PartnerPayout, Transfer, to_minor
from payments.providers import stripe_rail
from payments.services import fraud, ledger, limits, payout_partners, refunds, review, us_remittance
from payments.services.screening import CLEAR, HOLD, REJECT, screening_check, screening_check_many
from payments.services.transfers import transfer_funding_prepare

log = logging.getLogger(__name__)
S = Transfer.Status


def _locked(transfer_id):
    return Transfer.objects.select_for_update(of=("self",)).select_related("quote").get(pk=transfer_id)


def _after_commit(task, transfer_id):
    # The sweeper re-derives the step from the table if this enqueue is lost (a crash right after the commit).
    transaction.on_commit(lambda: task.delay(str(transfer_id)))


# Funding -----------------------------------------------------------------------------------------

def _card_attempt_claim(transfer, token):
    """Count this token as one of the transfer's card attempts, race-free (one conditional UPDATE); True for a new
    attempt, False for a token that already passed every check (a double submit: Stripe replays its answers)."""
    claimed = (Transfer.objects.filter(pk=transfer.pk, card_attempts__lt=settings.CARD_ATTEMPTS_PER_TRANSFER)
               .exclude(last_card_token=token).update(card_attempts=F("card_attempts") + 1))
    if claimed:
        return True
    if Transfer.objects.filter(pk=transfer.pk, last_card_token=token).exists():
        return False
    raise CardAttemptsExhausted(attempts_exhausted_message())


def attempts_exhausted_message():
    return _("This transfer can no longer be paid: the card was tried too many times. It will be cancelled "
             "automatically and nothing was charged; start a new transfer to send money.")


def card_attempts_left(transfer):
    return max(settings.CARD_ATTEMPTS_PER_TRANSFER - transfer.card_attempts, 0)


def _country_refused_message():
    return _("Cards issued in Russia cannot be used for international transfers. "
             "Please pay with a card issued in another country.")


def transfer_pay_card(*, transfer, card_token, client_ip=None):
    """Web flow: the browser tokenised the card with Stripe.js. The token counts as one of the transfer's card
    attempts (CARD_ATTEMPTS_PER_TRANSFER); it becomes a PaymentMethod, whose card tells its issuing country and
    fingerprint: a refused country or a frozen card, sender or wallet is refused before any charge, and the attempt
    counts against the velocity limits (card, email, phone, wallet, client IP). Then ONE confirm call carries the card
    and the 3-D Secure request; a card that supports 3-D Secure returns `requires_action` for Stripe.js."""
    if transfer.status != S.AWAITING_FUNDING or not transfer.payment_intent_id:
        raise TransferNotPayable(_("This transfer is not waiting for a payment."))
    new_attempt = _card_attempt_claim(transfer, card_token)
    try:
        method_id, card = stripe_rail.card_payment_method(transfer_id=transfer.id, token=card_token)
    except ProcessorRequestRefused as exc:
        raise CardRefused(_("The card details could not be read: please enter them again."), field="card") from exc
    Transfer.objects.filter(pk=transfer.pk, status=S.AWAITING_FUNDING).update(
        card_fingerprint=card.fingerprint, card_country=card.country)
    if card.country in settings.CARD_COUNTRIES_REFUSED or not card.country:
        raise CardRefused(_country_refused_message(), field="card")
    identities = fraud.transfer_identities(transfer, card_fingerprint=card.fingerprint)
    frozen = fraud.identities_frozen(identities)
    if frozen:
        log.warning("card_payment_refused transfer_id=%s frozen=%s", transfer.id, fraud.frozen_detail(frozen))
        raise CardRefused(_("We cannot accept this payment. Please contact support."), field="card")
    if card.fingerprint:  # the card's own limits (payments/services/limits.py): over them, this card is refused
        limits.limits_reserve_card(transfer=transfer, card_fingerprint=card.fingerprint)
    if new_attempt:
        fraud.velocity_consume(identities + ([("ip", client_ip)] if client_ip else []))
        Transfer.objects.filter(pk=transfer.pk).update(last_card_token=card_token)
    try:
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
            _after_commit(funding_refuse_task, transfer.id)
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
        transfer = _locked(transfer_id)
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
    stopped = _payment_intent_stop(transfer)
    if stopped == "succeeded":
        return transfer_mark_funded(payment_intent=stripe_rail.payment_intent_retrieve(transfer.payment_intent_id))
    if stopped == "processing":
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
    """A funded transfer is screened; clear ones get their payout queued in the same transaction, unless their
    payout release time (payout delay for new senders and large amounts) is still ahead: then they stay `funded`
    and the sweeper brings them back when it is due (transfers_due_for_advance). Every run is recorded (a
    ScreeningResult, trigger `inline`) in the transaction that applies its decision."""
    with transaction.atomic():
        transfer = _locked(transfer_id)
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
            _after_commit(refund_task, transfer.id)
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


# Refunds and cancellation -----------------------------------------------------------------------
# Every refund goes through `refunding`: the decision is committed first, then the rail (payments/services/refunds.py,
# chosen in one place) is asked, with a key derived from the transfer; only a refund whose own status is `succeeded`
# makes the transfer `refunded` and posts its entry. Pending refunds are followed to the end by the webhook (refund.*,
# charge.refunded) and by the sweeper (lost webhooks); a failed one (also after it had succeeded) ends
# `refund_failed` with an operator alert.

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
            transfer = _locked(transfer_id)
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
                action = _refund_owed_charged_back(
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
        transfer = _locked(transfer_id)
        if transfer.status != S.REFUNDING or transfer.refund_id:
            return transfer
        disputed = CardDispute.objects.filter(kind=CardDispute.Kind.DISPUTE,
                                              payment_intent_id=transfer.payment_intent_id).first()
        if disputed and refunds.returned_capture(transfer):
            _returned_capture_charged_back(transfer, stripe_id=disputed.stripe_id, amount=disputed.amount_minor,
                                           currency=disputed.currency)
            return transfer
        if disputed:
            return transfer  # the dispute itself charges a funded transfer back (card_dispute_record)
        _refund_failed(transfer, "", f"the refund was refused: {detail}")
    return transfer


def _returned_capture_charged_back(transfer, *, stripe_id, amount, currency):
    """A capture refused at funding, then disputed: the bank's chargeback returns it instead of our refund."""
    prefix = refunds.returned_capture(transfer)
    transfer.mark_charged_back(f"{transfer.failure_reason}; charged back by the card's bank ({stripe_id})")
    transfer.save()
    ledger.ledger_post_returned_capture(
        transfer=transfer, amount_minor=amount or transfer.source_minor,
        currency=currency or transfer.quote.source_currency, refused=prefix == "refused", chargeback=stripe_id)


def refunds_due(*, now):
    """Refunding transfers to look at again: a refund not asked for yet (its task lost after commit, or the rail did
    not answer) after 10 s; a pending refund every REFUND_POLL_SECONDS (its webhook may be lost)."""
    return Transfer.objects.filter(status=S.REFUNDING, livemode=True).filter(
        Q(refund_id="", updated_at__lt=now - timedelta(seconds=10))
        | Q(updated_at__lt=now - timedelta(seconds=settings.REFUND_POLL_SECONDS))).order_by("updated_at")


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
        stopped = _payment_intent_stop(transfer)
        if stopped == "processing":
            raise TransferNotCancellable(_("Your card payment is being processed right now. Please try again in a "
                                           "few minutes."))
        if stopped == "succeeded":
            intent = stripe_rail.payment_intent_retrieve(transfer.payment_intent_id)
            transfer = transfer_mark_funded(payment_intent=intent) or transfer
            if transfer.status == S.AWAITING_FUNDING:  # a payment we refuse: it is refunded anyway
                return transfer_funding_refuse(transfer_id=transfer_id)
    with transaction.atomic():
        transfer = _locked(transfer_id)
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
            _after_commit(refund_task, transfer.id)
            log.info("transfer_cancelled_refunding transfer_id=%s reason=%s", transfer.id, reason)
        elif transfer.status in CANCEL_TOO_LATE:
            raise TransferNotCancellable(_too_late_message())
    return transfer


def _payment_intent_stop(transfer):
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


# Disputes and early fraud warnings ---------------------------------------------------------------

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
        _returned_capture_charged_back(transfer, stripe_id=dispute.id, amount=dispute.amount, currency=currency)
        return "a refused capture not refunded yet: charged back, its capture returned through the chargeback"
    if transfer.status == S.REFUND_FAILED:
        return _refund_owed_charged_back(transfer, dispute_id=dispute.id, amount=amount, currency=currency)
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


def _refund_owed_charged_back(transfer, *, dispute_id, amount, currency):
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
        _after_commit(refund_task, transfer.id)
        return "not paid out: rejected, full refund scheduled"
    if transfer.status == S.AWAITING_FUNDING:
        return "not funded yet: the funding check refunds it"
    if transfer.status in PAID_OUT:
        return "already paid out: consider refunding it in Stripe before a dispute comes (docs/runbook.md)"
    return "nothing to do"


# The steps' tasks: thin, named, retried only on the transient errors listed. -------------------------

@shared_task(name="payments.transfer_advance", autoretry_for=(SettlementNotConfigured, ChainUnavailable),
             retry_backoff=2, max_retries=20)
def advance_task(transfer_id):
    transfer_advance(transfer_id=transfer_id)


@shared_task(name="payments.transfers_advance_due", autoretry_for=(SettlementNotConfigured, ChainUnavailable),
             retry_backoff=2, max_retries=20)
def advance_due_task():
    transfers_advance_due()


@shared_task(name="payments.transfer_refund", autoretry_for=(FundingUnavailable,), retry_backoff=2, max_retries=20)
def refund_task(transfer_id):
    transfer_refund(transfer_id=transfer_id)


@shared_task(name="payments.transfer_funding_refuse", autoretry_for=(FundingUnavailable,), retry_backoff=2,
             max_retries=20)
def funding_refuse_task(transfer_id):
    transfer_funding_refuse(transfer_id=transfer_id)


# Re-screening when a new list version loads ------------------------------------------------------------------------

# Not yet settled; awaiting_funding ones are screened when funded anyway. awaiting_claim: a transfer may wait days for
# its recipient, and both its ways out (the sender's cancel, the final refund) return the money without a screening.
RESCREENED = (S.FUNDED, S.HELD, S.AWAITING_CLAIM)


def transfer_rescreen(*, transfer_id, trigger):
    """Screen one transfer again, under its row lock, and record the result. A funded transfer takes the new decision
    as at funding, except that a clear one is left to its own advance step (re-screening never pays out): a hold moves
    it to `held`, a reject to `rejected` and its refund is queued after commit. A held transfer only gets the new
    result (it stays held: an officer decides, and a pending release request on the old evidence goes stale). Any
    other status (it moved to settling meanwhile, or was cancelled) is skipped: returns None."""
    with transaction.atomic():
        transfer = Transfer.objects.select_for_update(of=("self",)).select_related("quote").filter(
            pk=transfer_id).first()
        if transfer is None or transfer.status not in RESCREENED:
            return None
        outcome = screening_check(transfer=transfer)
        if outcome.decision not in (CLEAR, HOLD, REJECT):
            raise ScreeningUndecided(f"screening returned {outcome.decision!r} for transfer {transfer.id}")
        if transfer.status in (S.FUNDED, S.AWAITING_CLAIM) and outcome.decision == REJECT:
            transfer.mark_rejected(outcome.reason)
            transfer.save()
            _after_commit(refund_task, transfer.id)
        elif transfer.status in (S.FUNDED, S.AWAITING_CLAIM) and outcome.decision == HOLD:
            transfer.mark_held(outcome.reason)
            transfer.save()
        result = review.screening_result_record(transfer=transfer, outcome=outcome, trigger=trigger)
    log.info("transfer_rescreened transfer_id=%s trigger=%s decision=%s status=%s", transfer.id, trigger,
             outcome.decision, transfer.status)
    return result


def transfers_rescreen(*, reason):
    """Screen every transfer not yet settled (funded or held) again: a new list version (`reason` names it) loaded.
    One transaction per transfer, each under its row lock, so the pipeline is never blocked for long; a transfer that
    already has a result for this list version is not screened twice (a retried task resumes where it stopped).
    Returns {status after: count} for the transfers screened."""
    trigger = review.rescreen_trigger(reason)
    ids = list(Transfer.objects.filter(status__in=RESCREENED, livemode=True).exclude(screening_results__trigger=trigger)
               .order_by("created_at", "pk").values_list("pk", flat=True))
    counts = {}
    for transfer_id in ids:
        result = transfer_rescreen(transfer_id=transfer_id, trigger=trigger)
        key = result.status_after if result else "skipped"
        counts[key] = counts.get(key, 0) + 1
    log.info("transfers_rescreened trigger=%s candidates=%s counts=%s", trigger, len(ids), counts)
    return counts
