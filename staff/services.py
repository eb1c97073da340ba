"""Staff actions for every app: permission, reason, four-eyes and the audit trail in one place.

- `action_perform` runs a registered action (staff.actions) on rows, as `actor`, with a reason: refused without the
  permission; a four-eyes action only records an ApprovalRequest; everything is written to the AuditEntry trail.
- `approval_approve` / `approval_decline`: a second person decides a pending request. Approval locks the request
  and the row, refuses the requester and anyone without the action's permission, refuses a request whose row changed
  since (stale) and only then runs the action, in the same transaction.
- `roles_sync`: the role groups hold exactly their permissions (staff.roles).
- `totp_device_provision`: a confirmed TOTP device for a user (make run's admin).
"""

from dataclasses import dataclass

from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.db import IntegrityError, transaction

from common.errors import ApplicationError
from staff.actions import guarded_action_get, guarded_actions_all
from staff.models import ApprovalRequest, AuditEntry
from staff.roles import ROLES, VIEWED_APPS

Out = AuditEntry.Outcome
REASON_MAX = 500
_WHERE = "Staff oversight → Approval requests"


class ReasonRequired(ApplicationError):
    status = 400
    code = "reason-required"
    title = "Give a reason: it goes into the audit trail with your name."


@dataclass(frozen=True)
class Outcome:
    target: str
    outcome: str
    detail: str = ""

    @property
    def message(self):
        return f"{self.target}: {self.detail}" if self.detail else f"{self.target}: {self.outcome}"


def _reason(reason):
    reason = (reason or "").strip()
    if not reason:
        raise ReasonRequired(field="reason")
    return reason[:REASON_MAX]


def _require(actor, permission):
    if not (actor.is_active and actor.is_staff and actor.has_perm(permission)):
        raise PermissionDenied(f"{actor.get_username()} may not {permission}")


def _record(*, actor, action, target_type, target_id, target_repr, reason, outcome, detail="", approval=None):
    return AuditEntry.objects.create(
        actor=actor, actor_username=actor.get_username(), action=action, target_type=target_type,
        # An API key's pk is its prefix and hash (~150 characters): the first 64 name it uniquely (the prefix).
        target_id=str(target_id)[:64], target_repr=str(target_repr)[:200], reason=reason, outcome=outcome,
        detail=str(detail)[:500], approval=approval)


def _state(action, obj):
    return "gone" if obj is None else action.state(obj)[:400]


def _locked(action, pk):
    return action.model.objects.select_for_update().filter(pk=pk).first()


# Running an action ---------------------------------------------------------------------------------------------

def action_preview(*, action, obj):
    """What confirming the action would do to `obj` now, in words (the confirmation page lists it per row)."""
    try:
        action.check(obj)
    except ApplicationError as exc:
        return f"skipped: {exc.detail}"
    pending = ApprovalRequest.objects.filter(action=action.permission, target_id=str(obj.pk),
                                             status=ApprovalRequest.Status.PENDING).first()
    if pending:
        return f"skipped: request #{pending.pk} already waits for a second person ({_WHERE})"
    if action.four_eyes(obj):
        return "needs a second person's approval: confirming records your request, nothing moves yet"
    return f"will be {action.done}"


def action_perform(*, action, actor, ids, reason):
    """Run `action` on the rows `ids` as `actor`. Returns one Outcome per row. PermissionDenied without the action's
    permission, ReasonRequired without a reason; a refusal for one row (its check or its service) is that row's
    outcome and is recorded too."""
    _require(actor, action.permission)
    reason = _reason(reason)
    return [_perform_one(action, actor, pk, reason) for pk in ids]


def _perform_one(action, actor, pk, reason):
    target_type = ContentType.objects.get_for_model(action.model)
    if not action.atomic:
        obj = action.model.objects.filter(pk=pk).first()
        if obj is None:
            return Outcome(str(pk), Out.REFUSED, "not found")
        try:
            action.check(obj)
            outcome, detail = Out.DONE, action.perform(obj, reason=reason, actor=actor) or action.done
        except ApplicationError as exc:
            outcome, detail = Out.REFUSED, exc.detail
        _record(actor=actor, action=action.permission, target_type=target_type, target_id=obj.pk, target_repr=obj,
                reason=reason, outcome=outcome, detail=detail)
        return Outcome(str(obj), outcome, detail)

    with transaction.atomic():
        obj = _locked(action, pk)
        if obj is None:
            return Outcome(str(pk), Out.REFUSED, "not found")
        approval = None
        try:
            with transaction.atomic():  # a savepoint: a refusal undoes the effect, not the audit entry below
                action.check(obj)
                if action.four_eyes(obj):
                    approval = ApprovalRequest.objects.create(
                        action=action.permission, target_type=target_type, target_id=str(obj.pk),
                        target_repr=str(obj)[:200], state=_state(action, obj), reason=reason, requested_by=actor)
                    outcome, detail = Out.REQUESTED, f"request #{approval.pk} waits for a second person's approval ({_WHERE})"
                else:
                    outcome, detail = Out.DONE, action.perform(obj, reason=reason, actor=actor) or action.done
        except ApplicationError as exc:
            approval, outcome, detail = None, Out.REFUSED, exc.detail
        except IntegrityError:  # one pending request per action and row
            approval, outcome, detail = None, Out.REFUSED, f"a request for this already waits for a second person ({_WHERE})"
        _record(actor=actor, action=action.permission, target_type=target_type, target_id=obj.pk, target_repr=obj,
                reason=reason, outcome=outcome, detail=detail, approval=approval)
    return Outcome(str(obj), outcome, detail)


