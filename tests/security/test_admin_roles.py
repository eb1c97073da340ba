"""Least privilege in admin (issue 7, item 2): every money or state action needs its own permission; the four
staff roles hold exactly theirs; view-only staff and the auditor can look but never act; every action that runs
records who, when, what and why."""

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import PermissionDenied
from django.core.management import call_command

from onchain.models import HotWallet, OperatorAlert
from payments.models import Transfer
from tests.helpers import staff_login
from tests.security.factories import (
    ROLES,
    act,
    failed_settlement,
    halted_wallet,
    held_transfer,
    open_alert,
    staff_user,
    view_only_staff,
)

pytestmark = pytest.mark.django_db

TRANSFERS, WALLETS, ALERTS = "/admin/payments/transfer/", "/admin/onchain/hotwallet/", "/admin/onchain/operatoralert/"
QUEUE = "/admin/payments/heldtransfer/"  # the review queue: held transfers


def _reloaded(obj):
    return type(obj).objects.get(pk=obj.pk)


# action -> (changelist, the object it applies to, the permission, the roles that hold it, "did it take effect?")
ACTIONS = {
    "release": (TRANSFERS, lambda chain: held_transfer(), "payments.release_transfer", {"compliance officer"},
                # a sanctions hold: the first person's release only requests (four-eyes tests cover the rest)
                lambda t: _pending_requests(t) == 1 and _reloaded(t).status == Transfer.Status.HELD),
    "reject": (TRANSFERS, lambda chain: held_transfer(), "payments.reject_transfer", {"compliance officer"},
               lambda t: _reloaded(t).status == Transfer.Status.REJECTED),
    # the review queue's approve and reject are the same guarded release and reject
    "review_approve": (QUEUE, lambda chain: held_transfer(), "payments.release_transfer", {"compliance officer"},
                       lambda t: _pending_requests(t) == 1 and _reloaded(t).status == Transfer.Status.HELD),
    "review_reject": (QUEUE, lambda chain: held_transfer(), "payments.reject_transfer", {"compliance officer"},
                      lambda t: _reloaded(t).status == Transfer.Status.REJECTED),
    "review_rescreen": (QUEUE, lambda chain: held_transfer(), "payments.rescreen_transfer", {"compliance officer"},
                        lambda t: _screened_manually(t)),
    "refund": (TRANSFERS, lambda chain: failed_settlement(), "payments.refund_transfer", {"operator"},
               lambda t: _reloaded(t).status == Transfer.Status.REFUNDED),
    "cancel": (TRANSFERS, lambda chain: held_transfer(), "payments.cancel_transfer", {"operator"},
               lambda t: _reloaded(t).status == Transfer.Status.REFUNDING),
    "halt": (WALLETS, lambda chain: chain["wallet"], "onchain.halt_wallet", {"operator", "treasury"},
             lambda w: _reloaded(w).halted),
    "resume": (WALLETS, lambda chain: halted_wallet(chain["wallet"]), "onchain.resume_wallet", {"treasury"},
               lambda w: not _reloaded(w).halted),
    "resync_nonce": (WALLETS, lambda chain: chain["wallet"], "onchain.resync_nonce", {"treasury"},
                     lambda w: _audited(w, "onchain.resync_nonce")),
    "resolve": (ALERTS, lambda chain: open_alert(chain["wallet"]), "onchain.resolve_alert", {"operator", "treasury"},
                lambda a: _reloaded(a).resolved_at is not None),
}
WHO = [*ROLES, "view-only staff"]
FOUR_EYES = ("release", "review_approve")  # a sanctions hold's release: the first person only requests


def _pending_requests(obj):
    from staff.models import ApprovalRequest

    return ApprovalRequest.objects.filter(target_id=str(obj.pk), status="pending").count()


def _screened_manually(transfer):
    from payments.models import ScreeningResult

    return ScreeningResult.objects.filter(transfer_id=transfer.pk, trigger="manual").exists()


def _audited(obj, action):
    from staff.models import AuditEntry

    return AuditEntry.objects.filter(target_id=str(obj.pk), action=action, outcome__in=["done", "requested"]).exists()


