"""localstripe, closer to the parts of the Stripe API that tulpar calls.

localstripe (PyPI) is a real server that keeps state: PaymentIntents, charges, refunds and webhooks all run its
own flow. Where it falls short of Stripe's documented behaviour for the calls we make, `install()` changes its
resource classes (before its server module builds the routes) so that they behave as Stripe documents them:

- `POST /v1/payment_methods` with `type=card&card[token]=tok_…` makes a PaymentMethod from the token's card
  (same fingerprint, same country); a token can be used once, as on Stripe.
- Test cards carry their documented issuing country (docs.stripe.com/testing#international-cards, e.g.
  4000006430000009 is Russian); every other test card is a US card, as Stripe's basic test cards are.
- `POST /v1/payment_intents/{id}/confirm` takes `payment_method` (attached, then confirmed, in the one call) and
  `payment_method_options[card][request_three_d_secure]` (`automatic`, `any` or `challenge`, recorded on the
  PaymentIntent, as is an option given at creation). With `any`/`challenge`, a card that supports 3-D Secure goes
  to `requires_action`, as on Stripe; with `automatic` only the cards that require it do. A payment that was
  authenticated records `payment_method_details.card.three_d_secure` on its charge.
- `POST /v1/payment_intents` takes `receipt_email` (Stripe e-mails its receipt there), kept on the PaymentIntent.
- Charges carry `payment_method_details.card` (brand, country, fingerprint, last4, three_d_secure) and `disputed`.
- Stripe's decline test cards decline at charge time with their documented codes (insufficient_funds,
  lost_card, stolen_card, expired_card, incorrect_cvc, processing_error, fraudulent), as `card_error`s.
- Stripe's dispute test cards: a successful charge with 4000000000000259 (fraudulent), 4000000000002685
  (product not received) or 4000000000001976 (inquiry) is then disputed (`charge.dispute.created`); one with
  4000000000005423 gets an early fraud warning (`radar.early_fraud_warning.created`). `GET /v1/disputes/{id}` and
  `GET /v1/radar/early_fraud_warnings/{id}` answer. A disputed charge cannot be refunded (`charge_disputed`).
- Refunds run as on Stripe: `refund.created` and `charge.refunded` go out when a refund is made, and Stripe's
  asynchronous refund test cards (docs.stripe.com/testing#refunds; in live mode card refunds are asynchronous):
  a refund of a charge made with 4000000000007726 begins `pending` and turns `succeeded` a moment later
  (`refund.updated`); one with 4000000000005126 begins `succeeded` and turns `failed` a moment later
  (`failure_reason` expired_or_canceled_card; `refund.updated` and `refund.failed`). A failed refund no longer
  counts in the charge's `amount_refunded`; a refund of more than is left to refund is refused
  (`charge_already_refunded`).
- `Idempotency-Key`: the same key with the same parameters replays the first answer (a 200 or a card decline);
  with other parameters it is refused (`idempotency_error`), as on Stripe.
- `GET /v1/payment_intents`, `/v1/refunds` and `/v1/disputes` take Stripe's `created` filter (`gt`, `gte`, `lt`,
  `lte`, or an exact timestamp) and list newest first, as Stripe does (localstripe refuses `created` on these lists),
  so `starting_after` pages through them as the SDK's auto-pagination expects.
- Events carry the API version the webhook endpoint was registered with (`api_version` in
  `POST /_config/webhooks/{id}`), or `--api-version`.

For tests (the `/_config/…` family is localstripe's own configuration API): `POST /_config/disputes` (form field
`charge`) has the card's bank dispute that charge now; `GET /_config/requests` lists the
API requests received since the last `DELETE /_config/data` (method, path, Idempotency-Key, Stripe-Version and
the parameters, card numbers and CVCs redacted).
"""

import asyncio
import hashlib
import json
import re

from aiohttp import web
from localstripe import resources as R
from localstripe.errors import UserError

