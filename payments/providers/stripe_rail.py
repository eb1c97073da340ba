"""Card funding through Stripe: the one module that talks to the Stripe API, and the only one that imports its SDK.

Every mutating call carries an idempotency key derived from the transfer, so a retry after a
dropped response, a timeout or a crash asks Stripe for the same object again. Stripe's exceptions never leave
this module: each call raises our own errors (payments.errors), so callers speak the domain.
"""

import functools
import logging
from dataclasses import dataclass

import stripe
from django.conf import settings
from django.utils.translation import gettext as _

from payments.errors import CardDeclined, FundingUnavailable, ProcessorRequestRefused, WebhookRefused

log = logging.getLogger(__name__)


@functools.cache
def client():
    return stripe.StripeClient(
        settings.STRIPE_SECRET_KEY,
        http_client=stripe.HTTPXClient(timeout=settings.STRIPE_TIMEOUT_SECONDS, allow_sync_methods=True),
        base_addresses={"api": settings.STRIPE_API_BASE},
        max_network_retries=2,
    )


def _call(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except (stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError) as exc:
        log.warning("stripe_unavailable error=%s", type(exc).__name__)
        raise FundingUnavailable("The card processor did not answer; try again in a moment.") from exc
    except stripe.CardError as exc:
        raise CardDeclined(exc.user_message or _("The card was declined."), field="card") from exc
    except stripe.InvalidRequestError as exc:
        log.info("stripe_request_refused code=%s", exc.code)
        raise ProcessorRequestRefused(exc.user_message or "The card processor refused this request.") from exc


def payment_intent_create(*, transfer_id, amount_minor, currency):
    return _call(
        client().v1.payment_intents.create,
        params={
            "amount": amount_minor,
            "currency": currency.lower(),
            "payment_method_types": ["card"],
            "metadata": {"transfer_id": str(transfer_id)},
        },
        options={"idempotency_key": f"transfer-{transfer_id}-payment-intent"},
    )


def payment_intent_retrieve(payment_intent_id):
    return _call(client().v1.payment_intents.retrieve, payment_intent_id)


def payment_intent_pay(*, transfer_id, payment_intent_id, payment_method_id):
    """Set the payment method, then confirm: two calls, each with its own stable key."""
    _call(
        client().v1.payment_intents.update,
        payment_intent_id,
        params={"payment_method": payment_method_id},
        options={"idempotency_key": f"transfer-{transfer_id}-pm-{payment_method_id}"},
    )
    return _call(
        client().v1.payment_intents.confirm,
        payment_intent_id,
        options={"idempotency_key": f"transfer-{transfer_id}-confirm-{payment_method_id}"},
    )


def payment_intent_cancel(*, transfer_id, payment_intent_id):
    return _call(client().v1.payment_intents.cancel, payment_intent_id,
                 options={"idempotency_key": f"transfer-{transfer_id}-cancel"})


def card_country(token_or_method_id):
    """The issuing country of a tokenized card (`tok_…`) or payment method (`pm_…`/`card_…`), and the id to charge."""
    if token_or_method_id.startswith("tok_"):
        token = _call(client().v1.tokens.retrieve, token_or_method_id)
        return token.card.country, token.card.id
    method = _call(client().v1.payment_methods.retrieve, token_or_method_id)
    card = getattr(method, "card", None) or method
    return getattr(card, "country", None), method.id


def refund_create(*, transfer_id, payment_intent_id):
    return _call(client().v1.refunds.create, params={"payment_intent": payment_intent_id},
                 options={"idempotency_key": f"transfer-{transfer_id}-refund"})


def webhook_event(payload, signature):
    """Verify the `Stripe-Signature` (HMAC-SHA256 over `t.payload`, 5-minute tolerance) and parse the event:
    (id, type, data.object). Raises WebhookRefused for anything that is not a verified event."""
    try:
        event = stripe.Webhook.construct_event(payload, signature, settings.STRIPE_WEBHOOK_SECRET,
                                               tolerance=settings.STRIPE_WEBHOOK_TOLERANCE_SECONDS)
    except (ValueError, stripe.SignatureVerificationError) as exc:
        raise WebhookRefused("The Stripe-Signature header does not verify for this body.") from exc
    except (AttributeError, TypeError) as exc:  # verified, but the JSON is not an object (e.g. an array)
        raise WebhookRefused("The body is not a Stripe event.") from exc
    except RecursionError as exc:  # verified, but nested deeper than the parser goes: not an event Stripe sends
        raise WebhookRefused("The body is nested too deeply to be a Stripe event.") from exc
    try:
        return event["id"], event["type"], event["data"]["object"]
    except (KeyError, TypeError) as exc:
        # Signed, so it came from someone holding the secret; still, a 500 would only be retried forever.
        raise WebhookRefused("The body is not a Stripe event (it needs id, type and data.object).") from exc


@dataclass(frozen=True)
class PaymentIntentState:
    """What the funding steps read of a PaymentIntent, typed (a webhook's object is whatever its JSON was)."""

    id: str
    amount: int
    currency: str
    status: str


def payment_intent_state(obj):
    """A PaymentIntent from an event or an API answer → PaymentIntentState; anything else → WebhookRefused."""
    fields = {"id": str, "amount": int, "currency": str, "status": str}
    values = {k: getattr(obj, k, None) for k in fields} if isinstance(obj, stripe.StripeObject) else {}
    if not values or any(not isinstance(values[k], t) or isinstance(values[k], bool) for k, t in fields.items()):
        raise WebhookRefused("A payment_intent event needs data.object with id, amount, currency and status.")
    return PaymentIntentState(**values)
