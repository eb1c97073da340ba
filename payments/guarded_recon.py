"""Staff action on reconciliation items (run from admin through staff.services: permission, reason, audit trail).
Registered in PaymentsConfig.ready(); it calls the reconciliation service."""

from payments.models import ReconciliationItem
from payments.services.reconciliation import reconciliation_item_resolve
from staff.actions import ActionRefused, GuardedAction


def _open(item):
    if item.status != ReconciliationItem.Status.OPEN:
        raise ActionRefused("Already resolved.")


def _resolve(item, *, reason, actor):
    resolved = reconciliation_item_resolve(item_id=item.pk, by=actor.get_username(), reason=reason)
    if resolved.halts_payouts and not ReconciliationItem.objects.open().filter(halts_payouts=True).exists():
        return "resolved; payouts resumed"
    return "resolved"


RESOLVE = GuardedAction(permission="payments.resolve_reconciliation_item", model=ReconciliationItem, done="resolved",
                        check=_open, perform=_resolve)
ACTIONS = (RESOLVE,)
