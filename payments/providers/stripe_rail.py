"""Card funding through Stripe: the one module that talks to the Stripe API, and the only one that imports its SDK.

Every mutating call carries an idempotency key derived from the transfer, so a retry after a
dropped response, a timeout or a crash asks Stripe for the same object again. Every call is pinned to the API version
the SDK was built for (settings.STRIPE_API_VERSION, checked against `stripe.api_version` by `manage.py check`).
Stripe's exceptions never leave this module: each call raises our own errors (payments.errors), so callers speak the
domain; and what we read of Stripe's objects leaves it typed (PaymentIntentState, CardFacts, DisputeState).
"""

import functools
import logging
from dataclasses import dataclass

import stripe
from django.conf import settings
from django.core import checks
from django.utils.translation import gettext as _

from payments.errors import CardDeclined, FundingUnavailable, ProcessorRequestRefused, WebhookRefused

log = logging.getLogger(__name__)


def decline_message():
    """The one message every decline gets, in the language active when raised."""
    return _("The payment was declined. Please try another card or contact your bank.")


def api_version_check(app_configs=None, **kwargs):
    """`manage.py check`: the version we write down (settings, docs, the webhook endpoint) is the SDK's pin."""
    if settings.STRIPE_API_VERSION == stripe.api_version:
        return []
    return [checks.Error(
        f"STRIPE_API_VERSION is {settings.STRIPE_API_VERSION!r} but the installed stripe SDK pins {stripe.api_version!r}.",
        hint="After an SDK upgrade: set STRIPE_API_VERSION to the new pin, update README.md and docs/architecture.md, "
             "and move the Stripe webhook endpoint to that version (docs/runbook.md).",
        id="payments.E001")]


@functools.cache
def client():
    return stripe.StripeClient(
        settings.STRIPE_SECRET_KEY,
        http_client=stripe.HTTPXClient(timeout=settings.STRIPE_TIMEOUT_SECONDS, allow_sync_methods=True),
        base_addresses={"api": settings.STRIPE_API_BASE},
        stripe_version=settings.STRIPE_API_VERSION,
        max_network_retries=2,
    )


