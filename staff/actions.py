"""What an app declares for each staff action: the permission that names it, when it applies, whether it needs a
second person, and the service it runs. Apps register their actions at start-up (their AppConfig.ready);
`staff.services` runs them for admin, checks permissions, asks for approvals and writes the audit trail."""

from collections.abc import Callable
from dataclasses import dataclass

from common.errors import ApplicationError


class ActionRefused(ApplicationError):
    code = "action-refused"
    title = "This action does not apply"


def _applies(obj):
    return None


def _one_person(obj):
    return False


def _no_state(obj):
    return ""


@dataclass(frozen=True)
class GuardedAction:
    """One staff action on one model.

    permission  "app_label.codename": who may run it (and, with four-eyes, who may approve it); names it in the trail
    model       the model whose rows it acts on (locked while it runs)
    done        past tense for messages ("released")
    perform     perform(obj, *, reason, actor) -> message or None; raise an ApplicationError to refuse
    check       check(obj) raises an ApplicationError when the action cannot apply to obj now
    four_eyes   four_eyes(obj) -> True when a second person must approve before perform runs
    state       state(obj) -> what the approver approves; if it differs at approval time, the request is stale
    atomic      perform runs inside the audit entry's transaction, under the row lock; False for actions that call the
                network (they run outside any transaction and are recorded after), which cannot be four-eyes
    """

    permission: str
    model: type
    done: str
    perform: Callable
    check: Callable = _applies
    four_eyes: Callable = _one_person
    state: Callable = _no_state
    atomic: bool = True

    def __post_init__(self):
        if not self.atomic and self.four_eyes is not _one_person:
            raise ValueError(f"{self.permission}: a four-eyes action must be atomic (approval locks and re-checks)")

    @property
    def may_need_approval(self):
        return self.four_eyes is not _one_person


_registry: dict[str, GuardedAction] = {}


def guarded_actions_register(*actions):
    for action in actions:
        _registry[action.permission] = action


def guarded_action_get(permission):
    try:
        return _registry[permission]
    except KeyError:
        raise ActionRefused(f"No action {permission} is registered.") from None


def guarded_actions_all():
    return list(_registry.values())
