"""Payout partners: a transfer routed to a bank or wallet provider instead of a wallet (docs/api.md, "Payout
partners"; docs/states.md; docs/ledger.md, "Payout partners").

- At creation the named partner (id or code) must exist and be active; the payout goes to its settlement address,
  checked as any recipient wallet is, and a PartnerPayout row (its short `reference`, the recipient's account at the
  partner) is stored with the transfer.
- When the payout's block is final the transfer waits in `awaiting_payout_confirmation`; the KGST is booked as held
  by the partner for us (`payout_partner_clearing`, the partner's own account), and the som stays owed to the
  recipient (`recipient_payable`) until the partner confirms.
- The partner confirms (→ `completed`, the `payout` entry clears the partner's holding against what the recipient
  was owed) or fails (→ `payout_failed`, an operator alert; the KGST stays at the partner until an operator settles
  it: docs/runbook.md). Both are answered idempotently; the other decision after one is a 409.
- A payout left unconfirmed past PAYOUT_CONFIRM_ESCALATE_MINUTES raises one operator alert (escalated_at marks it).
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from onchain.api import operator_alert_raise
from payments.errors import PaymentsError
from payments.models import PartnerPayout, PayoutPartner, Transfer, to_minor
from payments.services import ledger

log = logging.getLogger(__name__)
S = Transfer.Status
P = PartnerPayout.Status
PARTNER_FIELD = "recipient.payout_partner"


class PayoutPartnerRefused(PaymentsError):
    code = "payout-partner-refused"
    title = gettext_lazy("This payout partner cannot take transfers")


class PayoutNotFound(PaymentsError):
    status = 404
    code = "payout-not-found"
    title = gettext_lazy("Payout not found")


class PayoutAlreadyDecided(PaymentsError):
    status = 409
    code = "payout-already-decided"
    title = gettext_lazy("This payout was already confirmed or failed")


class PayoutNotSent(PaymentsError):
    status = 409
    code = "payout-not-sent"
    title = gettext_lazy("This payout's KGST has not reached you yet")


# Creating ------------------------------------------------------------------------------------------------------

def payout_partner_resolve(value):
    """The active payout partner named by `value` (its id, or its code); PayoutPartnerRefused beside the field
    otherwise (unknown, or no longer taking transfers)."""
    text = str(value).strip()
    found = PayoutPartner.objects.filter(pk=int(text)) if text.isdigit() else PayoutPartner.objects.filter(code=text)
    partner = found.first()
    if partner is None:
        raise PayoutPartnerRefused(_("No payout partner %(name)s: use the id or code of one of our payout partners.")
                                   % {"name": text[:40]}, field=PARTNER_FIELD)
    if not partner.is_active:
        raise PayoutPartnerRefused(_("The payout partner %(name)s does not take new transfers.")
                                   % {"name": partner.code}, field=PARTNER_FIELD)
    return partner


def partner_payout_create(*, transfer, payout_partner, account):
    """In the transfer's inserting transaction: the payout partner's part of it, with its reference."""
    return PartnerPayout.objects.create(transfer=transfer, payout_partner=payout_partner, recipient_account=account)


# When the KGST is final at the partner (inside onchain's transaction, from TransferPayoutListener) ----------------

def partner_payouts_final(*, transfers, tx_hash):
    """`transfers` (settling, locked, all routed to payout partners) had their payout's block final: they wait for
    their partners' confirmation; each PartnerPayout records the tx and the time, and the KGST is booked as held by
    the partner (`partner_payout` entry)."""
    if not transfers:
        return 0
    now = timezone.now()
    moved = Transfer.objects.filter(pk__in=[t.pk for t in transfers]).mark_paid_to_partner()
    if moved != len(transfers):
        raise RuntimeError(f"{len(transfers) - moved} of {len(transfers)} partner transfers left settling meanwhile")
    payouts = PartnerPayout.objects.select_for_update(of=("self",)).select_related("payout_partner__operator").filter(
        transfer__in=transfers, status=P.PENDING).order_by("pk")
    by_transfer = {t.pk: t for t in transfers}
    for payout in payouts:
        payout.mark_sent(tx_hash=tx_hash, at=now)
        payout.save()
        transfer = by_transfer[payout.transfer_id]
        som = to_minor(transfer.quote.target_amount, transfer.quote.target_currency)
        operator = payout.payout_partner.operator
        ledger.ledger_post(transfer=transfer, kind="partner_payout", memo=f"tx {tx_hash} to {payout.payout_partner.code}",
                           lines=[("payout_partner_clearing", transfer.quote.target_currency, som, operator),
                                  (ledger.float_account(transfer.quote.target_currency), transfer.quote.target_currency, -som)])
    log.info("transfers_paid_to_partner count=%s tx_hash=%s", moved, tx_hash)
    return moved


# The payout partner's API ----------------------------------------------------------------------------------------

def payouts_awaiting(*, operator):
    """The payouts this API account's payout partners must confirm: KGST final at their address, oldest first."""
    return (PartnerPayout.objects.awaiting().filter(payout_partner__operator=operator)
            .select_related("transfer__quote", "payout_partner").order_by("sent_at", "pk"))


