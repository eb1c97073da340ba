"""Reasons and four-eyes (issue 7, item 2): an action runs only from its confirmation page with a reason;
releasing a sanctions hold and resuming a wallet halted for a foreign nonce need a second person: the first
requests (nothing moves), a different holder of the permission approves, and only then the service runs."""

import pytest
from django.db import connection, transaction
from django.test import Client

from onchain.models import HotWallet, Payout
from payments.models import Transfer
from tests.helpers import staff_login
from tests.security.factories import act, halted_wallet, held_transfer, nonce_halted_wallet, staff_user, transfer

pytestmark = pytest.mark.django_db

TRANSFERS, WALLETS, APPROVALS = "/admin/payments/transfer/", "/admin/onchain/hotwallet/", "/admin/staff/approvalrequest/"


def _as(role):
    user = staff_user(role)
    return user, staff_login(Client(), user)


def _request_for(obj):
    from staff.models import ApprovalRequest

    return ApprovalRequest.objects.get(target_id=str(obj.pk))


def _entries(obj):
    from staff.models import AuditEntry

    return list(AuditEntry.objects.filter(target_id=str(obj.pk)).order_by("id").values_list(
        "actor__username", "outcome", "reason"))


def _status(t):
    return Transfer.objects.get(pk=t.pk).status


def test_a_sanctions_release_waits_for_a_second_compliance_officer(chain):
    """A's release records a request and moves nothing (still held, no payout); B's approval runs the release
    (settling, one payout); both are in the audit trail with their reasons."""
    (a, as_a), (b, as_b) = _as("compliance officer"), _as("compliance officer")
    held = held_transfer()
    response = act(as_a, TRANSFERS, "release", [held], reason="false positive: other date of birth")
    assert response.status_code == 302
    assert _status(held) == Transfer.Status.HELD and not Payout.objects.exists()
    request = _request_for(held)
    assert (request.status, request.requested_by, request.reason) == ("pending", a, "false positive: other date of birth")

    response = act(as_b, APPROVALS, "approve", [request], reason="checked the passport scan")
    assert response.status_code == 302
    assert _status(held) == Transfer.Status.SETTLING
    assert Payout.objects.filter(reference=str(held.pk)).count() == 1
    request.refresh_from_db()
    assert (request.status, request.decided_by) == ("approved", b)
    assert _entries(held) == [(a.username, "requested", "false positive: other date of birth"),
                              (b.username, "approved", "checked the passport scan")]


def test_approving_your_own_request_is_refused(chain):
    """The requester cannot be the second person: the approval is refused (and recorded), nothing moves."""
    _, as_a = _as("compliance officer")
    held = held_transfer()
    act(as_a, TRANSFERS, "release", [held])
    response = act(as_a, APPROVALS, "approve", [_request_for(held)], reason="looks fine to me", follow=True)
    assert "a second person must approve" in response.content.decode()
    assert _status(held) == Transfer.Status.HELD and not Payout.objects.exists()
    assert _request_for(held).status == "pending"
    assert [e[1] for e in _entries(held)] == ["requested", "refused"]


def test_an_approval_cannot_be_replayed(chain):
    """Approving an approved request again (the same approver, or a third officer) is refused; one payout."""
    _, as_a = _as("compliance officer")
    (_, as_b), (_, as_c) = _as("compliance officer"), _as("compliance officer")
    held = held_transfer()
    act(as_a, TRANSFERS, "release", [held])
    request = _request_for(held)
    act(as_b, APPROVALS, "approve", [request])
    act(as_b, APPROVALS, "approve", [request])
    act(as_c, APPROVALS, "approve", [request])
    assert Payout.objects.filter(reference=str(held.pk)).count() == 1
    assert _request_for(held).status == "approved"
    assert [e[1] for e in _entries(held)] == ["requested", "approved", "refused", "refused"]


def test_a_request_whose_transfer_changed_meanwhile_fails_cleanly(chain):
    """A requests a release; C rejects the transfer meanwhile; B's approval is refused as stale: the transfer stays
    rejected, no payout, the request is closed as stale and says why."""
    _, as_a = _as("compliance officer")
    (_, as_b), (_, as_c) = _as("compliance officer"), _as("compliance officer")
    held = held_transfer()
    act(as_a, TRANSFERS, "release", [held])
    act(as_c, TRANSFERS, "reject", [held], reason="confirmed match")
    assert _status(held) == Transfer.Status.REJECTED
    response = act(as_b, APPROVALS, "approve", [_request_for(held)], reason="ok")
    assert response.status_code == 302
    page = as_b.get(APPROVALS, {"status__exact": "stale"}).content.decode()
    assert _status(held) == Transfer.Status.REJECTED and not Payout.objects.exists()
    assert _request_for(held).status == "stale" and str(held.pk) in page


def test_a_second_request_for_the_same_release_is_refused(chain):
    """While a release waits, asking again (even as another officer) adds no request: the second person approves
    the one that waits."""
    (_, as_a), (_, as_b) = _as("compliance officer"), _as("compliance officer")
    held = held_transfer()
    act(as_a, TRANSFERS, "release", [held])
    act(as_b, TRANSFERS, "release", [held])
    from staff.models import ApprovalRequest

    assert ApprovalRequest.objects.filter(target_id=str(held.pk)).count() == 1
    assert _status(held) == Transfer.Status.HELD


