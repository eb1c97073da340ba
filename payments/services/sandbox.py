"""The sandbox: transfers made with a test key (livemode False) move through the same states as live ones, but only
here, never through Stripe, the ledger, the limits or the chain (docs/api.md "Sandbox").

A test transfer is funded by its magic amount at creation (the source amount's cents: .01 funded, .02 held for
review, .03 failed; any other stays awaiting funding), or later by `sandbox_simulate` (the simulate endpoint). Each
move uses the transfer's own transitions, so a sandbox transfer can only take paths a live one can."""

import logging

from django.db import transaction
from django.utils import timezone

from common.errors import ApplicationError
from payments.models import Transfer

log = logging.getLogger(__name__)
S = Transfer.Status

FUNDED, HELD, FAILED, COMPLETED = "funded", "held", "failed", "completed"
EVENTS = (FUNDED, HELD, FAILED, COMPLETED)
MAGIC_CENTS = {1: FUNDED, 2: HELD, 3: FAILED}
# Where each event may start (it passes through `funded` on the way, as a live transfer would).
EVENT_SOURCES = {
    FUNDED: {S.AWAITING_FUNDING},
    HELD: {S.AWAITING_FUNDING, S.FUNDED},
    FAILED: {S.AWAITING_FUNDING, S.FUNDED, S.HELD},
    COMPLETED: {S.AWAITING_FUNDING, S.FUNDED, S.HELD, S.SETTLING},
}


class SandboxMoveRefused(ApplicationError):
    status = 409
    code = "sandbox-move-refused"
    title = "The transfer cannot make this move"


class SandboxLiveRefused(ApplicationError):
    status = 403
    code = "sandbox-live-key"
    title = "The sandbox needs a test key"


class SandboxEventUnknown(ApplicationError):
    status = 400
    code = "validation-error"
    title = "Invalid request"


def magic_event(amount):
    """The event a source amount asks for (its cents), or None."""
    return MAGIC_CENTS.get(int((amount * 100) % 100))


def _apply(transfer, event):
    """Moves a locked test transfer by `event` through its transitions; nothing is posted, charged or paid out."""
    now = timezone.now()
    if transfer.status == S.AWAITING_FUNDING:
        transfer.mark_funded(now)
    if event == HELD:
        transfer.mark_held("sandbox: held for review")
    elif event == FAILED:
        transfer.mark_rejected("sandbox: rejected by screening")
    elif event == COMPLETED and transfer.status != S.SETTLING:
        transfer.mark_settling(f"sandbox-{transfer.pk}"[:64])
    transfer.save()
    if event == COMPLETED:
        Transfer.objects.filter(pk=transfer.pk, livemode=False).mark_completed(now)
        transfer.refresh_from_db()
    log.info("sandbox_transfer_moved transfer_id=%s event=%s status=%s", transfer.pk, event, transfer.status)
    return transfer


def sandbox_magic_apply(*, transfer):
    """At creation (in the inserting transaction): a magic amount moves the new test transfer at once."""
    if transfer.livemode:
        raise SandboxLiveRefused("Only test transfers are moved by magic amounts.")
    event = magic_event(transfer.quote.source_amount)
    return _apply(transfer, event) if event else transfer


def sandbox_simulate(*, transfer_id, event, partner):
    """Moves the partner's test transfer by `event` (funded, held, failed, completed); a live transfer is not found
    here (SandboxMoveRefused never names it), a move its status does not allow is refused (409) and nothing
    changes."""
    if event not in EVENTS:
        raise SandboxEventUnknown(f"event must be one of {', '.join(EVENTS)}.", field="event")
    with transaction.atomic():
        transfer = (Transfer.objects.select_for_update().select_related("quote")
                    .filter(pk=transfer_id, partner=partner, livemode=False).first())
        if transfer is None:
            return None
        if transfer.status not in EVENT_SOURCES[event]:
            raise SandboxMoveRefused(f"A {transfer.status} transfer cannot become {event}.", field="event")
        return _apply(transfer, event)
