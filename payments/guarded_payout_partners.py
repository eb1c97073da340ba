"""Staff action on payout partners' payouts (run from admin through staff.services: permission, reason, audit trail):
treasury records the KGST of a failed payout as returned to the float by the partner (docs/runbook.md, "Payout
partners")."""

from payments.models import PartnerPayout
from payments.services.payout_partners import PayoutReturnRefused, payout_return_record
from staff.actions import GuardedAction


def _failed_not_returned(payout):
    if payout.status != PartnerPayout.Status.FAILED or payout.returned_at:
        raise PayoutReturnRefused(f"Only a failed payout not yet returned (this one is {payout.status}"
                                  + (", returned" if payout.returned_at else "") + ").")


def _record_return(payout, *, reason, actor):
    payout_return_record(payout_id=payout.pk, note=f"(recorded by {actor.get_username()})")
    return f"KGST of payout {payout.reference} recorded back in the float"


RECORD_RETURN = GuardedAction(permission="payments.record_payout_return", model=PartnerPayout,
                              done="recorded as returned", check=_failed_not_returned, perform=_record_return)
ACTIONS = (RECORD_RETURN,)