def _user(who):
    return view_only_staff() if who == "view-only staff" else staff_user(who)


@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize("action", list(ACTIONS))
def test_each_action_runs_only_for_the_roles_that_hold_its_permission(client, chain, stripe_server, action, who):
    """Each role (and view-only staff) POSTs each admin action, confirmed with a reason: the roles holding the
    action's permission get its effect and an audit entry naming them and their reason; everyone else gets a 403,
    and nothing moves or is recorded."""
    changelist, make, permission, allowed, took_effect = ACTIONS[action]
    target = make(chain)
    user = _user(who)
    staff_login(client, user)
    response = act(client, changelist, action, [target], reason=f"{who} checked the case")
    if who in allowed:
        assert response.status_code == 302, response.content.decode()[:2000]
        assert took_effect(target)
        from staff.models import AuditEntry

        entry = AuditEntry.objects.get(target_id=str(target.pk), action=permission)
        assert (entry.actor, entry.reason, entry.outcome) == (user, f"{who} checked the case",
                                                               "done" if action not in FOUR_EYES else "requested")
        assert entry.at is not None and entry.target_repr
    else:
        assert response.status_code == 403
        assert not took_effect(target)
        from staff.models import AuditEntry

        assert not AuditEntry.objects.filter(target_id=str(target.pk)).exists()


@pytest.mark.parametrize("who", WHO)
def test_actions_a_user_may_not_run_are_not_offered(client, chain, who):
    """The changelist's action menu lists only the actions the user's permissions allow."""
    held_transfer(), open_alert(chain["wallet"])  # admin shows the menu only above a non-empty list
    staff_login(client, _user(who))
    offered = set()
    for changelist in (TRANSFERS, QUEUE, WALLETS, ALERTS):
        page = client.get(changelist)
        assert page.status_code == 200
        offered |= {name for name in ACTIONS if f'value="{name}"' in page.content.decode()}
    expected = {name for name, spec in ACTIONS.items() if who in spec[3]}
    assert offered == expected


@pytest.mark.parametrize("who", WHO)
def test_everyone_on_staff_reads_the_review_queue_and_its_trail(client, who):
    """The review queue, the screening results and the review decisions are readable by every role (view
    permissions), and only the compliance officer is offered the queue's decisions."""
    held_transfer()
    staff_login(client, _user(who))
    for page in (QUEUE, "/admin/payments/screeningresult/", "/admin/payments/reviewdecision/"):
        assert client.get(page).status_code == 200, page
    offered = client.get(QUEUE).content.decode()
    assert ('value="review_reject"' in offered) == (who == "compliance officer")


def test_the_service_refuses_a_user_without_the_permission_whatever_the_admin_does(chain):
    """The permission check sits in the service too: calling it directly as view-only staff is refused."""
    from payments.guarded import RELEASE
    from staff.services import action_perform

    target = held_transfer()
    with pytest.raises(PermissionDenied):
        action_perform(action=RELEASE, actor=view_only_staff(), ids=[target.pk], reason="let it through")
    assert _reloaded(target).status == Transfer.Status.HELD and _pending_requests(target) == 0


ROLE_PERMISSIONS = {
    "operator": {"payments.refund_transfer", "payments.cancel_transfer", "onchain.halt_wallet",
                 "onchain.resolve_alert", "onchain.acknowledge_alert", "payments.resolve_reconciliation_item",
                 "payments.add_partnerstatement",
                 # partners' API keys (docs/api.md "Keys and scopes"): issue, rotate, revoke
                 "payments.add_partnerapikey", "payments.rotate_partnerapikey", "payments.revoke_partnerapikey"},
    # KYC (docs/compliance.md): senders' documents recorded and verified, the tiers' limits set.
    "compliance officer": {"payments.release_transfer", "payments.reject_transfer", "payments.rescreen_transfer",
                           "payments.change_senderprofile", "payments.verify_sender_id", "payments.verify_sender_funds",
                           "payments.change_limittier"},
    "treasury": {"onchain.halt_wallet", "onchain.resume_wallet", "onchain.resync_nonce", "onchain.resolve_alert",
                 "onchain.acknowledge_alert",
                 "onchain.add_hotwallet", "onchain.change_hotwallet", "onchain.change_token", "onchain.change_chain",
                 "payments.change_corridor", "payments.add_rate", "payments.change_rate",
                 "payments.topup_partner_balance", "payments.withdraw_partner_balance",
                 "payments.resolve_reconciliation_item", "payments.add_payoutpartner", "payments.change_payoutpartner",
                 "payments.record_payout_return"},
    "auditor": set(),
}