def payout_get(*, operator, transfer_id):
    """One payout of this account's payout partners (by its transfer's id); another's is not found (404)."""
    payout = (PartnerPayout.objects.select_related("transfer__quote", "payout_partner")
              .filter(transfer_id=transfer_id, payout_partner__operator=operator).first())
    if payout is None:
        raise PayoutNotFound(_("No payout of yours has this id."))
    return payout


def _locked_payout(operator, transfer_id):
    payout_get(operator=operator, transfer_id=transfer_id)  # 404 before taking any lock
    transfer = Transfer.objects.select_for_update(of=("self",)).select_related("quote").get(pk=transfer_id)
    payout = PartnerPayout.objects.select_for_update(of=("self",)).select_related("payout_partner__operator").get(
        transfer_id=transfer_id)
    return transfer, payout


def payout_confirm(*, operator, transfer_id):
    """The payout partner paid the person: the transfer completes and the `payout` entry posts (the som owed to the
    recipient is paid, the partner no longer holds the KGST for us). Confirming again answers the same; after a
    failure it is refused (409); before the KGST is final at the partner too (409)."""
    with transaction.atomic():
        transfer, payout = _locked_payout(operator, transfer_id)
        if payout.status == P.CONFIRMED:
            return payout
        if payout.status == P.FAILED:
            raise PayoutAlreadyDecided(_("You reported this payout as failed: it cannot be confirmed now. Ask our "
                                         "operators if the person was paid after all."))
        if payout.status != P.AWAITING:
            raise PayoutNotSent(_("This payout's KGST is not final at your settlement address yet."))
        now = timezone.now()
        payout.mark_confirmed(now)
        payout.save()
        transfer.mark_payout_confirmed(now)
        transfer.save()
        som = to_minor(transfer.quote.target_amount, transfer.quote.target_currency)
        ledger.ledger_post(transfer=transfer, kind="payout", memo=f"confirmed by {payout.payout_partner.code}",
                           lines=[("recipient_payable", transfer.quote.target_currency, som),
                                  ("payout_partner_clearing", transfer.quote.target_currency, -som,
                                   payout.payout_partner.operator)])
    log.info("partner_payout_confirmed transfer_id=%s reference=%s", transfer.pk, payout.reference)
    return payout


