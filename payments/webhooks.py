"""Stripe webhook endpoint: verify, record the event id once, dispatch by type.

An event tells us to look; what we act on is read from Stripe's API (outside any transaction, before the event's
transaction opens): the PaymentIntent with its charge's card for `payment_intent.succeeded`, the disputed charge for
`charge.dispute.created` and `radar.early_fraud_warning.created`, the refund for `refund.*` and `charge.refunded`.
If Stripe does not answer, the event is refused with a 503 and Stripe delivers it again."""

import logging

from django.db import IntegrityError, transaction
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from payments import pipeline, pipeline_disputes, pipeline_refunds
from payments.errors import FundingUnavailable, ProcessorRequestRefused, WebhookRefused
from payments.models import CardDispute, StripeEvent, Transfer
from payments.providers import stripe_rail

log = logging.getLogger(__name__)


def _problem(status, detail, title="Webhook refused", slug="bad-webhook"):
    return JsonResponse({"type": f"https://tulpar.example/problems/{slug}", "title": title, "status": status,
                         "detail": detail}, status=status, content_type="application/problem+json")


def _on_payment_intent_succeeded(event_intent, intent):
    if intent is None:
        log.warning("stripe_webhook_unknown_payment_intent payment_intent=%s", event_intent.id)
        return
    seen = (event_intent.status, event_intent.amount, event_intent.currency.lower())
    if seen != (intent.status, intent.amount, intent.currency.lower()):
        # A signed event that disagrees with Stripe's own record: act on neither; the poller reads Stripe again.
        log.warning("stripe_webhook_disagrees payment_intent=%s event=%s stripe=%s", intent.id, seen,
                    (intent.status, intent.amount, intent.currency))
        return
    pipeline.transfer_mark_funded(payment_intent=intent)


def _on_dispute(kind):
    def handle(dispute, charge):
        pipeline_disputes.card_dispute_record(kind=kind, dispute=dispute, charge=charge)

    return handle


def _charge_of(dispute):
    return stripe_rail.charge_retrieve(dispute.charge)


def _payment_intent_of(event_intent):
    return stripe_rail.payment_intent_retrieve(event_intent.id)


def _refund_of(event_refund):
    return _with_disputes(stripe_rail.refund_retrieve(event_refund.id))


def _with_disputes(refund):
    """The refund, and (failed on a disputed charge) its charge's disputes, read here outside the transaction."""
    return None if refund is None else (refund, pipeline_refunds.disputes_behind(refund))


def _refund_of_charge(charge):
    """`charge.refunded` names the charge: the refund we look at is the one recorded on its transfer (a refund not
    recorded yet is followed by its own refund.* events and by the sweeper)."""
    transfer = Transfer.objects.filter(charge_id=charge.id).exclude(refund_id="").first() or (
        Transfer.objects.filter(payment_intent_id=charge.payment_intent).exclude(refund_id="").first()
        if charge.payment_intent else None)
    return _with_disputes(stripe_rail.refund_retrieve(transfer.refund_id)) if transfer else None


def _on_refund(event_object, fetched):
    if fetched is not None:
        refund, disputed = fetched
        pipeline_refunds.refund_apply(refund=refund, disputed=disputed)


# event type: (shape check, typed in the provider: a signed event with anything else is a 400, never a 500 that
# Stripe would retry for days; what to read from Stripe first, outside the transaction; handler)
HANDLERS = {
    "payment_intent.succeeded": (stripe_rail.payment_intent_state, _payment_intent_of, _on_payment_intent_succeeded),
    "charge.dispute.created": (stripe_rail.dispute_state, _charge_of, _on_dispute(CardDispute.Kind.DISPUTE)),
    "radar.early_fraud_warning.created": (stripe_rail.early_fraud_warning_state, _charge_of,
                                          _on_dispute(CardDispute.Kind.EARLY_FRAUD_WARNING)),
    # A refund's status moves after it is created (pending → succeeded, succeeded → failed): each of these reads the
    # refund from Stripe and applies it (pipeline_refunds.refund_apply); the sweeper covers lost ones.
    "charge.refunded": (stripe_rail.charge_ref, _refund_of_charge, _on_refund),
    "refund.created": (stripe_rail.refund_state, _refund_of, _on_refund),
    "refund.updated": (stripe_rail.refund_state, _refund_of, _on_refund),
    "refund.failed": (stripe_rail.refund_state, _refund_of, _on_refund),
    "charge.refund.updated": (stripe_rail.refund_state, _refund_of, _on_refund),
}


@csrf_exempt
@require_POST
def stripe_webhook(request):
    try:
        event_id, event_type, obj = stripe_rail.webhook_event(request.body, request.headers.get("Stripe-Signature", ""))
        check, read, handler = HANDLERS.get(event_type, (None, None, None))
        obj = check(obj) if check else obj
    except WebhookRefused as exc:
        log.warning("stripe_webhook_refused reason=%s", exc.detail)
        return _problem(exc.status, exc.detail)
    if handler and StripeEvent.objects.filter(event_id=event_id).exists():
        log.info("stripe_webhook_duplicate event=%s", event_id)
        return HttpResponse(status=200)
    fetched = None
    if read:
        try:
            fetched = read(obj)
        except ProcessorRequestRefused:
            log.warning("stripe_webhook_object_unknown event=%s type=%s", event_id, event_type)
        except FundingUnavailable as exc:
            return _problem(503, exc.detail, title="Stripe did not answer", slug="funding-unavailable")
    with transaction.atomic():
        try:
            with transaction.atomic():
                object_id = getattr(obj, "id", None)
                StripeEvent.objects.create(event_id=event_id, event_type=event_type,
                                           object_id=object_id if isinstance(object_id, str) else "")
        except IntegrityError:
            log.info("stripe_webhook_duplicate event=%s", event_id)
            return HttpResponse(status=200)
        if handler:
            handler(obj, fetched)
    return HttpResponse(status=200)