# Issuing country of Stripe's international test cards (docs.stripe.com/testing#international-cards).
TEST_CARD_COUNTRIES = {
    "4000000760000002": "BR", "4000001240000000": "CA", "4000004840008001": "MX", "4000000400000008": "AT",
    "4000000560000004": "BE", "4000001000000000": "BG", "4000001960000008": "CY", "4000002030000002": "CZ",
    "4000002080000001": "DK", "4000002330000009": "EE", "4000002460000001": "FI", "4000002500000003": "FR",
    "4000002760000016": "DE", "4000003000000030": "GR", "4000003480000005": "HU", "4000003720000005": "IE",
    "4000003800000008": "IT", "4000004280000005": "LV", "4000004400000000": "LT", "4000004420000006": "LU",
    "4000004700000007": "MT", "4000005280000002": "NL", "4000005780000007": "NO", "4000006160000005": "PL",
    "4000006200000007": "PT", "4000006420000001": "RO", "4000006430000009": "RU", "4000007050000006": "SI",
    "4000007030000001": "SK", "4000007240000007": "ES", "4000007520000008": "SE", "4000007560000009": "CH",
    "4000008260000000": "GB", "4000058260000005": "GB", "4000000360000006": "AU", "4000001560000002": "CN",
    "4000003440000004": "HK", "4000003560000008": "IN", "4000003920000003": "JP", "3530111333300000": "JP",
    "4000004580000002": "MY", "4000005540000008": "NZ", "4000007020000003": "SG",
    # Stripe's 3-D Secure test cards that name a country in their number.
    "4000002500003155": "FR", "4000002760003184": "DE", "4000008260003178": "GB", "4000008400001629": "US",
}

# Decline test cards: number → (code, decline_code, message), as Stripe's card_error carries them at charge time.
DECLINES = {
    "4000000000000002": ("card_declined", "generic_decline", "Your card was declined."),
    "4000000000009995": ("card_declined", "insufficient_funds", "Your card has insufficient funds."),
    "4000000000009987": ("card_declined", "lost_card", "Your card was declined."),
    "4000000000009979": ("card_declined", "stolen_card", "Your card was declined."),
    "4000000000000069": ("expired_card", None, "Your card has expired."),
    "4000000000000127": ("incorrect_cvc", None, "Your card's security code is incorrect."),
    "4000000000000119": ("processing_error", None, "An error occurred while processing your card. Try again in a little bit."),
    "4100000000000019": ("card_declined", "fraudulent", "Your card was declined."),
    # localstripe's own: attaches, then every charge fails; and two 3-D Secure cards that decline after authenticating.
    "4000000000000341": ("card_declined", "generic_decline", "Your card was declined."),
    "4000008260003178": ("card_declined", "insufficient_funds", "Your card has insufficient funds."),
    "4000008400001629": ("card_declined", "card_declined", "Your card was declined."),
}

# Dispute test cards: the charge succeeds, then it is disputed with this reason (and status).
DISPUTES = {
    "4000000000000259": ("fraudulent", "needs_response"),
    "4000000000002685": ("product_not_received", "needs_response"),
    "4000000000001976": ("fraudulent", "warning_needs_response"),
}
EARLY_FRAUD_WARNING = "4000000000005423"
# Stripe files these a moment after the charge, so its payment_intent.succeeded goes out first.
AFTER_CHARGE_SECONDS = 1.5

# Stripe's asynchronous refund test cards: pending → succeeded, and succeeded → failed, "some time later".
PENDING_REFUND_CARD = "4000000000007726"
FAILING_REFUND_CARD = "4000000000005126"
REFUND_MOVES_AFTER_SECONDS = 1.5

THREE_D_SECURE_REQUESTS = ("automatic", "any", "challenge")
STATE = {"api_version": None}
REQUESTS = []
IDEMPOTENT = {}


def card_country(number):
    return TEST_CARD_COUNTRIES.get(number, "US")


def _card_number(source_id):
    try:
        return getattr(R.PaymentMethod._api_retrieve(source_id), "_card_number", None)
    except UserError:
        return None


def _supports_three_d_secure(method):
    if getattr(method, "type", None) != "card":
        return False
    if method.object == "card":  # a legacy card (from a token): same test numbers as payment methods
        return True
    return bool((method.card.get("three_d_secure_usage") or {}).get("supported"))


