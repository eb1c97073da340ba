"""How a transfer's status reads on the status pages: a headline, a short explanation and a timeline.

Presentation only: the states and their transitions live on the model (docs/states.md).
"""

from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _

from payments.models import PartnerPayout, Transfer

S = Transfer.Status
# Nothing moves these on by itself, so the pages stop polling.
TERMINAL = frozenset({S.COMPLETED, S.EXPIRED, S.REFUNDED, S.SETTLEMENT_FAILED, S.CHARGED_BACK, S.CANCELLED,
                      S.REFUND_FAILED, S.PAYOUT_FAILED})
# Held transfers wait for a person, pending refunds for the card network; poll them gently.
SLOW = frozenset({S.HELD, S.REFUNDING, S.AWAITING_PAYOUT_CONFIRMATION, S.AWAITING_CLAIM})
FAILED = frozenset({S.EXPIRED, S.REJECTED, S.REFUNDED, S.SETTLEMENT_FAILED, S.CHARGED_BACK, S.CANCELLED,
                    S.REFUNDING, S.REFUND_FAILED, S.PAYOUT_FAILED})

DONE, CURRENT, FAILURE, PENDING = "done", "current", "failed", "pending"


@dataclass(frozen=True)
class Step:
    key: str
    label: str
    state: str
    at: object = None


# Sender's headline per status; {amount} is the som amount and {name} the recipient.
SENDER_HEADLINES = {
    S.AWAITING_FUNDING: (_("Waiting for your card payment"),
                         _("Your price is held. Pay by card to send the money.")),
    S.FUNDED: (_("Payment received"), _("We received your payment and are running the usual checks.")),
    S.HELD: (_("Under review"), _("Your transfer is being reviewed by our compliance team. "
                                  "We will continue or refund it in full; you do not need to do anything.")),
    S.SETTLING: (_("Sending"), _("Your payment cleared. The som are on their way to the recipient's wallet.")),
    S.COMPLETED: (_("Delivered"), _("The recipient's wallet has received the money.")),
    S.EXPIRED: (_("Expired"), _("We did not receive a payment in time, so the transfer was cancelled. "
                                "Nothing was charged.")),
    S.REJECTED: (_("Cancelled"), _("We could not complete this transfer. A full refund to your card is on its way.")),
    S.REFUNDED: (_("Refunded"), _("This transfer was cancelled and refunded in full to your card. "
                                  "Refunds take a few days to show on your statement.")),
    S.SETTLEMENT_FAILED: (_("Payout problem"), _("The on-chain payout did not go through. Our team has been alerted "
                                                 "and will either retry it or refund you in full.")),
    S.CHARGED_BACK: (_("Payment disputed"), _("The bank that issued your card took this payment back, so nothing was "
                                              "sent. If you did not ask your bank for this, please contact us.")),
    S.CANCELLED: (_("Cancelled"), _("This transfer was cancelled before it was paid. Nothing was charged.")),
    S.REFUNDING: (_("Being refunded"), _("This transfer was cancelled. A full refund to your card is on its way; "
                                         "this page updates when your card's bank has accepted it.")),
    S.REFUND_FAILED: (_("Refund problem"), _("Your card's bank did not accept the refund. Our team has been alerted "
                                             "and will contact you to return your money.")),
    # %(partner)s: the payout partner's name (a bank or wallet provider in Kyrgyzstan).
    S.AWAITING_PAYOUT_CONFIRMATION: (_("Paid to %(partner)s, awaiting confirmation"),
                                     _("The som reached %(partner)s, which pays them out to the recipient's account. "
                                       "We are waiting for its confirmation.")),
    S.AWAITING_CLAIM: (_("Waiting for the recipient"),
                       _("Your payment cleared. The recipient got an SMS and chooses where to receive the money.")),
    S.PAYOUT_FAILED: (_("Payout problem"), _("%(partner)s could not pay the recipient. Our team has been alerted and "
                                             "will pay another way or refund you in full.")),
}

RECIPIENT_HEADLINES = {
    S.AWAITING_FUNDING: (_("Not paid yet"), _("The sender has not paid for this transfer yet.")),
    S.FUNDED: (_("On its way"), _("The sender has paid. The money will be sent to your wallet shortly.")),
    S.HELD: (_("On its way"), _("The transfer is going through routine checks before it is sent.")),
    S.SETTLING: (_("Sending"), _("The money is being sent to your wallet on-chain.")),
    S.COMPLETED: (_("Received"), _("The money has arrived in your wallet.")),
    S.EXPIRED: (_("Cancelled"), _("The sender did not complete the payment, so this transfer was cancelled.")),
    S.REJECTED: (_("Cancelled"), _("This transfer could not be completed and the sender is being refunded.")),
    S.REFUNDED: (_("Cancelled"), _("This transfer could not be completed and the sender was refunded.")),
    S.SETTLEMENT_FAILED: (_("Delayed"), _("The payout to your wallet is delayed. Our team is working on it.")),
    S.CHARGED_BACK: (_("Cancelled"), _("This transfer was cancelled and nothing was sent.")),
    S.CANCELLED: (_("Cancelled"), _("This transfer was cancelled and nothing was sent.")),
    S.REFUNDING: (_("Cancelled"), _("This transfer was cancelled and the sender is being refunded.")),
    S.REFUND_FAILED: (_("Cancelled"), _("This transfer was cancelled and nothing was sent.")),
    S.AWAITING_PAYOUT_CONFIRMATION: (_("Paid to %(partner)s, awaiting confirmation"),
                                     _("The money was sent to %(partner)s for your account there. It pays you out "
                                       "and confirms it to us.")),
    S.AWAITING_CLAIM: (_("Waiting for you"), _("The sender has paid. Tell us where to receive the money.")),
    S.PAYOUT_FAILED: (_("Delayed"), _("%(partner)s could not pay this transfer out to your account. Our team is "
                                      "working on it.")),
}


