"""A manual rate is a staff action like any other that moves money's price: it runs through
staff.services.action_perform (the permission `payments.add_rate` checked, the corridor's row locked, the reason and
the outcome — the rate recorded, or the refusal — in the audit trail). It carries its own value, so it is built per
request and not registered (no four-eyes approval re-runs it by name)."""

from simple_history.utils import update_change_reason

from payments.models import Corridor
from payments.services.rates import rate_record_manual
from staff.actions import GuardedAction

MANUAL_RATE_PERMISSION = "payments.add_rate"


def rate_manual_action(*, value, recorded=None):
    """`recorded`, a list, receives the Rate row written (the admin's log and redirect name it)."""

    def perform(corridor, *, reason, actor):
        rate = rate_record_manual(currency=corridor.source_currency, value=value, by=actor.get_username())
        update_change_reason(rate, reason)  # the rate's history row says why, as the audit entry does
        if recorded is not None:
            recorded.append(rate)
        return (f"manual rate 1 {corridor.source_currency} = {rate.rate} KGS in effect from "
                f"{rate.effective_at:%Y-%m-%d %H:%M} UTC (#{rate.pk})")

    return GuardedAction(permission=MANUAL_RATE_PERMISSION, model=Corridor, done="rate recorded", perform=perform)