# Cards and payment methods -----------------------------------------------------------------------

_card_init = R.Card.__init__


def card_init(self, source=None, **kwargs):
    _card_init(self, source=source, **kwargs)
    self.country = card_country(self._card_number)


_pm_init = R.PaymentMethod.__init__


def payment_method_init(self, type=None, billing_details=None, card=None, sepa_debit=None, metadata=None, **kwargs):
    token = None
    if type == "card" and isinstance(card, dict) and set(card) == {"token"}:
        token = R.Token._api_retrieve(card["token"]) if isinstance(card["token"], str) else None
        if token is None or not card["token"].startswith("tok_"):
            raise UserError(400, "Bad request")
        if getattr(token, "used", False):
            raise UserError(400, f"You cannot use a Stripe token more than once: {token.id}.",
                            {"code": "token_already_used"})
        c = token.card
        card = {"number": c._card_number, "exp_month": str(c.exp_month), "exp_year": str(c.exp_year), "cvc": "000"}
    _pm_init(self, type=type, billing_details=billing_details, card=card, sepa_debit=sepa_debit, metadata=metadata,
             **kwargs)
    if self.type == "card":
        self.card["country"] = card_country(self._card_number)
    if token is not None:
        token.used = True


def charging_is_declined(self):
    if self.type == "card":
        return self._card_number in DECLINES
    return self.type == "sepa_debit" and self._sepa_debit_iban == "DE62370400440532013001"


# Charges -----------------------------------------------------------------------------------------

def charge_set_auth_failure(self):
    code, decline_code, message = DECLINES.get(_card_number(self.payment_method),
                                               ("card_declined", "generic_decline", "Your card was declined."))
    self.status = "failed"
    self.failure_code = code
    self.failure_message = message
    self._decline_code = decline_code


def charge_raise_failure(self):
    contents = {"code": self.failure_code, "charge": self.id}
    if getattr(self, "_decline_code", None):
        contents["decline_code"] = self._decline_code
    if self.payment_intent:
        contents["payment_intent"] = {"id": self.payment_intent}
    error = UserError(402, self.failure_message, contents)
    error.body["error"]["type"] = "card_error"
    raise error


def charge_payment_method_details(self):
    method = R.PaymentMethod._api_retrieve(self.payment_method)
    if method.object == "card":
        card = {"brand": method.brand.lower(), "country": method.country, "exp_month": method.exp_month,
                "exp_year": method.exp_year, "fingerprint": method.fingerprint, "funding": method.funding,
                "last4": method.last4}
    elif method.type == "card":
        card = {k: method.card[k] for k in ("brand", "country", "exp_month", "exp_year", "fingerprint", "funding",
                                            "last4")}
    else:
        return {"type": method.type}
    card["three_d_secure"] = getattr(self, "_three_d_secure", None)
    return {"type": "card", "card": card}


def charge_disputed(self):
    return any(key.startswith("dispute:") and value.charge == self.id for key, value in R.store.items())


# PaymentIntents ----------------------------------------------------------------------------------

def _payment_method_options(options, current=None):
    """Validate `payment_method_options` as Stripe does for the card part, merged over `current`."""
    merged = json.loads(json.dumps(current or {"card": {"request_three_d_secure": "automatic"}}))
    if options is None:
        return merged
    if not isinstance(options, dict) or set(options) - {"card"}:
        raise UserError(400, "Received unknown parameter: payment_method_options")
    card = options.get("card") or {}
    if not isinstance(card, dict) or set(card) - {"request_three_d_secure"}:
        raise UserError(400, "Received unknown parameter: payment_method_options[card]")
    if "request_three_d_secure" in card:
        if card["request_three_d_secure"] not in THREE_D_SECURE_REQUESTS:
            raise UserError(400, "Invalid payment_method_options[card][request_three_d_secure]: must be one of "
                            + ", ".join(THREE_D_SECURE_REQUESTS), {"param": "payment_method_options[card][request_three_d_secure]"})
        merged["card"]["request_three_d_secure"] = card["request_three_d_secure"]
    return merged


_pi_init = R.PaymentIntent.__init__


