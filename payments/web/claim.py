"""The recipient's claim page (payments/services/claims.py): ask for a one-time code by SMS, then give it with a
wallet or a payout partner. Plain forms, no script needed; errors beside their fields, in the visitor's language."""

from django.conf import settings
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from common.errors import ApplicationError
from common.ratelimit import client_ip
from payments.models import PayoutPartner, Transfer
from payments.services.claims import (
    ClaimRateLimited,
    ClaimRefused,
    claim_code_send,
    claim_state,
    claim_submit,
)
from payments.web.forms import ClaimForm
from payments.web.views import referrer_policy


def _partners():
    return list(PayoutPartner.objects.filter(is_active=True).order_by("name"))


@referrer_policy("same-origin")  # forms: under no-referrer the POST's Origin is null and CSRF refuses it
@never_cache
@require_http_methods(["GET", "POST"])
def claim(request, token):
    """GET: the claim page. POST `send`: a code by SMS. POST `claim`: the code and the destination."""
    transfer = get_object_or_404(Transfer.objects.select_related("quote"), recipient_token=token)
    status_url = reverse("web:recipient_status", kwargs={"token": token})
    form, error, notice, status, retry_after = ClaimForm(partners=_partners()), None, None, 200, None
    if request.method == "POST" and request.POST.get("action") == "send":
        try:
            claim_code_send(transfer_id=transfer.pk, ip=client_ip(request))
        except ClaimRateLimited as exc:
            error, status, retry_after = exc.detail, 429, exc.retry_after
        except ClaimRefused as exc:
            error, status = exc.detail, 409
        else:
            notice = _("We sent a code by SMS to the phone number the sender gave. It is valid for %(minutes)s "
                       "minutes.") % {"minutes": max(settings.CLAIM_CODE_TTL_SECONDS // 60, 1)}
    elif request.method == "POST":
        form = ClaimForm(request.POST, partners=_partners())
        if form.is_valid():
            data = form.cleaned_data
            try:
                claim_submit(transfer_id=transfer.pk, code=data["code"], wallet_address=data["wallet_address"],
                             payout_partner=data["payout_partner"], account=data["account"], ip=client_ip(request))
            except ClaimRateLimited as exc:
                error, status, retry_after = exc.detail, 429, exc.retry_after
            except ClaimRefused as exc:
                if exc.field:  # about what was typed (the wallet over its limit): beside that field
                    form.add_service_error(exc)
                else:
                    error = exc.detail
                status = 409
            except ApplicationError as exc:
                form.add_service_error(exc)
                status = 503 if exc.status == 503 else 200
            else:
                return redirect(status_url)
    transfer.refresh_from_db()
    response = render(request, "payments/claim.html", {
        "transfer": transfer, "quote": transfer.quote, "form": form, "error": error, "notice": notice,
        "state": claim_state(transfer), "status_url": status_url}, status=status)
    if retry_after:
        response["Retry-After"] = str(max(1, int(retry_after)))
    return response