def transfer_timeline(transfer, *, audience="sender"):
    """Four steps, awaiting_funding → funded → settling → completed, with where it stopped if it failed."""
    status = transfer.status
    reached_settlement = bool(transfer.payout_reference)
    paid = _("Card payment") if audience == "sender" else _("Paid by the sender")
    pay = Step("awaiting_funding", paid, DONE if transfer.funded_at else CURRENT, transfer.funded_at)
    checks = Step("funded", _("Checks"), PENDING)
    payout = Step("settling", _("On-chain payout"), PENDING)
    delivered = Step("completed", _("Delivered"), PENDING, transfer.completed_at)

    refunding = status in (S.REFUNDING, S.REFUND_FAILED)
    if status in (S.EXPIRED, S.CANCELLED):
        pay = Step(pay.key, _("Card payment not received") if audience == "sender" else _("Not paid"), FAILURE)
    elif status in (S.FUNDED, S.HELD):
        checks = Step(checks.key, _("Under review") if status == S.HELD else checks.label, CURRENT)
    elif refunding and not reached_settlement:
        checks = Step(checks.key, _("Cancelled"), FAILURE)
    elif status == S.REJECTED or (status == S.REFUNDED and not reached_settlement):
        checks = Step(checks.key, _("Checks not passed"), FAILURE)
    elif status == S.AWAITING_CLAIM:
        checks = Step(checks.key, checks.label, DONE)
        payout = Step(payout.key, _("Waiting for the recipient"), CURRENT)
    elif status == S.SETTLING:
        checks = Step(checks.key, checks.label, DONE)
        payout = Step(payout.key, payout.label, CURRENT)
    elif status == S.COMPLETED:
        checks = Step(checks.key, checks.label, DONE)
        payout = Step(payout.key, payout.label, DONE)
        delivered = Step(delivered.key, delivered.label, DONE, transfer.completed_at)
    elif status in (S.AWAITING_PAYOUT_CONFIRMATION, S.PAYOUT_FAILED):
        checks = Step(checks.key, checks.label, DONE)
        payout = Step(payout.key, payout.label, DONE)
        delivered = (Step(delivered.key, _("Awaiting the payout partner's confirmation"), CURRENT)
                     if status == S.AWAITING_PAYOUT_CONFIRMATION
                     else Step(delivered.key, _("Payout by the partner failed"), FAILURE))
    elif status == S.CHARGED_BACK:
        checks = Step(checks.key, _("Payment taken back by the card's bank") if audience == "sender" else _("Cancelled"),
                      FAILURE)
    elif status in (S.SETTLEMENT_FAILED, S.REFUNDED) or refunding:
        checks = Step(checks.key, checks.label, DONE)
        payout = Step(payout.key, _("On-chain payout failed"), FAILURE)
    steps = [pay, checks, payout, delivered]
    if status in (S.REJECTED, S.REFUNDED, S.REFUNDING):
        refund = _("Refunded to your card") if audience == "sender" else _("Refunded to the sender")
        steps.append(Step("refunded", refund, DONE if status == S.REFUNDED else CURRENT))
    elif status == S.REFUND_FAILED:
        steps.append(Step("refunded", _("Refund not accepted by the card's bank") if audience == "sender"
                          else _("Refunded to the sender"), FAILURE if audience == "sender" else CURRENT))
    return steps


def poll_trigger(transfer):
    """The htmx trigger that keeps the status block fresh, or None once nothing more will happen."""
    if transfer.status in TERMINAL:
        return None
    return "every 10s" if transfer.status in SLOW else "every 2s"


def status_context(transfer, *, audience):
    headlines = SENDER_HEADLINES if audience == "sender" else RECIPIENT_HEADLINES
    title, explanation = headlines[transfer.status]
    partner_payout = _partner_payout(transfer)
    if transfer.status in (S.AWAITING_PAYOUT_CONFIRMATION, S.PAYOUT_FAILED):
        name = {"partner": partner_payout.payout_partner.name if partner_payout else "?"}
        title, explanation = str(title) % name, str(explanation) % name
    return {
        "status_title": title,
        "status_explanation": explanation,
        "partner_payout": partner_payout,
        "steps": transfer_timeline(transfer, audience=audience),
        "poll_trigger": poll_trigger(transfer),
        "is_terminal": transfer.status in TERMINAL,
        "is_failed": transfer.status in FAILED,
        # Screening reasons stay with compliance (no tipping off): only outcomes that already happened show theirs.
        "show_failure_reason": audience == "sender" and bool(transfer.failure_reason)
        and transfer.status in (S.REJECTED, S.REFUNDED, S.SETTLEMENT_FAILED),
    }


def _partner_payout(transfer):
    """The payout partner's part of a transfer paid out through one (payments/services/payout_partners.py), or None."""
    return PartnerPayout.objects.select_related("payout_partner").filter(transfer=transfer).first()