def payment_intent_init(self, *args, payment_method_options=None, receipt_email=None, **kwargs):
    options = _payment_method_options(payment_method_options)
    if receipt_email is not None and (not isinstance(receipt_email, str) or "@" not in receipt_email):
        raise UserError(400, "Invalid email address: receipt_email", {"param": "receipt_email"})
    _pi_init(self, *args, **kwargs)
    self.payment_method_options = options
    self.receipt_email = receipt_email


def _unexpected_state(intent):
    return UserError(400, f"You cannot confirm this PaymentIntent because it has a status of {intent.status}.",
                     {"code": "payment_intent_unexpected_state"})


def payment_intent_api_confirm(cls, id, payment_method=None, payment_method_options=None, **kwargs):
    if kwargs:
        raise UserError(400, "Unexpected " + ", ".join(kwargs.keys()))
    if not isinstance(id, str) or not id.startswith("pi_"):
        raise UserError(400, "Bad request")
    obj = cls._api_retrieve(id)
    options = _payment_method_options(payment_method_options, getattr(obj, "payment_method_options", None))
    if payment_method is not None:
        if not isinstance(payment_method, str):
            raise UserError(400, "Bad request")
        if obj.status not in ("requires_payment_method", "requires_confirmation"):
            raise _unexpected_state(obj)
        method = R.PaymentMethod._api_retrieve(payment_method)  # 404 if it does not exist
        obj.payment_method = method.id
        if obj.latest_charge is not None and obj.latest_charge.status == "failed":
            obj.latest_charge = None  # a new attempt; the failed charge stays listed
        obj._authentication_failed = False
    if obj.status != "requires_confirmation":
        raise _unexpected_state(obj)
    obj.payment_method_options = options
    obj._confirm(on_failure_now=obj._report_failure)
    return obj


def payment_intent_confirm(self, on_failure_now):
    self._authentication_failed = False
    method = R.PaymentMethod._api_retrieve(self.payment_method)
    requested = (getattr(self, "payment_method_options", None) or {}).get("card", {}).get("request_three_d_secure")
    if method._requires_authentication() or (requested in ("any", "challenge") and _supports_three_d_secure(method)):
        self.next_action = {"type": "use_stripe_sdk",
                            "use_stripe_sdk": {"type": "three_d_secure_redirect", "stripe_js": ""}}
    else:
        self._create_charge(on_failure_now=on_failure_now)


def payment_intent_create_charge(self, on_failure_now):
    if self.status != "requires_confirmation":
        raise UserError(400, "Bad request")
    charge = R.Charge(amount=self.amount, currency=self.currency, customer=self.customer, source=self.payment_method,
                      capture=(self.capture_method != "manual"))
    charge.payment_intent = self.id
    charge._three_d_secure = getattr(self, "_three_d_secure_outcome", None)
    self._three_d_secure_outcome = None
    self.latest_charge = charge
    charge._initialize_charge(self._on_success, on_failure_now, self._report_async_failure)


_pi_authenticate = R.PaymentIntent._api_authenticate.__func__


def payment_intent_api_authenticate(cls, id, client_secret=None, success=False, **kwargs):
    obj = store_get("payment_intent", id)
    if obj is not None and R.try_convert_to_bool(success) is True:
        obj._three_d_secure_outcome = {"authentication_flow": "challenge", "result": "authenticated",
                                       "result_reason": None, "version": "2.2.0"}
    try:
        return _pi_authenticate(cls, id, client_secret=client_secret, success=success, **kwargs)
    finally:
        if obj is not None:
            obj._three_d_secure_outcome = None


_pi_on_success = R.PaymentIntent._on_success


def payment_intent_on_success(self):
    _pi_on_success(self)
    charge = self.latest_charge
    number = _card_number(self.payment_method)
    if number in DISPUTES:
        reason, status = DISPUTES[number]
        _later(lambda: Dispute._open(charge, reason=reason, status=status))
    elif number == EARLY_FRAUD_WARNING:
        _later(lambda: EarlyFraudWarning._open(charge))