# Four-eyes -----------------------------------------------------------------------------------------------------

def approval_permission_check(*, approval, actor):
    """PermissionDenied unless `actor` holds the permission of the request's action."""
    _require(actor, guarded_action_get(approval.action).permission)


def approval_preview(*, approval, actor):
    if approval.status != ApprovalRequest.Status.PENDING:
        return f"skipped: already {approval.status}"
    if approval.requested_by_id == actor.pk:
        return "skipped: you asked for this; a second person must approve it"
    action = guarded_action_get(approval.action)
    obj = action.model.objects.filter(pk=approval.target_id).first()
    if _state(action, obj) != approval.state:
        return "fails: the object changed since the request (it will be closed as stale)"
    return f"will be {action.done} (asked by {approval.requested_by.get_username()}: {approval.reason})"


def approval_approve(*, approval_id, actor, reason):
    """The second person approves: the action runs now, in this transaction, on the row as it was requested."""
    reason = _reason(reason)
    with transaction.atomic():
        approval = ApprovalRequest.objects.select_for_update().get(pk=approval_id)
        action = guarded_action_get(approval.action)
        _require(actor, action.permission)

        def record(outcome, detail):
            _record(actor=actor, action=approval.action, target_type=approval.target_type,
                    target_id=approval.target_id, target_repr=approval.target_repr, reason=reason, outcome=outcome,
                    detail=detail, approval=approval)
            return Outcome(approval.target_repr, outcome, detail)

        if approval.status != ApprovalRequest.Status.PENDING:
            return record(Out.REFUSED, f"request #{approval.pk} is already {approval.status}")
        if approval.requested_by_id == actor.pk:
            return record(Out.REFUSED, "you asked for this: a second person must approve it")
        obj = _locked(action, approval.target_id)
        now = _state(action, obj)
        if now != approval.state:
            approval.mark_stale(actor, reason)
            approval.save()
            return record(Out.STALE, f"changed since the request ({approval.state or '-'} → {now or '-'}); "
                                   f"request #{approval.pk} closed, nothing done")
        try:
            with transaction.atomic():
                action.check(obj)
                detail = action.perform(obj, reason=approval.reason, actor=actor) or action.done
                approval.mark_approved(actor, reason)
                approval.save()
        except ApplicationError as exc:
            approval.refresh_from_db()
            return record(Out.REFUSED, exc.detail)
        return record(Out.APPROVED, detail)


def approval_decline(*, approval_id, actor, reason):
    """Close a pending request without acting (any holder of the permission, the requester included)."""
    reason = _reason(reason)
    with transaction.atomic():
        approval = ApprovalRequest.objects.select_for_update().get(pk=approval_id)
        _require(actor, guarded_action_get(approval.action).permission)
        if approval.status != ApprovalRequest.Status.PENDING:
            outcome, detail = Out.REFUSED, f"request #{approval.pk} is already {approval.status}"
        else:
            approval.mark_declined(actor, reason)
            approval.save()
            outcome, detail = Out.DECLINED, f"request #{approval.pk} declined"
        _record(actor=actor, action=approval.action, target_type=approval.target_type, target_id=approval.target_id,
                target_repr=approval.target_repr, reason=reason, outcome=outcome, detail=detail, approval=approval)
    return Outcome(approval.target_repr, outcome, detail)


def approval_permissions():
    """The permissions that can need a second person: holding one lets a user open the approvals' actions."""
    return sorted(a.permission for a in guarded_actions_all() if a.may_need_approval)


# Roles and devices ---------------------------------------------------------------------------------------------

def roles_sync(*, strict=True, using="default"):
    """Each role of staff.roles becomes a group with exactly its permissions. `strict` refuses a permission that
    does not exist (a typo, or an app not migrated); after `migrate` it is skipped instead. Returns {role: count}."""
    permissions = Permission.objects.using(using)
    views = set(permissions.filter(content_type__app_label__in=VIEWED_APPS, codename__startswith="view_"))
    counts = {}
    with transaction.atomic(using=using):
        for name, names in ROLES.items():
            wanted = set(views)
            for dotted in names:
                app_label, codename = dotted.split(".")
                found = permissions.filter(content_type__app_label=app_label, codename=codename).first()
                if found is None:
                    if strict:
                        raise ImproperlyConfigured(f"role {name!r}: no permission {dotted} (run migrate first?)")
                    continue
                wanted.add(found)
            group, _ = Group.objects.using(using).get_or_create(name=name)
            group._change_reason = "roles_sync: the role's permissions as staff/roles.py declares them"
            group.permissions.set(wanted)
            counts[name] = len(wanted)
    return counts


def totp_device_provision(*, user, key_hex, name):
    """A confirmed TOTP device named `name` for `user` with the given hex key (created, or its key replaced)."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device, _ = TOTPDevice.objects.update_or_create(user=user, name=name,
                                                    defaults={"key": key_hex, "confirmed": True})
    return device