def _call(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except (stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError) as exc:
        log.warning("stripe_unavailable error=%s", type(exc).__name__)
        raise FundingUnavailable("The card processor did not answer; try again in a moment.") from exc
    except stripe.CardError as exc:
        # One message for every decline: the issuer's reason (insufficient funds, lost, stolen, wrong CVC…) tells a
        # card tester which stolen numbers are live. Operators find the reason in the log and on Stripe.
        log.info("stripe_card_declined code=%s decline_code=%s", exc.code, getattr(exc.error, "decline_code", None))
        raise CardDeclined(decline_message(), field="card") from exc
    except stripe.InvalidRequestError as exc:
        log.info("stripe_request_refused code=%s", exc.code)
        raise ProcessorRequestRefused(exc.user_message or "The card processor refused this request.") from exc


def _three_d_secure():
    return {"card": {"request_three_d_secure": settings.STRIPE_REQUEST_THREE_D_SECURE}}


def payment_intent_create(*, transfer_id, amount_minor, currency, receipt_email=""):
    # 3-D Secure is requested on the PaymentIntent itself, so it also applies when a partner app confirms it with
    # Stripe.js on its side (and again in our own confirm call). `receipt_email`: Stripe e-mails its own receipt of
    # the card payment there once it succeeds (docs/notifications.md).
    params = {
        "amount": amount_minor,
        "currency": currency.lower(),
        "payment_method_types": ["card"],
        "payment_method_options": _three_d_secure(),
        "metadata": {"transfer_id": str(transfer_id)},
    }
    if receipt_email:
        params["receipt_email"] = receipt_email
    return _call(
        client().v1.payment_intents.create,
        params=params,
        options={"idempotency_key": f"transfer-{transfer_id}-payment-intent"},
    )


def payment_intent_retrieve(payment_intent_id):
    """The PaymentIntent with its latest charge (whose card tells the issuing country), typed."""
    return payment_intent_state(_call(client().v1.payment_intents.retrieve, payment_intent_id,
                                      params={"expand": ["latest_charge"]}))


def card_payment_method(*, transfer_id, token):
    """A PaymentMethod from the Stripe.js token (`type=card&card[token]=tok_…`), and what its card says."""
    method = _call(client().v1.payment_methods.create, params={"type": "card", "card": {"token": token}},
                   options={"idempotency_key": f"transfer-{transfer_id}-pm-{token}"})
    card = _get(method, "card")
    return method.id, CardFacts(country=_text(_get(card, "country")).upper(), fingerprint=_text(_get(card, "fingerprint")))


def payment_intent_pay(*, transfer_id, payment_intent_id, payment_method_id):
    """One confirm call: the payment method and the 3-D Secure request together (the key is per payment method, so a
    double submit replays the first answer, and another card is a new attempt)."""
    return payment_intent_state(_call(
        client().v1.payment_intents.confirm,
        payment_intent_id,
        params={"payment_method": payment_method_id, "payment_method_options": _three_d_secure(),
                "expand": ["latest_charge"]},
        options={"idempotency_key": f"transfer-{transfer_id}-confirm-{payment_method_id}"},
    ))


def payment_intent_cancel(*, transfer_id, payment_intent_id):
    return _call(client().v1.payment_intents.cancel, payment_intent_id,
                 options={"idempotency_key": f"transfer-{transfer_id}-cancel"})


def charge_retrieve(charge_id):
    """A charge's PaymentIntent and card (for disputes and fraud warnings, which name the charge)."""
    charge = _call(client().v1.charges.retrieve, charge_id)
    return ChargeState(id=charge.id, payment_intent=_text(_get(charge, "payment_intent")), card=_card_facts(charge),
                       disputed=_get(charge, "disputed") is True)


def refund_create(*, transfer_id, payment_intent_id):
    """A full refund of the transfer's PaymentIntent, as a RefundState. The key derives from the transfer: asked again
    (a retry, a crash between this call and our commit) Stripe answers with the same refund."""
    return refund_state(_call(client().v1.refunds.create, params={"payment_intent": payment_intent_id},
                              options={"idempotency_key": f"transfer-{transfer_id}-refund"}))


def refund_retrieve(refund_id):
    """A refund as Stripe holds it now (its status moves: pending → succeeded, or succeeded → failed)."""
    return refund_state(_call(client().v1.refunds.retrieve, refund_id))


# Lists for reconciliation: one listing per object kind over a window, paged by the SDK (`starting_after`), never one
# call per transfer. Stripe's lists filter on `created` only (no status filter), so the status is checked here; the
# window is also checked here, so a server that ignores the filter (stripe-mock) cannot widen it.

LIST_PAGE_SIZE = 100  # Stripe's maximum


def _listed(resource, *, created_gte, created_lt, **params):
    params = {**params, "limit": LIST_PAGE_SIZE, "created": {"gte": created_gte, "lt": created_lt}}

    def fetch():
        return [obj for obj in resource.list(params=params).auto_paging_iter()
                if isinstance(_get(obj, "created"), int) and created_gte <= obj.created < created_lt]

    return _call(fetch)


def payment_intents_succeeded(*, created_gte, created_lt):
    """Succeeded PaymentIntents created in [created_gte, created_lt) (Unix seconds), with their transfer id."""
    return [ListedPaymentIntent(state=payment_intent_state(obj),
                                transfer_id=_text(_get(_get(obj, "metadata"), "transfer_id")))
            for obj in _listed(client().v1.payment_intents, created_gte=created_gte, created_lt=created_lt)
            if _get(obj, "status") == "succeeded"]


def refunds_succeeded(*, created_gte, created_lt):
    """Succeeded refunds created in [created_gte, created_lt): a pending or failed refund has returned nothing yet."""
    return [refund for refund in map(refund_state, _listed(client().v1.refunds, created_gte=created_gte,
                                                           created_lt=created_lt))
            if refund.status == "succeeded"]


def disputes_listed(*, created_gte, created_lt):
    """Disputes created in [created_gte, created_lt), whatever their status (each was booked when opened)."""
    return [dispute_state(obj) for obj in _listed(client().v1.disputes, created_gte=created_gte,
                                                  created_lt=created_lt)]


def refund_find(refund_id):
    """A refund Stripe knows, or None: for the few the listing did not show (reconciliation's exceptions)."""
    try:
        return refund_state(_call(client().v1.refunds.retrieve, refund_id))
    except ProcessorRequestRefused:
        return None


def disputes_of_charge(charge_id):
    """The charge's disputes (Stripe filters on `charge`; checked here too, for a server that ignores the filter)."""
    def fetch():
        return [obj for obj in client().v1.disputes.list(params={"charge": charge_id, "limit": LIST_PAGE_SIZE})
                .auto_paging_iter() if _get(obj, "charge") == charge_id]

    return [dispute_state(obj) for obj in _call(fetch)]


def dispute_retrieve(dispute_id):
    try:
        return dispute_state(_call(client().v1.disputes.retrieve, dispute_id))
    except ProcessorRequestRefused:
        return None


def payment_intent_find(payment_intent_id):
    """payment_intent_retrieve, or None when Stripe does not know it."""
    try:
        return payment_intent_retrieve(payment_intent_id)
    except ProcessorRequestRefused:
        return None


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


def _get(obj, name):
    return getattr(obj, name, None) if isinstance(obj, stripe.StripeObject) else None


def _text(value):
    return value if isinstance(value, str) else ""


@dataclass(frozen=True)
class CardFacts:
    """What a card's PaymentMethod or charge says about it: issuing country, fingerprint, 3-D Secure outcome."""

    country: str
    fingerprint: str
    three_d_secure: str = ""


def _card_facts(charge):
    card = _get(_get(charge, "payment_method_details"), "card")
    if card is None:
        return None
    return CardFacts(country=_text(_get(card, "country")).upper(), fingerprint=_text(_get(card, "fingerprint")),
                     three_d_secure=_text(_get(_get(card, "three_d_secure"), "result")))


@dataclass(frozen=True)
class ChargeState:
    id: str
    payment_intent: str
    card: CardFacts | None
    disputed: bool = False


@dataclass(frozen=True)
class PaymentIntentState:
    """What the funding steps read of a PaymentIntent, typed (a webhook's object is whatever its JSON was). From the
    API (retrieve, confirm) it also carries its latest charge's id and card; from an event's object it does not."""

    id: str
    amount: int
    currency: str
    status: str
    client_secret: str = ""
    charge_id: str = ""
    card: CardFacts | None = None


def payment_intent_state(obj):
    """A PaymentIntent from an event or an API answer → PaymentIntentState; anything else → WebhookRefused."""
    fields = {"id": str, "amount": int, "currency": str, "status": str}
    values = {k: getattr(obj, k, None) for k in fields} if isinstance(obj, stripe.StripeObject) else {}
    if not values or any(not isinstance(values[k], t) or isinstance(values[k], bool) for k, t in fields.items()):
        raise WebhookRefused("A payment_intent event needs data.object with id, amount, currency and status.")
    charge = _get(obj, "latest_charge")
    return PaymentIntentState(**values, client_secret=_text(_get(obj, "client_secret")),
                              charge_id=_text(charge) or _text(_get(charge, "id")), card=_card_facts(charge))


@dataclass(frozen=True)
class ListedPaymentIntent:
    state: PaymentIntentState
    transfer_id: str  # metadata.transfer_id: set on every PaymentIntent we create


@dataclass(frozen=True)
class DisputeState:
    """A dispute or an early fraud warning, as the funding steps read it."""

    id: str
    charge: str
    payment_intent: str
    amount: int | None
    currency: str
    reason: str


def _dispute_like(obj, *, what, reason_field):
    values = {k: _get(obj, k) for k in ("id", "charge", "payment_intent", "amount", "currency", reason_field)}
    charge = values["charge"] if isinstance(values["charge"], str) else _get(values["charge"], "id")
    if not isinstance(values["id"], str) or not values["id"] or not isinstance(charge, str) or not charge:
        raise WebhookRefused(f"A {what} event needs data.object with an id and its charge.")
    amount = values["amount"]
    if amount is not None and (not isinstance(amount, int) or isinstance(amount, bool)):
        raise WebhookRefused(f"A {what} event's amount must be an integer.")
    intent = values["payment_intent"]
    return DisputeState(id=values["id"], charge=charge,
                        payment_intent=intent if isinstance(intent, str) else _text(_get(intent, "id")),
                        amount=amount, currency=_text(values["currency"]).upper(),
                        reason=_text(values[reason_field])[:100])


def dispute_state(obj):
    """`charge.dispute.*` → DisputeState; anything else → WebhookRefused."""
    return _dispute_like(obj, what="dispute", reason_field="reason")


def early_fraud_warning_state(obj):
    """`radar.early_fraud_warning.*` → DisputeState (no amount: nothing moved yet); anything else → WebhookRefused."""
    return _dispute_like(obj, what="fraud warning", reason_field="fraud_type")


@dataclass(frozen=True)
class RefundState:
    """A refund as the refund steps read it. `status`: pending, requires_action, succeeded, failed or canceled; only
    `succeeded` means the money went back."""

    id: str
    status: str
    amount: int
    currency: str
    payment_intent: str
    charge: str
    failure_reason: str = ""

    @property
    def succeeded(self):
        return self.status == "succeeded"

    @property
    def failed(self):
        return self.status in ("failed", "canceled")


def refund_state(obj):
    """A refund from an event or an API answer → RefundState; anything else → WebhookRefused."""
    values = {k: _get(obj, k) for k in ("id", "status", "amount", "currency", "payment_intent", "charge",
                                        "failure_reason")}
    amount = values["amount"]
    if (not isinstance(values["id"], str) or not values["id"] or not isinstance(values["status"], str)
            or not isinstance(amount, int) or isinstance(amount, bool)):
        raise WebhookRefused("A refund event needs data.object with id, status and amount.")
    intent, charge = values["payment_intent"], values["charge"]
    return RefundState(id=values["id"], status=values["status"], amount=amount,
                       currency=_text(values["currency"]).upper(),
                       payment_intent=intent if isinstance(intent, str) else _text(_get(intent, "id")),
                       charge=charge if isinstance(charge, str) else _text(_get(charge, "id")),
                       failure_reason=_text(values["failure_reason"])[:100])


@dataclass(frozen=True)
class ChargeRef:
    """What a `charge.refunded` event names: the charge and its PaymentIntent."""

    id: str
    payment_intent: str


def charge_ref(obj):
    charge_id, intent = _get(obj, "id"), _get(obj, "payment_intent")
    if not isinstance(charge_id, str) or not charge_id:
        raise WebhookRefused("A charge event needs data.object with an id.")
    return ChargeRef(id=charge_id, payment_intent=intent if isinstance(intent, str) else _text(_get(intent, "id")))
