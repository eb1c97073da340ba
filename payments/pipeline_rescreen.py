"""Re-screening when a new sanctions list version loads (payments/tasks.py, rescreen_task) or an officer asks for it
(payments/guarded.py): each transfer not yet settled is screened again under its row lock, and the decision applied
as at funding, except that a clear one is left to its own advance step (payments/pipeline.py): re-screening never pays
out. See docs/compliance.md.
"""

import logging

from django.db import transaction

from payments.errors import ScreeningUndecided
from payments.models import Transfer
from payments.pipeline_refunds import refund_task
from payments.pipeline_steps import step_after_commit
from payments.services import review
from payments.services.screening import CLEAR, HOLD, REJECT, screening_check

log = logging.getLogger(__name__)
S = Transfer.Status

# Not yet settled; awaiting_funding ones are screened when funded anyway. awaiting_claim: a transfer may wait days for
# its recipient, and both its ways out (the sender's cancel, the final refund) return the money without a screening.
RESCREENED = (S.FUNDED, S.HELD, S.AWAITING_CLAIM)


def transfer_rescreen(*, transfer_id, trigger):
    """Screen one transfer again, under its row lock, and record the result. A funded transfer takes the new decision
    as at funding, except that a clear one is left to its own advance step (re-screening never pays out): a hold moves
    it to `held`, a reject to `rejected` and its refund is queued after commit. A held transfer only gets the new
    result (it stays held: an officer decides, and a pending release request on the old evidence goes stale). Any
    other status (it moved to settling meanwhile, or was cancelled) is skipped: returns None."""
    with transaction.atomic():
        transfer = Transfer.objects.select_for_update(of=("self",)).select_related("quote").filter(
            pk=transfer_id).first()
        if transfer is None or transfer.status not in RESCREENED:
            return None
        outcome = screening_check(transfer=transfer)
        if outcome.decision not in (CLEAR, HOLD, REJECT):
            raise ScreeningUndecided(f"screening returned {outcome.decision!r} for transfer {transfer.id}")
        if transfer.status in (S.FUNDED, S.AWAITING_CLAIM) and outcome.decision == REJECT:
            transfer.mark_rejected(outcome.reason)
            transfer.save()
            step_after_commit(refund_task, transfer.id)
        elif transfer.status in (S.FUNDED, S.AWAITING_CLAIM) and outcome.decision == HOLD:
            transfer.mark_held(outcome.reason)
            transfer.save()
        result = review.screening_result_record(transfer=transfer, outcome=outcome, trigger=trigger)
    log.info("transfer_rescreened transfer_id=%s trigger=%s decision=%s status=%s", transfer.id, trigger,
             outcome.decision, transfer.status)
    return result


def transfers_rescreen(*, reason):
    """Screen every transfer not yet settled (funded or held) again: a new list version (`reason` names it) loaded.
    One transaction per transfer, each under its row lock, so the pipeline is never blocked for long; a transfer that
    already has a result for this list version is not screened twice (a retried task resumes where it stopped).
    Returns {status after: count} for the transfers screened."""
    trigger = review.rescreen_trigger(reason)
    ids = list(Transfer.objects.filter(status__in=RESCREENED, livemode=True).exclude(screening_results__trigger=trigger)
               .order_by("created_at", "pk").values_list("pk", flat=True))
    counts = {}
    for transfer_id in ids:
        result = transfer_rescreen(transfer_id=transfer_id, trigger=trigger)
        key = result.status_after if result else "skipped"
        counts[key] = counts.get(key, 0) + 1
    log.info("transfers_rescreened trigger=%s candidates=%s counts=%s", trigger, len(ids), counts)
    return counts