def payout_fail(*, operator, transfer_id, reason):
    """The payout partner could not pay the person (`reason` in its words): the transfer moves to `payout_failed` and
    operators are alerted; the KGST stays booked as held by the partner until an operator settles it
    (docs/runbook.md). Failing again answers the same; after a confirmation it is refused (409)."""
    reason = (reason or "").strip()
    with transaction.atomic():
        transfer, payout = _locked_payout(operator, transfer_id)
        if payout.status == P.FAILED:
            return payout
        if payout.status == P.CONFIRMED:
            raise PayoutAlreadyDecided(_("You confirmed this payout: it cannot be failed now."))
        if payout.status != P.AWAITING:
            raise PayoutNotSent(_("This payout's KGST is not final at your settlement address yet."))
        payout.mark_failed(reason, timezone.now())
        payout.save()
        transfer.mark_payout_failed(f"the payout partner {payout.payout_partner.code} could not pay out: {reason}")
        transfer.save()
        operator_alert_raise(kind="payout_partner", message=(
            f"transfer {transfer.pk}: payout {payout.reference} failed at {payout.payout_partner.code} ({reason}); "
            "its KGST is at the partner: get it returned and refund, or pay another way (docs/runbook.md)")[:500])
    log.error("partner_payout_failed transfer_id=%s reference=%s reason=%s", transfer.pk, payout.reference, reason)
    return payout


class PayoutReturnRefused(PaymentsError):
    status = 409
    code = "payout-return-refused"
    title = gettext_lazy("Only a failed payout's KGST can be recorded as returned, once")


def payout_return_record(*, payout_id, note=""):
    """Treasury saw the payout partner send a failed payout's KGST back to the float: the partner no longer holds it
    for us (`partner_payout_returned` entry). Only for a failed payout, once."""
    with transaction.atomic():
        payout = (PartnerPayout.objects.select_for_update(of=("self",))
                  .select_related("transfer__quote", "payout_partner__operator").get(pk=payout_id))
        if payout.status != P.FAILED or payout.returned_at:
            raise PayoutReturnRefused(f"payout {payout.reference} is {payout.status}"
                                      + (", already returned" if payout.returned_at else ""))
        payout.returned_at = timezone.now()
        payout.save(update_fields=["returned_at"])
        quote = payout.transfer.quote
        som = to_minor(quote.target_amount, quote.target_currency)
        ledger.ledger_post(transfer=payout.transfer, kind="partner_payout_returned",
                           memo=f"returned by {payout.payout_partner.code} {note}"[:200],
                           lines=[(ledger.float_account(quote.target_currency), quote.target_currency, som),
                                  ("payout_partner_clearing", quote.target_currency, -som,
                                   payout.payout_partner.operator)])
    log.info("partner_payout_returned transfer_id=%s reference=%s", payout.transfer_id, payout.reference)
    return payout


# Escalation (beat) ---------------------------------------------------------------------------------------------

def payouts_escalate(*, now=None):
    """Payouts awaiting confirmation longer than PAYOUT_CONFIRM_ESCALATE_MINUTES raise one operator alert each:
    `escalated_at` is claimed by a conditional UPDATE first, so two beats (or workers) never alert twice."""
    now = now or timezone.now()
    cutoff = now - timedelta(minutes=settings.PAYOUT_CONFIRM_ESCALATE_MINUTES)
    late = PartnerPayout.objects.awaiting().filter(sent_at__lt=cutoff, escalated_at__isnull=True)
    raised = 0
    for payout in late.select_related("payout_partner").order_by("sent_at")[:500]:
        with transaction.atomic():
            if not PartnerPayout.objects.filter(pk=payout.pk, escalated_at__isnull=True).update(escalated_at=now):
                continue
            minutes = int((now - payout.sent_at).total_seconds() // 60)
            operator_alert_raise(kind="payout_partner", message=(
                f"transfer {payout.transfer_id}: payout {payout.reference} at {payout.payout_partner.code} unconfirmed "
                f"for {minutes} min (tx {payout.tx_hash}); ask the partner (docs/runbook.md)")[:500])
            raised += 1
    if raised:
        log.warning("partner_payouts_escalated count=%s", raised)
    return raised
