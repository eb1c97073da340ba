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


HANDLERS = {"payment_intent.succeeded": _on_payment_intent_succeeded}


@csrf_exempt
@require_POST
def stripe_webhook(request):
    try:
        event_id, event_type, obj = stripe_rail.webhook_event(request.body, request.headers.get("Stripe-Signature", ""))
    except WebhookRefused as exc:
        log.warning("stripe_webhook_refused reason=%s", exc.detail)
        return _problem(exc.status, exc.detail)
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