def _later(fn, seconds=AFTER_CHARGE_SECONDS):
    try:
        asyncio.get_running_loop().call_later(seconds, fn)
    except RuntimeError:  # no loop (called outside the server): file it now
        fn()


def store_get(object_name, id):
    return R.store.get(f"{object_name}:{id}") if isinstance(id, str) else None


# Refunds -----------------------------------------------------------------------------------------

_refund_init = R.Refund.__init__


def refund_init(self, charge=None, payment_intent=None, amount=None, metadata=None, **kwargs):
    charge_id = charge
    if charge_id is None:
        intent = store_get("payment_intent", payment_intent)
        charge_id = intent.latest_charge.id if intent is not None and intent.latest_charge is not None else None
    disputed = store_get("charge", charge_id)
    if disputed is not None and charge_disputed(disputed):
        raise UserError(400, f"Charge {charge_id} has been charged back; cannot issue a refund.",
                        {"code": "charge_disputed"})
    if disputed is not None:
        remaining = disputed.amount - charge_amount_refunded(disputed)
        requested = R.try_convert_to_int(amount) if amount is not None else remaining
        if remaining <= 0 or (isinstance(requested, int) and requested > remaining):
            raise UserError(400, f"Charge {charge_id} has already been refunded.",
                            {"code": "charge_already_refunded"})
    _refund_init(self, charge=charge, payment_intent=payment_intent, amount=amount, metadata=metadata, **kwargs)
    self.failure_reason = None
    self.failure_balance_transaction = None
    self.pending_reason = None
    refunded = store_get("charge", self.charge)
    number = _card_number(refunded.payment_method) if refunded is not None else None
    if number == PENDING_REFUND_CARD:
        self.status = "pending"
        self.pending_reason = "processing"
        _later(lambda: self.status == "pending" and _refund_moves(self, "succeeded"), REFUND_MOVES_AFTER_SECONDS)
    elif number == FAILING_REFUND_CARD:
        _later(lambda: _refund_moves(self, "failed", failure_reason="expired_or_canceled_card"),
               REFUND_MOVES_AFTER_SECONDS)
    R.schedule_webhook(R.Event("refund.created", self))
    if refunded is not None:
        R.schedule_webhook(R.Event("charge.refunded", refunded))


def _refund_moves(refund, status, failure_reason=None):
    """A refund's status changes later, as Stripe's asynchronous refunds do, with the events Stripe sends."""
    refund.status = status
    refund.pending_reason = None
    if failure_reason:
        refund.failure_reason = failure_reason
        refund.failure_balance_transaction = R.BalanceTransaction(
            amount=refund.amount, currency=refund.currency, description="REFUND FAILURE", exchange_rate=1.0,
            reporting_category="refund", source=refund.id, type="refund").id  # localstripe knows no refund_failure
    R.schedule_webhook(R.Event("refund.updated", refund))
    if status == "failed":
        R.schedule_webhook(R.Event("refund.failed", refund))


def charge_amount_refunded(self):
    return sum(r.amount for r in self.refunds._list if r.status not in ("failed", "canceled"))


# Disputes and early fraud warnings ---------------------------------------------------------------

class Dispute(R.StripeObject):
    object = "dispute"
    _id_prefix = "dp_"

    def __init__(self, charge=None, reason="fraudulent", status="needs_response"):
        super().__init__()
        self.amount = charge.amount
        self.currency = charge.currency
        self.charge = charge.id
        self.payment_intent = charge.payment_intent
        self.reason = reason
        self.status = status
        self.is_charge_refundable = False
        self.balance_transactions = []
        self.evidence_details = {"due_by": self.created + 7 * 86400, "has_evidence": False, "past_due": False,
                                 "submission_count": 0}
        self.metadata = {}

    @classmethod
    def _open(cls, charge, *, reason, status):
        dispute = cls(charge=charge, reason=reason, status=status)
        R.schedule_webhook(R.Event("charge.dispute.created", dispute))
        # Stripe fails a refund still pending on a charge that gets disputed.
        for refund in charge.refunds._list:
            if refund.status == "pending":
                _refund_moves(refund, "failed", failure_reason="charge_for_pending_refund_disputed")
        return dispute

    @classmethod
    def _api_create(cls, **data):
        raise UserError(405, "Method Not Allowed")

    @classmethod
    def _api_delete(cls, id):
        raise UserError(405, "Method Not Allowed")


