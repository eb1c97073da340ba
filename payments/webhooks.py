"""Stripe webhook endpoint: verify, record the event id once, dispatch by type."""

import logging

import stripe
from django.db import IntegrityError, transaction
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from payments import pipeline
from payments.models import StripeEvent
from payments.providers import stripe_rail

log = logging.getLogger(__name__)


def _problem(status, detail):
    return JsonResponse({"type": "https://tulpar.example/problems/bad-webhook", "title": "Webhook refused",
                         "status": status, "detail": detail}, status=status, content_type="application/problem+json")


def _on_payment_intent_succeeded(intent):
    pipeline.transfer_mark_funded(payment_intent=intent)


HANDLERS = {"payment_intent.succeeded": _on_payment_intent_succeeded}


@csrf_exempt
@require_POST
def stripe_webhook(request):
    try:
        event = stripe_rail.webhook_event(request.body, request.headers.get("Stripe-Signature", ""))
    except (ValueError, stripe.SignatureVerificationError):
        log.warning("stripe_webhook_refused reason=bad_signature")
        return _problem(400, "The Stripe-Signature header does not verify for this body.")
    except (AttributeError, TypeError):  # verified, but the JSON is not an object (e.g. an array)
        log.warning("stripe_webhook_refused reason=not_an_event")
        return _problem(400, "The body is not a Stripe event.")
    try:
        event_id, event_type, obj = event["id"], event["type"], event["data"]["object"]
    except (KeyError, TypeError):
        # Signed, so it came from someone holding the secret; still, a 500 would only be retried forever.
        log.warning("stripe_webhook_refused reason=not_an_event")
        return _problem(400, "The body is not a Stripe event (it needs id, type and data.object).")
    with transaction.atomic():
        try:
            with transaction.atomic():
                StripeEvent.objects.create(event_id=event_id, event_type=event_type,
                                           object_id=getattr(obj, "id", "") or "")
        except IntegrityError:
            log.info("stripe_webhook_duplicate event=%s", event_id)
            return HttpResponse(status=200)
        handler = HANDLERS.get(event_type)
        if handler:
            handler(obj)
    return HttpResponse(status=200)
