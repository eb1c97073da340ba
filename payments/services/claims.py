"""Recipient claim: a transfer sent to a phone only (no wallet, no payout partner) is paid and screened as usual, then
waits in `awaiting_claim` until its recipient proves the phone with a one-time code and names where to be paid: a
wallet (the same checks as a wallet given at creation) or an active payout partner with the account there. The claim
sends it back to `funded`, and the usual advance screens the destination and pays it out (docs/states.md).

- Codes: six digits from `secrets`, stored as an HMAC (never in clear: not in the database, logs or task arguments),
  single-use, expire after CLAIM_CODE_TTL_SECONDS, locked after CLAIM_CODE_MAX_ATTEMPTS wrong tries; at most
  CLAIM_CODES_PER_DAY codes per transfer in 24 hours, one per CLAIM_CODE_RESEND_SECONDS; sends and tries are also
  counted per client IP (RATE_LIMITS "claim-send", "claim-verify"). So a transfer takes at most
  CLAIM_CODES_PER_DAY × CLAIM_CODE_MAX_ATTEMPTS guesses a day.
- One destination: the claim runs under the transfer's row lock and only moves a transfer still `awaiting_claim`
  with no destination; a second claim (racing or later) is refused and changes nothing.
- Unclaimed: SMS reminders CLAIM_REMINDER_HOURS after funding (one row per reminder, stored before the SMS, whose
  idempotency key derives from it), then after CLAIM_WINDOW_HOURS the transfer goes `refunding` through the one
  refund path (claims_sweep, run by beat).
"""

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta

from celery import current_app
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from common.ratelimit import rate_limit_hit
from common.sms import SMSError, masked, send_sms
from payments.errors import PaymentsError, VelocityLimited
from payments.models import ClaimCode, ClaimReminder, Transfer
from payments.services import refunds
from payments.services.fraud import velocity_consume
from payments.services.payout_partners import partner_payout_create, payout_partner_resolve
from payments.services.transfers import wallet_destination_check

log = logging.getLogger(__name__)
S = Transfer.Status
WALLET, PARTNER, ACCOUNT, CODE = "wallet_address", "payout_partner", "account", "code"


class ClaimRefused(PaymentsError):
    status = 409
    code = "claim-refused"
    title = gettext_lazy("This transfer cannot be claimed")


class ClaimCodeRefused(PaymentsError):
    code = "claim-code-refused"
    title = gettext_lazy("The code is not valid")


class ClaimRateLimited(PaymentsError):
    status = 429
    code = "claim-rate-limited"
    title = gettext_lazy("Too many tries")

    def __init__(self, detail=None, *, retry_after, field=None):
        super().__init__(detail, field=field)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Destination:
    address: str
    payout_partner: object = None
    account: str = ""


def _code_hash(transfer_id, code):
    return hmac.new(settings.SECRET_KEY.encode(), f"claim:{transfer_id}:{code}".encode(), hashlib.sha256).hexdigest()