class EarlyFraudWarning(R.StripeObject):
    object = "radar.early_fraud_warning"
    _id_prefix = "issfr_"

    def __init__(self, charge=None):
        super().__init__()
        self.actionable = True
        self.charge = charge.id
        self.payment_intent = charge.payment_intent
        self.fraud_type = "made_with_stolen_card"

    @classmethod
    def _open(cls, charge):
        warning = cls(charge=charge)
        R.schedule_webhook(R.Event("radar.early_fraud_warning.created", warning))
        return warning

    @classmethod
    def _api_create(cls, **data):
        raise UserError(405, "Method Not Allowed")

    @classmethod
    def _api_delete(cls, id):
        raise UserError(405, "Method Not Allowed")


# Lists -------------------------------------------------------------------------------------------

def _created_filter(created):
    """Stripe's `created` list filter: an exact timestamp, or a dict of gt/gte/lt/lte bounds."""
    if created is None:
        return lambda obj: True
    if not isinstance(created, dict):
        created = {"eq": created}
    bounds = {}
    for op, value in created.items():
        value = R.try_convert_to_int(value)
        if op not in ("gt", "gte", "lt", "lte", "eq") or not isinstance(value, int):
            raise UserError(400, f"Invalid created[{op}]: must be a Unix timestamp", {"param": f"created[{op}]"})
        bounds[op] = value
    tests = {"gt": lambda c, v: c > v, "gte": lambda c, v: c >= v, "lt": lambda c, v: c < v,
             "lte": lambda c, v: c <= v, "eq": lambda c, v: c == v}
    return lambda obj: all(tests[op](obj.created, v) for op, v in bounds.items())


def _listing(original, filters=()):
    """A list endpoint that also takes `created` and answers newest first (Stripe's order)."""

    def api_list_all(cls, url, created=None, limit=None, starting_after=None, **kwargs):
        keep = _created_filter(created)
        # Stripe's `charge` and `payment_intent` filters on disputes (localstripe's refunds list has its own).
        wanted = {k: kwargs.pop(k) for k in filters if kwargs.get(k) is not None}
        li = original(cls, url, limit=limit, starting_after=starting_after, **kwargs)
        li._list = sorted((obj for obj in li._list if keep(obj) and all(getattr(obj, k, None) == v
                                                                        for k, v in wanted.items())),
                          key=lambda obj: obj.created, reverse=True)
        return li

    return classmethod(api_list_all)


# Events ------------------------------------------------------------------------------------------

_event_init = R.Event.__init__


def event_init(self, type, data):
    _event_init(self, type, data)
    if STATE["api_version"]:
        self.api_version = STATE["api_version"]


# Installing --------------------------------------------------------------------------------------

def _replace_extra_api(original, replacement):
    for i, (method, url, func) in enumerate(R.extra_apis):
        if getattr(func, "__func__", None) is original:
            R.extra_apis[i] = (method, url, replacement)


def install(*, api_version=None):
    """Patch localstripe's resources. Call before `localstripe.server` is imported (it builds its routes from them)."""
    STATE["api_version"] = api_version
    R.Card.__init__ = card_init
    R.PaymentMethod.__init__ = payment_method_init
    R.PaymentMethod._charging_is_declined = charging_is_declined
    R.Charge._set_auth_failure = charge_set_auth_failure
    R.Charge._raise_failure = charge_raise_failure
    R.Charge.payment_method_details = property(charge_payment_method_details)
    R.Charge.disputed = property(charge_disputed)
    R.PaymentIntent.__init__ = payment_intent_init
    R.PaymentIntent._confirm = payment_intent_confirm
    R.PaymentIntent._create_charge = payment_intent_create_charge
    R.PaymentIntent._on_success = payment_intent_on_success
    original_confirm = R.PaymentIntent._api_confirm.__func__
    R.PaymentIntent._api_confirm = classmethod(payment_intent_api_confirm)
    R.PaymentIntent._api_authenticate = classmethod(payment_intent_api_authenticate)
    _replace_extra_api(original_confirm, R.PaymentIntent._api_confirm)
    _replace_extra_api(_pi_authenticate, R.PaymentIntent._api_authenticate)
    R.Refund.__init__ = refund_init
    R.Charge.amount_refunded = property(charge_amount_refunded)
    R.Event.__init__ = event_init
    for cls in (R.PaymentIntent, R.Refund):
        cls._api_list_all = _listing(cls._api_list_all.__func__)
    Dispute._api_list_all = _listing(Dispute._api_list_all.__func__, filters=("charge", "payment_intent"))


