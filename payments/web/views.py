"""Sender web flow and status pages: each view parses input, calls the service and renders.

start (amount, live preview) → details (sender, recipient, wallet) → pay (card via Stripe.js) → status pages.
"""

import uuid
from datetime import UTC, timedelta
from functools import wraps
from zoneinfo import ZoneInfo

from django.conf import settings
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.cache import cache_control, never_cache
from django.views.decorators.http import require_GET, require_http_methods
from django_htmx.http import HttpResponseClientRedirect

from common.errors import ApplicationError
from common.ratelimit import client_ip, rate_limit_hit
from payments.errors import (
    CardAttemptsExhausted,
    FundingPending,
    FundingUnavailable,
    IdempotencyMismatch,
    QuoteAlreadyUsed,
    QuoteExpired,
    QuoteNotFound,
    TransferNotCancellable,
    TransferNotPayable,
    VelocityLimited,
)
from payments.models import Transfer
from payments.pipeline_cancel import CANCEL_TOO_LATE, transfer_cancel, transfer_cancellable, under_review_message
from payments.pipeline_card import attempts_exhausted_message, card_attempts_left, transfer_pay_card
from payments.selectors import transfer_settlement
from payments.services import us_remittance
from payments.services.eta import transfer_eta
from payments.services.quotes import quote_create, quote_get_usable, quote_price, quote_target_currency
from payments.services.transfers import request_fingerprint, transfer_create, transfer_funding_prepare
from payments.services.travel_rule import travel_rule_required
from payments.web.forms import AmountForm, DetailsForm, PayForm
from payments.web.status import status_context

S = Transfer.Status