def _group_permissions(name):
    return {f"{p.content_type.app_label}.{p.codename}"
            for p in Group.objects.get(name=name).permissions.select_related("content_type")}


def _views():
    return {f"{p.content_type.app_label}.{p.codename}" for p in Permission.objects.filter(
        content_type__app_label__in=["payments", "onchain", "staff"], codename__startswith="view_")}


@pytest.mark.parametrize("role", ROLES)
def test_each_role_is_a_group_with_exactly_its_permissions(role):
    """The roles exist after migrating (no set-up step) and hold every view permission of the money apps and the
    audit trail, plus their own actions and nothing else; the auditor holds view permissions only."""
    assert _group_permissions(role) == _views() | ROLE_PERMISSIONS[role]


def test_roles_sync_converges_and_is_idempotent():
    """`manage.py roles_sync` removes a permission granted to a role by hand and can be run again harmlessly."""
    auditor = Group.objects.get(name="auditor")
    auditor.permissions.add(Permission.objects.get(codename="release_transfer"))
    call_command("roles_sync", verbosity=0)
    call_command("roles_sync", verbosity=0)
    assert _group_permissions("auditor") == _views()
    assert Group.objects.filter(name__in=ROLES).count() == len(ROLES)


def test_the_auditor_reads_the_audit_trail_and_nobody_edits_it(client, chain):
    """The audit trail is listed for the auditor; its rows cannot be changed or deleted in admin, even by a
    superuser."""
    from django.contrib.auth import get_user_model

    from staff.models import AuditEntry

    compliance = staff_user("compliance officer")
    staff_login(client, compliance)
    target = held_transfer()
    act(client, TRANSFERS, "reject", [target], reason="sender on a watch list")
    entry = AuditEntry.objects.get(target_id=str(target.pk))
    staff_login(client, staff_user("auditor"))
    page = client.get("/admin/staff/auditentry/")
    assert page.status_code == 200 and "sender on a watch list" in page.content.decode()
    root = get_user_model().objects.create_superuser("root", "root@example.com", "a-long-password-123")
    staff_login(client, root)
    client.post(f"/admin/staff/auditentry/{entry.pk}/change/", {"reason": "nothing to see"})
    assert client.post(f"/admin/staff/auditentry/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    assert AuditEntry.objects.get(pk=entry.pk).reason == "sender on a watch list"


def test_halting_and_resuming_are_not_editable_on_the_wallet_form(client, chain):
    """A treasurer editing the wallet's limits cannot untick `halted` on the form (that would skip the reason and
    the second person): the halt changes only through the actions."""
    wallet = halted_wallet(chain["wallet"], "chain nonce 9 is ahead of ours (3): a transaction we did not sign")
    staff_login(client, staff_user("treasury"))
    client.post(f"/admin/onchain/hotwallet/{wallet.pk}/change/", {
        "chain": wallet.chain_id, "address": wallet.address, "key_env": wallet.key_env, "is_active": "on",
        "halt_reason": "", "change_reason": "limits review"})
    assert HotWallet.objects.get(pk=wallet.pk).halted


def test_alerts_are_resolved_only_through_the_action(client, chain):
    """Operator alerts stay read-only: resolving one is the audited action, not a form edit."""
    alert = open_alert(chain["wallet"])
    staff_login(client, staff_user("operator"))
    client.post(f"/admin/onchain/operatoralert/{alert.pk}/change/", {"resolved_at_0": "2026-01-01", "resolved_at_1": "00:00"})
    assert OperatorAlert.objects.get(pk=alert.pk).resolved_at is None