def _minutes(seconds):
    return max(-(-int(seconds) // 60), 1)


def _too_many(seconds):
    return ClaimRateLimited(_("Too many tries. Please wait %(minutes)s min and try again.")
                            % {"minutes": _minutes(seconds)}, retry_after=int(seconds))


def _ip_count(scope, ip):
    wait = rate_limit_hit(scope=scope, ident=ip or "unknown")
    if wait:
        raise _too_many(wait)


def claim_state(transfer):
    """"open" (awaiting the claim), "claimed" (a destination is set), "not_yet" (not paid and screened yet) or
    "closed" (cancelled, refunded, expired: nothing to claim)."""
    if transfer.recipient_wallet:
        return "claimed"
    if transfer.status == S.AWAITING_CLAIM:
        return "open"
    if transfer.status in (S.AWAITING_FUNDING, S.FUNDED, S.HELD):
        return "not_yet"
    return "closed"


def _refuse_unless_open(transfer):
    state = claim_state(transfer)
    if state == "claimed":
        raise ClaimRefused(_("This transfer has already been claimed. Nothing was changed."))
    if state == "not_yet":
        raise ClaimRefused(_("This transfer is not ready to be claimed yet. Please try again in a few minutes."))
    if state == "closed":
        raise ClaimRefused(_("This transfer can no longer be claimed."))


def claim_code_send(*, transfer_id, ip=""):
    """Send a new one-time code to the transfer's recipient phone. Refused (nothing sent) past the per-IP and
    per-transfer limits, or when the transfer is not waiting for its claim. The code's row is committed before the
    SMS; its idempotency key is the row's id, so a retried send is one message."""
    transfer = Transfer.objects.get(pk=transfer_id)
    _refuse_unless_open(transfer)
    _ip_count("claim-send", ip)
    now = timezone.now()
    code = f"{secrets.randbelow(10 ** 6):06d}"
    with transaction.atomic():
        transfer = Transfer.objects.select_for_update(of=("self",)).get(pk=transfer_id)  # serialises the counting
        _refuse_unless_open(transfer)
        recent = ClaimCode.objects.filter(transfer=transfer, created_at__gt=now - timedelta(days=1))
        if recent.count() >= settings.CLAIM_CODES_PER_DAY:
            oldest = recent.order_by("created_at").first()
            raise _too_many((oldest.created_at + timedelta(days=1) - now).total_seconds())
        last = recent.order_by("-created_at").first()
        resend_at = last.created_at + timedelta(seconds=settings.CLAIM_CODE_RESEND_SECONDS) if last else now
        if resend_at > now:
            raise ClaimRateLimited(_("A code was just sent. Please wait a minute before asking for another one."),
                                   retry_after=int((resend_at - now).total_seconds()) + 1)
        row = ClaimCode.objects.create(transfer=transfer, code_hash=_code_hash(transfer.pk, code),
                                       expires_at=now + timedelta(seconds=settings.CLAIM_CODE_TTL_SECONDS))
    body = _("Your code to receive the transfer: %(code)s. It is valid for %(minutes)s minutes. Do not share it.") % {
        "code": code, "minutes": _minutes(settings.CLAIM_CODE_TTL_SECONDS)}
    try:
        send_sms(transfer.recipient_phone, body, idempotency_key=f"claim-code-{row.pk}")
    except SMSError as exc:
        log.warning("claim_code_not_sent transfer_id=%s code_id=%s to=%s error=%s", transfer.pk, row.pk,
                    masked(transfer.recipient_phone), exc)
        if not exc.retryable:  # surely not sent: it must not use up the day's codes (a retryable one may have been)
            row.delete()
        raise ClaimRefused(_("We could not send the code just now. Please try again in a minute.")) from exc
    log.info("claim_code_sent transfer_id=%s code_id=%s to=%s", transfer.pk, row.pk, masked(transfer.recipient_phone))
    return row


def claim_destination(*, wallet_address="", payout_partner="", account="", currency="KGS"):
    """Where the claimed transfer goes, checked as at creation: a wallet (well-formed already; not denied, frozen
    or a partner's address; onchain's recipient check) or an active payout partner with the account there."""
    if payout_partner:
        partner = payout_partner_resolve(payout_partner)
        if not account.strip():
            raise ClaimCodeRefused(_("Give your account or phone number at the payout partner."), field=ACCOUNT)
        return Destination(partner.settlement_address, partner, account.strip()[:64])
    if not wallet_address:
        raise ClaimCodeRefused(_("Give a wallet address or choose a payout partner."), field=WALLET)
    wallet_destination_check(address=wallet_address, field=WALLET, currency=currency)
    return Destination(wallet_address)


def claim_submit(*, transfer_id, code, destination=None, wallet_address="", payout_partner="", account="", ip=""):
    """Check the code and, if it is right, set the destination and send the transfer back to `funded` (the advance
    task screens and pays it), all under the transfer's row lock: one destination however many claims race. A wrong
    code counts against it (committed) and changes nothing else. The destination is `destination`, or checked here
    from the raw fields (claim_destination) after the per-IP count, so refused claims cannot probe the chain freely."""
    _ip_count("claim-verify", ip)
    claimed = Transfer.objects.select_related("quote").get(pk=transfer_id)
    _refuse_unless_open(claimed)
    if destination is None:
        destination = claim_destination(wallet_address=wallet_address, payout_partner=payout_partner, account=account,
                                        currency=claimed.quote.target_currency)
    code = "".join((code or "").split())
    now = timezone.now()
    with transaction.atomic():
        transfer = Transfer.objects.select_for_update(of=("self",)).get(pk=transfer_id)
        _refuse_unless_open(transfer)
        row = (ClaimCode.objects.select_for_update().filter(transfer=transfer, used_at__isnull=True)
               .order_by("-created_at").first())
        outcome = _code_check(row, transfer, code, now)
        if outcome == "ok":
            row.used_at = now
            row.save(update_fields=["used_at"])
            if destination.payout_partner is None:
                _wallet_velocity(destination.address)  # refused: all of this rolls back, the code stays unused
            transfer.recipient_wallet = destination.address
            if destination.payout_partner is not None:
                partner_payout_create(transfer=transfer, payout_partner=destination.payout_partner,
                                      account=destination.account)
            transfer.mark_claimed()
            transfer.save()
            # By name: the pipeline imports the services. The sweeper re-sends a funded transfer's step if this is lost.
            transaction.on_commit(lambda: current_app.send_task("payments.transfer_advance", args=[str(transfer.pk)]))
    if outcome != "ok":
        log.info("claim_code_refused transfer_id=%s outcome=%s", transfer.pk, outcome)
        raise ClaimCodeRefused(_code_message(outcome), field=CODE)
    log.info("transfer_claimed transfer_id=%s via=%s", transfer.pk,
             destination.payout_partner.code if destination.payout_partner else "wallet")
    return transfer


def _wallet_velocity(address):
    """A claimed wallet counts against the wallet's velocity limits as a wallet named at creation does at the card
    payment (fraud.velocity_consume): phone-only transfers paid with many cards must not funnel into one wallet."""
    try:
        velocity_consume([("wallet", address)])
    except VelocityLimited:
        raise ClaimRefused(_("This wallet has received too many transfers recently. Choose another wallet or a payout "
                             "partner, or try again later."), field=WALLET) from None


def _code_check(row, transfer, code, now):
    if row is None:
        return "missing"
    if row.failed_attempts >= settings.CLAIM_CODE_MAX_ATTEMPTS:
        return "locked"
    if row.expires_at <= now:
        return "expired"
    if len(code) == 6 and code.isdigit() and hmac.compare_digest(row.code_hash, _code_hash(transfer.pk, code)):
        return "ok"
    row.failed_attempts += 1
    row.save(update_fields=["failed_attempts"])
    return "locked" if row.failed_attempts >= settings.CLAIM_CODE_MAX_ATTEMPTS else "wrong"


def _code_message(outcome):
    return {
        "missing": _("Ask for a code first: we send it by SMS to your phone."),
        "expired": _("This code has expired. Ask for a new one."),
        "locked": _("Too many wrong codes. Ask for a new one."),
        "wrong": _("This code is not right. Check the SMS and try again."),
    }[outcome]


# Reminders and the final refund (beat: claims_sweep) ---------------------------------------------------------------

def claims_sweep(*, now=None):
    """Unclaimed transfers: past CLAIM_WINDOW_HOURS after funding, refunded in full (claim_expire); otherwise each
    reminder that is due is sent once. Returns (reminders sent, transfers refunded)."""
    now = now or timezone.now()
    waiting = Transfer.objects.filter(status=S.AWAITING_CLAIM, livemode=True, recipient_wallet="")
    deadline = now - timedelta(hours=settings.CLAIM_WINDOW_HOURS)
    refunded = sum(1 for t in waiting.filter(funded_at__lte=deadline).values_list("pk", flat=True)
                   if claim_expire(transfer_id=t))
    sent = 0
    for number, hours in enumerate(sorted(settings.CLAIM_REMINDER_HOURS), start=1):
        due = waiting.filter(funded_at__lte=now - timedelta(hours=hours), funded_at__gt=deadline)
        sent_already = ClaimReminder.objects.filter(transfer=OuterRef("pk"), number=number, sent_at__isnull=False)
        for transfer in due.exclude(Exists(sent_already)).select_related("quote"):
            sent += claim_remind(transfer=transfer, number=number)
    if sent or refunded:
        log.info("claims_swept reminders=%s refunded=%s", sent, refunded)
    return sent, refunded


def claim_remind(*, transfer, number):
    """The `number`-th reminder, once: its row first, then the SMS (idempotency key from the row), then `sent_at`."""
    try:
        with transaction.atomic():
            reminder, _created = ClaimReminder.objects.get_or_create(transfer=transfer, number=number)
    except IntegrityError:
        reminder = ClaimReminder.objects.get(transfer=transfer, number=number)
    if reminder.sent_at:
        return 0
    link = settings.PUBLIC_BASE_URL + reverse("web:claim", kwargs={"token": transfer.recipient_token})
    with translation.override(settings.CLAIM_SMS_LANGUAGE):
        body = _("%(amount)s %(currency)s are waiting for you. Claim them here: %(link)s") % {
            "amount": transfer.quote.target_amount, "currency": transfer.quote.target_currency, "link": link}
    try:
        send_sms(transfer.recipient_phone, body, idempotency_key=f"claim-reminder-{transfer.pk}-{number}")
    except SMSError as exc:
        log.warning("claim_reminder_not_sent transfer_id=%s number=%s error=%s", transfer.pk, number, exc)
        return 0
    ClaimReminder.objects.filter(pk=reminder.pk, sent_at__isnull=True).update(sent_at=timezone.now())
    log.info("claim_reminder_sent transfer_id=%s number=%s", transfer.pk, number)
    return 1


def claim_expire(*, transfer_id):
    """Unclaimed past the window: `refunding` (committed under the row lock, only if still unclaimed), then the refund
    task returns the money through the one refund path. True if it moved."""
    with transaction.atomic():
        transfer = Transfer.objects.select_for_update(of=("self",)).select_related("quote").get(pk=transfer_id)
        if transfer.status != S.AWAITING_CLAIM or transfer.recipient_wallet:
            return False
        try:
            refunds.refund_rail(transfer)
        except refunds.RefundRailMissing as exc:  # nothing changes; an operator sees the log line
            log.error("transfer_claim_expire_no_rail transfer_id=%s %s", transfer.pk, exc.detail)
            return False
        transfer.mark_refunding(f"not claimed by the recipient within {settings.CLAIM_WINDOW_HOURS} hours")
        transfer.save()
        transaction.on_commit(lambda: current_app.send_task("payments.transfer_refund", args=[str(transfer_id)]))
    log.info("transfer_claim_expired transfer_id=%s", transfer_id)
    return True
