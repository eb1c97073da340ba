"""Stripe webhook endpoint: verify, record the event id once, dispatch by type."""

import logging

from django.db import IntegrityError, transaction
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from payments import pipeline
from payments.errors import WebhookRefused
from payments.models import StripeEvent
from payments.providers import stripe_rail

log = logging.getLogger(__name__)


def _problem(status, detail):
    return JsonResponse({"type": "https://tulpar.example/problems/bad-webhook", "title": "Webhook refused",
                         "status": status, "detail": detail}, status=status, content_type="application/problem+json")


def _on_payment_intent_succeeded(intent):
    pipeline.transfer_mark_funded(payment_intent=intent)


# event type: (shape check, typed in the provider: a signed event with anything else is a 400, never a 500 that
# Stripe would retry for days; handler)
HANDLERS = {"payment_intent.succeeded": (stripe_rail.payment_intent_state, _on_payment_intent_succeeded)}


@csrf_exempt
@require_POST
def stripe_webhook(request):
    try:
        event_id, event_type, obj = stripe_rail.webhook_event(request.body, request.headers.get("Stripe-Signature", ""))
        check, handler = HANDLERS.get(event_type, (None, None))
        obj = check(obj) if check else obj
    except WebhookRefused as exc:
        log.warning("stripe_webhook_refused reason=%s", exc.detail)
        return _problem(exc.status, exc.detail)
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
            handler(obj)
    return HttpResponse(status=200)