def rate_limited(scope):
    """Count this view's POSTs per client address in `scope` (common.ratelimit; shared across processes); past the
    limit, a 429 page in the visitor's language with Retry-After, and the view does not run."""

    def decorate(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if request.method == "POST":
                wait = rate_limit_hit(scope=scope, ident=client_ip(request))
                if wait:
                    response = render(request, "payments/rate_limited.html", {"minutes": -(-wait // 60)}, status=429)
                    response["Retry-After"] = str(wait)
                    return response
            return view(request, *args, **kwargs)

        return wrapped

    return decorate


def referrer_policy(policy):
    """Set this view's Referrer-Policy (SecurityMiddleware only fills it in when a view has not).

    Pages with a form need `same-origin`: under `no-referrer` browsers send `Origin: null` with a form post,
    which Django's CSRF check refuses. Status pages keep `no-referrer`: their URL is the only key to them."""

    def decorate(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            response = view(request, *args, **kwargs)
            response["Referrer-Policy"] = policy
            return response

        return wrapped

    return decorate


@never_cache
@require_GET
def language(request, code):
    """Switch language by a plain link (works on every page whatever its Referrer-Policy, and without JavaScript)."""
    if code not in dict(settings.LANGUAGES):
        raise Http404
    next_url = request.GET.get("next", "/")
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()},
                                           require_https=request.is_secure()):
        next_url = "/"
    response = redirect(next_url)
    response.set_cookie(settings.LANGUAGE_COOKIE_NAME, code, max_age=settings.LANGUAGE_COOKIE_AGE,
                        path=settings.LANGUAGE_COOKIE_PATH, domain=settings.LANGUAGE_COOKIE_DOMAIN,
                        secure=settings.LANGUAGE_COOKIE_SECURE, httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
                        samesite=settings.LANGUAGE_COOKIE_SAMESITE)
    return response


# 1. Amount and live quote preview ----------------------------------------------------------------

@referrer_policy("same-origin")
@require_http_methods(["GET", "POST"])
@rate_limited("web-quote")
def start(request):
    if request.method == "POST":
        form = AmountForm(request.POST)
        if form.is_valid():
            try:
                quote = quote_create(partner=None, **form.quote_kwargs())
            except ApplicationError as exc:
                form.add_service_error(exc)
            else:
                return redirect("web:details", quote_id=quote.id)
    else:
        form = AmountForm()
    return render(request, "payments/start.html", {"form": form, "price": None})


def _ttl_minutes():
    return settings.QUOTE_TTL_SECONDS // 60


@require_GET
def quote_preview(request):
    """The fragment under the amount form: the price as it would be now, or what is wrong with the input."""
    price = None
    if not request.GET.get("source_amount", "").strip():
        form = AmountForm(initial={"source_currency": request.GET.get("source_currency"),  # nothing typed yet
                                   "direction": request.GET.get("direction") or "send",
                                   "target_currency": request.GET.get("target_currency") or "KGS"})
    else:
        form = AmountForm(request.GET)
        if form.is_valid():
            try:
                price = quote_price(**form.quote_kwargs())
            except ApplicationError as exc:
                form.add_service_error(exc)
    return render(request, "payments/_quote_preview.html", {"form": form, "price": price, "oob": True,
                                                               "ttl_minutes": _ttl_minutes()})


# 2. Sender and recipient details -----------------------------------------------------------------

QUOTE_PROBLEMS = {
    QuoteNotFound: lambda: _("We could not find this quote."),
    QuoteExpired: lambda: _("This quote has expired. Prices are held for a limited time: get a new quote to continue."),
    QuoteAlreadyUsed: lambda: _("This quote has already been used for a transfer. Get a new quote to send again."),
    IdempotencyMismatch: lambda: _("This form was already sent with different details. "
                                   "Get a new quote to send again."),
}


def _quote_problem(request, exc):
    message = QUOTE_PROBLEMS.get(type(exc), lambda: exc.detail)()
    return render(request, "payments/quote_problem.html", {"message": message},
                  status=404 if exc.status == 404 else 410)


def _quote_for_form(quote_id):
    """The quote the details page prices; raises if it can no longer back a transfer."""
    quote = quote_get_usable(quote_id=quote_id, partner=None)
    if Transfer.objects.filter(quote=quote).exists():
        raise QuoteAlreadyUsed()
    return quote


SESSION_TRANSFERS = "web_transfers"  # quote id → sender token, for the transfers this browser created


def _remember(request, quote_id, transfer):
    request.session[SESSION_TRANSFERS] = {**request.session.get(SESSION_TRANSFERS, {}), str(quote_id): transfer.sender_token}


def _pay_url(transfer):
    return reverse("web:pay", kwargs={"token": transfer.sender_token})


@referrer_policy("same-origin")
# Revalidated on every visit but not no-store, so the back button may restore a sent form as it was, with its
# idempotency key: sending it again then lands on the same transfer.
@cache_control(private=True, no_cache=True)
@require_http_methods(["GET", "POST"])
@rate_limited("web-transfer")
def details(request, quote_id):
    made_here = request.session.get(SESSION_TRANSFERS, {}).get(str(quote_id))
    status = 200
    if made_here and request.method == "GET":
        # Back to the details of a transfer this browser made: carry on with it (its pay page, or its status).
        return redirect("web:pay", token=made_here)
    travel_rule = travel_rule_required(quote_id=quote_id)  # USD 1,000 or more: the travel rule's fields too
    target_currency = quote_target_currency(quote_id=quote_id)  # which wallet to ask for (BNB Chain or Ethereum)
    if request.method == "POST":
        form = DetailsForm(request.POST, travel_rule=travel_rule, target_currency=target_currency)
        if form.is_valid():
            payload = form.service_payload()
            try:
                transfer, _created = transfer_create(
                    partner=None, idempotency_key=str(form.cleaned_data["idempotency_key"]),
                    fingerprint=request_fingerprint({"quote_id": str(quote_id), **payload}),
                    quote_id=quote_id, **payload)
            except (QuoteNotFound, QuoteExpired, QuoteAlreadyUsed, IdempotencyMismatch) as exc:
                return _quote_problem(request, exc)
            except FundingPending as exc:
                # The transfer is saved; the pay page retries preparing the card payment. (Django keeps no session
                # changes on a 5xx, so the page itself carries the link.)
                return render(request, "payments/details_saved.html",
                              {"transfer": exc.transfer, "pay_url": _pay_url(exc.transfer)}, status=503)
            except ApplicationError as exc:
                form.add_service_error(exc)
                status = 503 if exc.status == 503 else 200  # e.g. the wallet could not be checked: retry later
            else:
                _remember(request, quote_id, transfer)
                return redirect(_pay_url(transfer))
    else:
        form = DetailsForm(initial={"idempotency_key": uuid.uuid4()}, travel_rule=travel_rule,
                           target_currency=target_currency)
    try:
        quote = _quote_for_form(quote_id)
    except (QuoteNotFound, QuoteExpired, QuoteAlreadyUsed) as exc:
        return _quote_problem(request, exc)
    seconds_left = max(int((quote.expires_at - timezone.now()).total_seconds()), 0)
    return render(request, "payments/details.html", {"form": form, "quote": quote, "seconds_left": seconds_left},
                  status=status)


# 3. Card payment ---------------------------------------------------------------------------------

def _wants_json(request):
    return "application/json" in request.headers.get("Accept", "")


def _go(request, url):
    """Redirect a page load, an htmx request or the pay script's fetch alike."""
    if request.htmx:
        return HttpResponseClientRedirect(url)
    if request.method == "POST" and _wants_json(request):
        return JsonResponse({"redirect": url})
    return redirect(url)


@referrer_policy("same-origin")
@never_cache
@require_http_methods(["GET", "POST"])
def pay(request, token):
    transfer = get_object_or_404(Transfer.objects.select_related("quote"), sender_token=token)
    status_url = reverse("web:sender_status", kwargs={"token": token})
    if transfer.status != S.AWAITING_FUNDING:
        return _go(request, status_url)
    form = PayForm(request.POST if request.method == "POST" else None)
    funding_error, retry_after = None, None
    attempts_exhausted = card_attempts_left(transfer) == 0
    if not transfer.payment_intent_id and not attempts_exhausted:
        try:
            transfer = transfer_funding_prepare(transfer=transfer)
        except FundingUnavailable as exc:
            funding_error = exc.detail
    if request.method == "POST" and funding_error is None and not attempts_exhausted and form.is_valid():
        try:
            intent = transfer_pay_card(transfer=transfer, card_token=form.cleaned_data["card_token"],
                                       client_ip=client_ip(request) or None)
        except TransferNotPayable:
            return _go(request, status_url)  # paid meanwhile (a double click) or expired
        except CardAttemptsExhausted:
            attempts_exhausted = True
        except VelocityLimited as exc:
            retry_after = exc.retry_after
            form.add_service_error(exc)
        except FundingUnavailable as exc:
            funding_error = exc.detail
        except ApplicationError as exc:
            form.add_service_error(exc)
        else:
            if intent.status == "requires_action" and _wants_json(request):
                # 3-D Secure: Stripe.js completes the authentication, the webhook or poller sees the result.
                return JsonResponse({"confirm": intent.client_secret, "redirect": status_url})
            return _go(request, status_url)
    if request.method == "POST" and _wants_json(request):
        # The processor's own detail is English; the script shows this list to the sender as it is.
        if attempts_exhausted:
            return JsonResponse({"errors": [attempts_exhausted_message()]}, status=409)
        errors = ([_("The card processor could not be reached. Nothing was charged and your transfer is saved.")]
                  if funding_error else [str(m) for ms in form.errors.values() for m in ms])
        response = JsonResponse({"errors": errors}, status=503 if funding_error else (429 if retry_after else 422))
        if retry_after:
            response["Retry-After"] = str(retry_after)
        return response
    funding_deadline = transfer.created_at + timedelta(seconds=settings.FUNDING_WINDOW_SECONDS)
    context = {
        "transfer": transfer,
        "quote": transfer.quote,
        "form": form,
        "funding_error": funding_error,
        "attempts_exhausted": attempts_exhausted,
        "stripe_js_url": settings.STRIPE_JS_URL,
        "stripe_publishable_key": settings.STRIPE_PUBLISHABLE_KEY,
        "seconds_left": max(int((funding_deadline - timezone.now()).total_seconds()), 0),
        "us_disclosure": us_remittance.disclosure(quote=transfer.quote) if us_remittance.applies(transfer) else None,
    }
    if funding_error:
        status = 503
    elif retry_after:
        status = 429
    elif attempts_exhausted and request.method == "POST":
        status = 409
    else:
        status = 422 if form.errors else 200
    response = render(request, "payments/pay.html", context, status=status)
    if retry_after:
        response["Retry-After"] = str(retry_after)
    return response


# 4–5. Status pages -------------------------------------------------------------------------------

def _status_page(request, transfer, *, audience):
    context = {
        "transfer": transfer,
        "quote": transfer.quote,
        "settlement": transfer_settlement(transfer=transfer),
        "poll_url": f"{request.path}?fragment=1",
        "eta": transfer_eta(transfer=transfer),
        # Times: Bishkek for the recipient; for the sender UTC, named, which local-time.js turns into the browser's zone.
        "browser_time": audience == "sender",
        **status_context(transfer, audience=audience),
    }
    if audience == "sender":
        context["recipient_url"] = settings.PUBLIC_BASE_URL + reverse(
            "web:recipient_status", kwargs={"token": transfer.recipient_token})
        context["pay_url"] = reverse("web:pay", kwargs={"token": transfer.sender_token})
        context["cancel_url"] = reverse("web:cancel", kwargs={"token": transfer.sender_token})
        context["can_cancel"] = transfer_cancellable(transfer)
        if us_remittance.applies(transfer):
            context["us_receipt"] = us_remittance.disclosure(quote=transfer.quote, transfer=transfer)
            context["us_cancel_window_open"] = us_remittance.cancel_window_open(transfer)
    else:
        # The recipient learns who sent the money, not how to reach them.
        context["sender_first_name"] = (transfer.sender_name.split() or [""])[0]
    template = f"payments/_{audience}_status.html" if request.GET.get("fragment") else f"payments/{audience}_status.html"
    zone = ZoneInfo(settings.RECIPIENT_TIME_ZONE) if audience == "recipient" else UTC
    with timezone.override(zone):  # the polled fragment comes through here too, so live updates keep the zone
        return render(request, template, context)


# 6. Cancel (sender) ------------------------------------------------------------------------------

@referrer_policy("same-origin")  # a page with a form: under no-referrer the POST's Origin is null and CSRF refuses it
@never_cache
@require_http_methods(["GET", "POST"])
@rate_limited("web-transfer")  # each POST asks Stripe (PaymentIntent read and cancel): counted like a new transfer
def cancel(request, token):
    """The sender cancels before settlement: a confirmation page (GET) and the cancel itself (POST, CSRF-checked).
    The sender's status link is the key, as for the status page. Unpaid: nothing is charged; paid: refunded in full.
    The recipient's link is refused with a message (403) and changes nothing: only the sender may cancel."""
    transfer = Transfer.objects.select_related("quote").filter(sender_token=token).first()
    if transfer is None:
        if Transfer.objects.filter(recipient_token=token).exists():
            return render(request, "payments/cancel_refused.html", status=403)
        raise Http404
    status_url = reverse("web:sender_status", kwargs={"token": token})
    error, status = None, 200
    if request.method == "POST" and transfer_cancellable(transfer):
        try:
            transfer_cancel(transfer_id=transfer.pk, reason="cancelled by the sender")
        except TransferNotCancellable as exc:
            error, status = exc.detail, 409
        except FundingUnavailable:
            error, status = _("We could not reach the card processor just now. Nothing was changed: please try again "
                              "in a minute."), 503
        else:
            return redirect(status_url)
        transfer.refresh_from_db()
    elif transfer.status in CANCEL_TOO_LATE:
        error, status = _("This transfer can no longer be cancelled: the money is already on its way to the "
                          "recipient."), 409
    elif transfer.status == Transfer.Status.HELD:
        error, status = under_review_message(), 409
    elif transfer.status == Transfer.Status.FUNDED and us_remittance.cancel_window_closed(transfer):
        error, status = us_remittance.window_closed_message(), 409
    elif not transfer_cancellable(transfer):
        return redirect(status_url)  # already cancelled, refunded or expired: its page says so
    return render(request, "payments/cancel.html", {"transfer": transfer, "quote": transfer.quote, "error": error,
                                                    "paid": transfer.funded_at is not None, "status_url": status_url,
                                                    "can_cancel": transfer_cancellable(transfer)}, status=status)


@referrer_policy("no-referrer")
@never_cache
@require_GET
def sender_status(request, token):
    transfer = get_object_or_404(Transfer.objects.select_related("quote"), sender_token=token)
    return _status_page(request, transfer, audience="sender")


@referrer_policy("no-referrer")
@never_cache
@require_GET
def recipient_status(request, token):
    transfer = get_object_or_404(Transfer.objects.select_related("quote"), recipient_token=token)
    return _status_page(request, transfer, audience="recipient")