@pytest.mark.parametrize("role", ["operator", "treasury", "auditor"])
def test_only_holders_of_the_permission_may_approve(chain, role):
    """An approval needs the action's own permission: other roles get a 403 and nothing moves."""
    _, as_a = _as("compliance officer")
    held = held_transfer()
    act(as_a, TRANSFERS, "release", [held])
    _, other = _as(role)
    assert act(other, APPROVALS, "approve", [_request_for(held)]).status_code == 403
    assert _status(held) == Transfer.Status.HELD and _request_for(held).status == "pending"


def test_a_declined_request_moves_nothing(chain):
    """A second officer may decline (with a reason): the transfer stays held and can be requested again."""
    (_, as_a), (b, as_b) = _as("compliance officer"), _as("compliance officer")
    held = held_transfer()
    act(as_a, TRANSFERS, "release", [held])
    act(as_b, APPROVALS, "decline", [_request_for(held)], reason="match confirmed by the bank")
    assert _request_for(held).status == "declined" and _status(held) == Transfer.Status.HELD
    assert _entries(held)[-1] == (b.username, "declined", "match confirmed by the bank")


def test_resuming_a_wallet_halted_for_a_foreign_nonce_needs_a_second_treasurer(chain):
    """A nonce halt (the key signed outside the gateway): A's resume only requests; B's approval resumes."""
    (_, as_a), (_, as_b) = _as("treasury"), _as("treasury")
    wallet = nonce_halted_wallet(chain["wallet"])
    act(as_a, WALLETS, "resume", [wallet], reason="key rotated, nonce resynced")
    assert HotWallet.objects.get(pk=wallet.pk).halted
    act(as_a, APPROVALS, "approve", [_request_for(wallet)])
    assert HotWallet.objects.get(pk=wallet.pk).halted
    act(as_b, APPROVALS, "approve", [_request_for(wallet)], reason="saw the rotation ticket")
    assert not HotWallet.objects.get(pk=wallet.pk).halted


def test_a_resume_whose_halt_changed_meanwhile_is_stale(chain):
    """If the halt's reason changed after the request (a new incident), the old request cannot resume it."""
    (_, as_a), (_, as_b) = _as("treasury"), _as("treasury")
    wallet = nonce_halted_wallet(chain["wallet"])
    act(as_a, WALLETS, "resume", [wallet])
    HotWallet.objects.filter(pk=wallet.pk).update(halt_reason="chain nonce 12 is ahead of ours (7): not ours")
    act(as_b, APPROVALS, "approve", [_request_for(wallet)])
    assert HotWallet.objects.get(pk=wallet.pk).halted and _request_for(wallet).status == "stale"


def test_other_halts_are_resumed_by_one_treasurer(chain):
    """A halt for an ordinary reason (a top-up) needs one person with the permission and a reason."""
    _, as_a = _as("treasury")
    wallet = halted_wallet(chain["wallet"], "top-up pending")
    act(as_a, WALLETS, "resume", [wallet], reason="topped up")
    assert not HotWallet.objects.get(pk=wallet.pk).halted


def test_posting_an_action_without_its_confirmation_moves_nothing(chain):
    """A bare action POST (what the changelist sends, or a forged request) only renders the confirmation page with
    the reason field; nothing moves and nothing is recorded."""
    from staff.models import AuditEntry

    _, as_a = _as("compliance officer")
    held = held_transfer()
    response = act(as_a, TRANSFERS, "reject", [held], confirm=False)
    assert response.status_code == 200
    page = response.content.decode()
    assert 'name="reason"' in page and str(held.pk) in page
    assert _status(held) == Transfer.Status.HELD and not AuditEntry.objects.exists()


@pytest.mark.parametrize("reason", ["", "   "])
def test_a_blank_reason_is_refused_next_to_the_field(chain, reason):
    """Confirming without a reason re-renders the page with the error beside the reason field; nothing moves."""
    from staff.models import AuditEntry

    _, as_a = _as("compliance officer")
    held = held_transfer()
    response = act(as_a, TRANSFERS, "reject", [held], reason=reason)
    assert response.status_code == 200
    assert "Give a reason" in response.content.decode()
    assert _status(held) == Transfer.Status.HELD and not AuditEntry.objects.exists()


def test_the_confirmation_page_says_what_will_happen_to_each_object(chain):
    """Before confirming, the page shows which transfers the release cannot apply to and which wait for a second
    person."""
    _, as_a = _as("compliance officer")
    held, unpaid = held_transfer(), transfer()
    page = act(as_a, TRANSFERS, "release", [held, unpaid], confirm=False).content.decode()
    assert "Only held transfers can be released" in page and "second person" in page


def test_audit_entries_are_append_only(chain):
    """Audit rows refuse updates and deletes through the ORM, and (on PostgreSQL) through raw SQL too."""
    from staff.models import AuditEntry

    _, as_a = _as("compliance officer")
    held = held_transfer()
    act(as_a, TRANSFERS, "reject", [held], reason="confirmed match")
    entry = AuditEntry.objects.get()
    with pytest.raises(TypeError):
        AuditEntry.objects.filter(pk=entry.pk).update(reason="edited")
    with pytest.raises(TypeError):
        entry.save()
    with pytest.raises(TypeError):
        entry.delete()
    for sql in ("UPDATE staff_auditentry SET reason = 'edited'", "DELETE FROM staff_auditentry"):
        with pytest.raises(Exception, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql)
    assert AuditEntry.objects.get().reason == "confirmed match"