def add_routes(server):
    """Routes for the objects localstripe lacks, and the middleware for idempotency keys and the request log."""
    from localstripe import server as S

    app = server.app
    for cls, url in ((Dispute, "/v1/disputes"), (EarlyFraudWarning, "/v1/radar/early_fraud_warnings")):
        app.router.add_route("GET", url + "/{id}", S.api_retrieve(cls, url))
        app.router.add_route("GET", url, S.api_list_all(cls, url))
    app.router.add_get("/_config/requests", _requests_view)
    app.router.add_post("/_config/disputes", _dispute_open_view)
    app.middlewares.append(_observe)


async def _dispute_open_view(request):
    """Test control: the card's bank disputes charge `charge` now (Stripe's dispute test cards dispute at once, so
    they cannot play a dispute that comes after a refund)."""
    form = await request.post()
    charge = store_get("charge", form.get("charge"))
    if charge is None:
        return web.json_response({"error": {"message": "No such charge"}}, status=404)
    dispute = Dispute._open(charge, reason=form.get("reason", "fraudulent"), status="needs_response")
    return web.json_response(dispute._export())


async def _requests_view(request):
    return web.json_response(REQUESTS)


REDACTED = re.compile(r"(number|cvc)\]?$")


def _flatten(data, prefix=""):
    out = {}
    if isinstance(data, dict):
        for key, value in data.items():
            out.update(_flatten(value, f"{prefix}[{key}]" if prefix else str(key)))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            out.update(_flatten(value, f"{prefix}[{i}]"))
    else:
        out[prefix] = "***" if REDACTED.search(prefix) else data
    return out


@web.middleware
async def _observe(request, handler):
    from localstripe import server as S

    if request.method == "DELETE" and request.path == "/_config/data":
        REQUESTS.clear()
        IDEMPOTENT.clear()
        return await handler(request)
    if request.path.startswith("/_config/webhooks/") and request.method == "POST":
        data = await S.get_post_data(request, remove_auth=False) or {}
        if isinstance(data.get("api_version"), str):
            STATE["api_version"] = data["api_version"]
        return await handler(request)
    if not request.path.startswith("/v1/"):
        return await handler(request)

    if request.method == "POST":
        params = _flatten(await S.get_post_data(request, remove_auth=False) or {})
    else:
        params = _flatten(S.unflatten_data(request.query))
    key = request.headers.get("Idempotency-Key")
    REQUESTS.append({"method": request.method, "path": request.path, "idempotency_key": key,
                     "stripe_version": request.headers.get("Stripe-Version"), "params": params})

    if request.method != "POST" or not key:
        return await handler(request)
    digest = hashlib.sha256(json.dumps([request.path, params], sort_keys=True, default=str).encode()).hexdigest()
    if key in IDEMPOTENT:
        first_digest, status, body = IDEMPOTENT[key]
        if first_digest != digest:
            return web.json_response({"error": {
                "type": "idempotency_error",
                "message": f"Keys for idempotent requests can only be used with the same parameters they were first "
                           f"used with. Try using a key other than '{key}' if you meant to execute a different "
                           f"request."}}, status=400)
        return web.Response(body=body, status=status, content_type="application/json",
                            headers={"Idempotent-Replayed": "true"})
    try:
        response = await handler(request)
    except UserError as exc:
        response = exc.to_response()
    if response.status in (200, 402):
        IDEMPOTENT[key] = (digest, response.status, response.body)
    return response
