"""Outcomes and review (issue 9): every screening run is recorded with its hits; held transfers wait in the admin
review queue with the hits explained side by side; a compliance officer approves (a second officer confirms: the
payout is queued) or rejects (refunded), always with a reason; the screening results and decisions cannot be edited;
a new list version screens unsettled transfers again, without touching settling ones."""

import json
import threading
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.db import close_old_connections, connection, transaction
from django.test import Client

from onchain.models import Payout
from payments import pipeline, pipeline_refunds, pipeline_rescreen
from payments.models import JournalEntry, ReviewDecision, ScreeningResult, Transfer
from payments.sanctions.matching import Hit
from payments.sanctions.types import ListedName
from payments.services import balances, review, screening
from payments.services.quotes import quote_create
from payments.services.screening import HOLD, Outcome, ScreeningHit
from payments.services.transfers import transfer_create
from payments.tasks import rescreen_task
from staff.models import ApprovalRequest, AuditEntry
from tests.conftest import new_recipient, wait_for
from tests.helpers import force_status, staff_login
from tests.security.factories import act, staff_user

pytestmark = pytest.mark.django_db
S = Transfer.Status
QUEUE, TRANSFERS, APPROVALS = "/admin/payments/heldtransfer/", "/admin/payments/transfer/", "/admin/staff/approvalrequest/"
SAMPLE = "payments/data/sanctions_sample.json"


IVAN = ListedName(entry_id=17, version_id=3, source="ofac_sdn", source_id="36123", name="SANKTSIONOV, Ivan Petrovich",
                  is_alias=True, primary_name="SANCTIONOV, Ivan", kind="person", birth_dates=("1971-04-02",),
                  nationalities=("RU",))
DEAD_WALLET = ListedName(entry_id=18, version_id=3, source="ofac_sdn", source_id="40001",
                         name="0x000000000000000000000000000000000000dEaD", is_alias=False,
                         primary_name="Garantex Europe OU", kind="wallet")


@pytest.fixture
def funded(partner, pricing):
    """Make balance-funded transfers (funded at creation: no card, no Stripe) for the partner."""
    balances.balance_topup(partner=partner, currency="RUB", amount=Decimal("200000.00"), reference="bank-review")

    def make(recipient_name="Gulnara Usenova", wallet=None, sender_name="Aibek Usenov"):
        quote = quote_create(source_currency="RUB", source_amount=Decimal("15000.00"), partner=partner)
        transfer, _ = transfer_create(
            partner=partner, idempotency_key=str(quote.id), fingerprint="f", quote_id=quote.id,
            sender={"name": sender_name, "phone": "+79161234567", "email": "aibek@example.com"},
            recipient={"name": recipient_name, "phone": "+996555123456", "wallet_address": wallet or new_recipient()},
            funding={"method": "balance"})
        assert transfer.status == S.FUNDED
        return transfer

    return make


@pytest.fixture
def held(funded):
    """A funded transfer whose recipient is on the sample list, screened inline: held."""
    transfer = pipeline.transfer_advance(transfer_id=funded(recipient_name="Ivan Sanctionov").pk)
    assert transfer.status == S.HELD
    return transfer


@pytest.fixture
def listing(settings, tmp_path):
    """Publish a new version of the sample list with names or wallets added (or names taken off): what screening
    sees changes at once."""
    with open(SAMPLE, encoding="utf-8") as f:
        base = json.load(f)

    def publish(*, names=(), addresses=(), without=()):
        path = tmp_path / f"sample-{len(list(tmp_path.iterdir()))}.json"
        path.write_text(json.dumps({**base, "names": [n for n in base["names"] if n not in without] + list(names),
                                    "addresses": base["addresses"] + list(addresses)}), encoding="utf-8")
        settings.SANCTIONS_SAMPLE_FILE = str(path)
        screening._lists.cache_clear()

    yield publish
    screening._lists.cache_clear()


def _as(role):
    user = staff_user(role)
    return user, staff_login(Client(), user)


def _status(transfer):
    return Transfer.objects.get(pk=transfer.pk).status


def _explained(transfer):
    """A manual re-screening whose hits are explained (what the fuzzy matcher reports)."""
    outcome = Outcome(HOLD, "recipient name matches a sanctions list entry", hits=(
        ScreeningHit.of("recipient", transfer.recipient_name,
                        Hit(IVAN, 0.93, "name.fuzzy", "same surname in BGN/PCGN; patronymic missing")),
        ScreeningHit.of("recipient", transfer.recipient_wallet, Hit(DEAD_WALLET, 1.0, "wallet.exact",
                                                                    "the wallet is listed"))))
    return review.screening_result_record(transfer=transfer, outcome=outcome, trigger=review.MANUAL)


# Recording -------------------------------------------------------------------------------------------------------

def test_every_inline_screening_is_recorded_with_the_status_it_led_to(funded, listing, chain):
    """transfer_advance records one `inline` result per run, in the transaction that applied it: a clear transfer
    (settling), a listed name (held) and a listed wallet (rejected), each with the lists' fingerprint."""
    wallet = new_recipient()
    to_listed_wallet = funded(wallet=wallet)  # listed after the transfer was made
    listing(addresses=[wallet.lower()])
    clear = pipeline.transfer_advance(transfer_id=funded().pk)
    hold = pipeline.transfer_advance(transfer_id=funded(recipient_name="Ivan Sanctionov").pk)
    reject = pipeline.transfer_advance(transfer_id=to_listed_wallet.pk)
    rows = {r.transfer_id: r for r in ScreeningResult.objects.all()}
    assert len(rows) == 3
    assert [(rows[t.pk].decision, rows[t.pk].status_after, rows[t.pk].trigger) for t in (clear, hold, reject)] == [
        ("clear", "settling", "inline"), ("hold", "held", "inline"), ("reject", "rejected", "inline")]
    assert rows[hold.pk].reason.startswith("recipient name matches a sanctions list entry")
    assert len(rows[clear.pk].list_fingerprint) == 64 and rows[clear.pk].list_versions
    pipeline.transfer_advance(transfer_id=hold.pk)  # not funded any more: not screened, nothing recorded
    assert ScreeningResult.objects.count() == 3


def test_a_decision_whose_result_cannot_be_recorded_is_not_applied(funded, monkeypatch, chain):
    """The result is written in the decision's transaction: when it cannot be written (here a hit screening cannot
    explain), the hold is rolled back with it and the transfer stays funded for the next attempt."""
    transfer = funded(recipient_name="Ivan Sanctionov")
    monkeypatch.setattr(pipeline, "screening_check", lambda **_: Outcome(HOLD, "name matches", hits=(object(),)))
    with pytest.raises(AttributeError):
        pipeline.transfer_advance(transfer_id=transfer.pk)
    assert _status(transfer) == S.FUNDED and not ScreeningResult.objects.exists()


def test_a_hit_is_stored_with_what_explains_it(held):
    """Each hit keeps the party, the screened name, the listed name (alias and primary), score, rule, list, source
    id, entry and version, and the listed entry's birth dates and nationalities; a wallet hit names the recipient's
    wallet even when the hit does not say which party it is about."""
    result = _explained(held)
    person, wallet = result.hits
    assert person == {
        "party": "recipient", "screened_name": "Ivan Sanctionov", "listed_name": "SANKTSIONOV, Ivan Petrovich",
        "is_alias": True, "primary_name": "SANCTIONOV, Ivan", "kind": "person", "score": 0.93, "rule": "name.fuzzy",
        "explanation": "same surname in BGN/PCGN; patronymic missing", "source": "ofac_sdn", "source_id": "36123",
        "entry_id": 17, "version_id": 3, "birth_dates": ["1971-04-02"], "nationalities": ["RU"]}
    assert (wallet["party"], wallet["screened_name"]) == ("recipient", held.recipient_wallet)


# The queue -------------------------------------------------------------------------------------------------------

def test_a_held_transfer_waits_in_the_queue_with_its_hits_side_by_side(held, funded):
    """A compliance officer's queue lists held transfers only, oldest hold first, with how long each has waited, its
    parties and amount, and each hit of its latest screening beside the screened name: listed name, alias of which
    primary name, score, rule, list and source id."""
    _explained(held)
    later = pipeline.transfer_advance(transfer_id=funded(recipient_name="Иван Санкционов").pk)
    clear = funded()
    _, officer = _as("compliance officer")
    page = officer.get(QUEUE)
    assert page.status_code == 200
    html = page.content.decode()
    assert str(held.pk) in html and str(later.pk) in html and str(clear.pk) not in html
    assert html.index(str(held.pk)) < html.index(str(later.pk))
    for text in ("Ivan Sanctionov", "SANKTSIONOV, Ivan Petrovich", "alias of", "SANCTIONOV, Ivan", "0.93",
                 "name.fuzzy", "ofac_sdn", "36123", "born 1971-04-02", "wallet.exact", "15000.00 RUB",
                 "Aibek Usenov", held.recipient_wallet, "0 min", "Approve: release for payout"):
        assert text in html, text
    assert [t.pk for t in review.review_queue()] == [held.pk, later.pk]


@pytest.mark.parametrize("role", ["operator", "treasury", "auditor"])
def test_other_roles_see_the_queue_but_cannot_decide(held, role):
    """Everyone on staff may read the queue; approving or rejecting from it is a 403 for any role but compliance,
    and nothing moves or is recorded."""
    _, other = _as(role)
    assert other.get(QUEUE).status_code == 200
    for action in ("review_approve", "review_reject"):
        assert act(other, QUEUE, action, [held]).status_code == 403
    assert _status(held) == S.HELD
    assert not AuditEntry.objects.exists() and not ReviewDecision.objects.exists()


# Decisions -------------------------------------------------------------------------------------------------------

def test_approving_needs_a_second_officer_then_queues_the_payout(held, chain):
    """A's approval from the queue only asks (still held, no payout, the queue says a second officer is awaited);
    B's approval releases it: settling with one payout, a ReviewDecision naming both and A's reason, linked to the
    screening result it decided, and both steps in the audit trail."""
    (a, as_a), (b, as_b) = _as("compliance officer"), _as("compliance officer")
    result = _explained(held)
    assert act(as_a, QUEUE, "review_approve", [held], reason="other date of birth on the passport").status_code == 302
    assert _status(held) == S.HELD and not Payout.objects.exists() and not ReviewDecision.objects.exists()
    assert f"release asked by {a.username}" in as_b.get(QUEUE).content.decode()

    request = ApprovalRequest.objects.get(target_id=str(held.pk))
    assert act(as_b, APPROVALS, "approve", [request], reason="passport scan checked").status_code == 302
    assert _status(held) == S.SETTLING
    assert Payout.objects.filter(reference=str(held.pk)).count() == 1
    decision = ReviewDecision.objects.get(transfer=held)
    assert (decision.decision, decision.decided_by, decision.requested_by, decision.reason, decision.screening_result,
            decision.approval) == ("approved", b, a, "other date of birth on the passport", result, request)
    assert list(AuditEntry.objects.filter(target_id=str(held.pk)).order_by("id").values_list(
        "actor__username", "outcome", "reason")) == [(a.username, "requested", "other date of birth on the passport"),
                                                     (b.username, "approved", "passport scan checked")]
    assert not review.review_queue().exists()


def test_a_rescreening_after_the_request_makes_it_stale(held, chain):
    """The second officer approves the evidence the first one saw: a new screening result in between (a new list
    version) closes the request as stale and nothing is paid."""
    (_, as_a), (_, as_b) = _as("compliance officer"), _as("compliance officer")
    act(as_a, QUEUE, "review_approve", [held], reason="false positive")
    pipeline_rescreen.transfers_rescreen(reason="sample:2")
    request = ApprovalRequest.objects.get(target_id=str(held.pk))
    act(as_b, APPROVALS, "approve", [request], reason="ok")
    assert ApprovalRequest.objects.get(pk=request.pk).status == "stale"
    assert _status(held) == S.HELD and not Payout.objects.exists() and not ReviewDecision.objects.exists()


def test_rejecting_refunds_the_sender(held, partner):
    """One officer's rejection with a reason: rejected, then refunded in full (to the partner's balance, this
    transfer's rail), with a ReviewDecision and an audit entry carrying the reason."""
    officer, as_officer = _as("compliance officer")
    before = balances.balance_get(partner=partner, currency="RUB")
    assert act(as_officer, QUEUE, "review_reject", [held], reason="confirmed match: same birth date").status_code == 302
    assert _status(held) == S.REJECTED
    assert pipeline_refunds.transfer_refund(transfer_id=held.pk).status == S.REFUNDED
    assert balances.balance_get(partner=partner, currency="RUB") == before + 1_500_000
    assert JournalEntry.objects.filter(transfer=held, kind="refund").count() == 1
    decision = ReviewDecision.objects.get(transfer=held)
    assert (decision.decision, decision.decided_by, decision.requested_by, decision.reason) == (
        "rejected", officer, None, "confirmed match: same birth date")
    entry = AuditEntry.objects.get(target_id=str(held.pk))
    assert (entry.actor, entry.outcome, entry.reason) == (officer, "done", "confirmed match: same birth date")


@pytest.mark.parametrize("action", ["review_approve", "review_reject"])
def test_a_decision_without_a_reason_is_refused(held, action):
    """A blank reason re-renders the confirmation page with the error beside the field: nothing moves, nothing is
    requested or recorded."""
    _, officer = _as("compliance officer")
    page = act(officer, QUEUE, action, [held], reason="   ")
    assert page.status_code == 200
    assert "Give a reason" in page.content.decode()
    assert _status(held) == S.HELD
    assert not AuditEntry.objects.exists() and not ApprovalRequest.objects.exists()
    assert not ReviewDecision.objects.exists()


def test_the_service_refuses_a_blank_reason_too(held):
    """Whatever the admin sends, the staff service refuses a decision without a reason."""
    from payments.guarded import REJECT
    from staff.services import ReasonRequired, action_perform

    with pytest.raises(ReasonRequired):
        action_perform(action=REJECT, actor=staff_user("compliance officer"), ids=[held.pk], reason="")
    assert _status(held) == S.HELD


def test_an_officer_screens_a_held_transfer_again(held, listing):
    """"Screen again now" records a `manual` result against the lists in force (here the name was delisted: clear),
    the transfer stays held for a decision, and the action is in the audit trail with its reason."""
    officer, as_officer = _as("compliance officer")
    listing(without=["Ivan Sanctionov", "Иван Санкционов"])  # both scripts: either would still match
    assert act(as_officer, QUEUE, "review_rescreen", [held], reason="list updated this morning").status_code == 302
    result = review.latest_result(held)
    assert (result.trigger, result.decision, result.status_after) == ("manual", "clear", "held")
    assert _status(held) == S.HELD
    entry = AuditEntry.objects.get(target_id=str(held.pk))
    assert (entry.actor, entry.action, entry.outcome, entry.reason) == (
        officer, "payments.rescreen_transfer", "done", "list updated this morning")


# The trail cannot be edited ---------------------------------------------------------------------------------------

def test_results_and_decisions_cannot_be_edited_or_deleted_in_admin(held):
    """Even a superuser cannot change or delete a screening result or a review decision in admin: the change form
    changes nothing, delete is a 403, and neither can be added by hand."""
    officer, as_officer = _as("compliance officer")
    act(as_officer, QUEUE, "review_reject", [held], reason="confirmed match")
    result, decision = ScreeningResult.objects.get(), ReviewDecision.objects.get()
    root = staff_login(Client(), get_user_model().objects.create_superuser("root", "root@example.com",
                                                                          "a-long-password-123"))
    for url, obj in (("/admin/payments/screeningresult/", result), ("/admin/payments/reviewdecision/", decision)):
        assert root.get(f"{url}{obj.pk}/change/").status_code == 200  # readable
        root.post(f"{url}{obj.pk}/change/", {"reason": "nothing to see", "decision": "clear"})
        assert root.post(f"{url}{obj.pk}/delete/", {"post": "yes"}).status_code == 403
        assert root.get(f"{url}add/").status_code == 403
    assert ScreeningResult.objects.get().reason == result.reason
    assert result.reason.startswith("recipient name matches a sanctions list entry")
    assert ReviewDecision.objects.get().reason == "confirmed match"


def test_results_and_decisions_are_append_only_in_the_model(held):
    """Saving a stored row again, deleting it, or updating or deleting through a queryset raises; the rows stay."""
    _, as_officer = _as("compliance officer")
    act(as_officer, QUEUE, "review_reject", [held], reason="confirmed match")
    for model in (ScreeningResult, ReviewDecision):
        row = model.objects.get()
        row.reason = "rewritten"
        with pytest.raises(TypeError, match="append-only"):
            row.save()
        with pytest.raises(TypeError, match="append-only"):
            row.delete()
        with pytest.raises(TypeError, match="append-only"):
            model.objects.filter(pk=row.pk).update(reason="rewritten")
        with pytest.raises(TypeError, match="append-only"):
            model.objects.all().delete()
        assert model.objects.get().reason != "rewritten"


# Re-screening ------------------------------------------------------------------------------------------------------

def test_a_newly_listed_name_holds_a_funded_transfer_and_settling_ones_are_left_alone(funded, held, listing, chain):
    """A new list version adds "Asel Newlisted": re-screening holds the funded transfer to her (a `rescreen:` result,
    a new fingerprint), gives the held transfer a new result (it stays held), leaves a clear funded transfer funded
    (re-screening never pays out), and does not touch a settling transfer to her or an unfunded one."""
    newly = funded(recipient_name="Asel Newlisted")
    other = funded()
    settling = pipeline.transfer_advance(transfer_id=funded(recipient_name="Asel Newlisted").pk)
    assert settling.status == S.SETTLING
    unfunded = funded(recipient_name="Asel Newlisted")
    force_status(Transfer.objects.filter(pk=unfunded.pk), S.AWAITING_FUNDING)  # screened when it is funded
    inline = ScreeningResult.objects.get(transfer=held)
    listing(names=["Asel Newlisted"])

    counts = pipeline_rescreen.transfers_rescreen(reason="sample:2")
    assert counts == {"held": 2, "funded": 1}
    assert (_status(newly), _status(other), _status(held), _status(settling), _status(unfunded)) == (
        S.HELD, S.FUNDED, S.HELD, S.SETTLING, S.AWAITING_FUNDING)
    result = ScreeningResult.objects.get(transfer=newly)
    assert (result.trigger, result.decision, result.status_after) == ("rescreen:sample:2", "hold", "held")
    assert "recipient name matches" in result.reason and result.list_fingerprint != inline.list_fingerprint
    assert ScreeningResult.objects.filter(transfer=held).count() == 2
    assert ScreeningResult.objects.filter(transfer=held).latest("run_at").status_after == "held"
    assert ScreeningResult.objects.filter(transfer=settling).count() == 1  # its inline result only
    assert not ScreeningResult.objects.filter(transfer=unfunded).exists()
    assert not Payout.objects.filter(reference=str(other.pk)).exists()
    assert [t.pk for t in review.review_queue()] == [held.pk, newly.pk]

    assert pipeline_rescreen.transfers_rescreen(reason="sample:2") == {}  # this version already screened them
    assert ScreeningResult.objects.filter(trigger="rescreen:sample:2").count() == 3


def test_a_newly_listed_wallet_rejects_a_funded_transfer_and_it_is_refunded(funded, listing, partner):
    """A wallet added to the list rejects the funded transfer paying it; its refund (to the balance here) follows."""
    wallet = new_recipient()
    transfer = funded(wallet=wallet)
    before = balances.balance_get(partner=partner, currency="RUB")
    listing(addresses=[wallet.lower()])
    assert pipeline_rescreen.transfers_rescreen(reason="sample:3") == {"rejected": 1}
    assert _status(transfer) == S.REJECTED
    assert ScreeningResult.objects.get(transfer=transfer).decision == "reject"
    assert pipeline_refunds.transfer_refund(transfer_id=transfer.pk).status == S.REFUNDED
    assert balances.balance_get(partner=partner, currency="RUB") == before + 1_500_000


def test_the_rescreen_task_runs_the_service(funded, listing):
    """rescreen_task (what the list loader queues on commit) takes the list version and re-screens with it."""
    transfer = funded(recipient_name="Asel Newlisted")
    listing(names=["Asel Newlisted"])
    assert rescreen_task.name == "payments.transfers_rescreen"
    rescreen_task.apply(args=["sample:4"]).get()
    assert _status(transfer) == S.HELD
    assert ScreeningResult.objects.get(transfer=transfer).trigger == "rescreen:sample:4"


@pytest.mark.django_db(transaction=True)
def test_a_transfer_that_moves_to_settling_meanwhile_is_skipped(funded, listing, chain):
    """Race with the pipeline: while the advance step holds the transfer's row lock (screened clear before the new
    listing) and queues its payout, the re-screening waits on the lock; once the step commits, the re-screening finds
    it settling and skips it: no hold, no result, one payout."""
    transfer = funded(recipient_name="Asel Newlisted")
    listing(names=["Asel Newlisted"])
    locked, release, counts = threading.Event(), threading.Event(), {}

    def advance_step():
        try:
            with transaction.atomic():
                row = Transfer.objects.select_for_update(of=("self",)).select_related("quote").get(pk=transfer.pk)
                locked.set()
                release.wait(30)
                pipeline._settle(row)  # what transfer_advance does for a clear transfer
        finally:
            close_old_connections()
            connection.close()

    def rescreen():
        try:
            counts.update(pipeline_rescreen.transfers_rescreen(reason="sample:5"))
        finally:
            connection.close()

    step, again = threading.Thread(target=advance_step), threading.Thread(target=rescreen)
    step.start()
    assert locked.wait(30)
    again.start()

    def waiting_on_a_lock():
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                           "AND wait_event_type = 'Lock'")
            return cursor.fetchone()[0] > 0

    wait_for(waiting_on_a_lock, timeout=30, what="the re-screening to wait on the row lock")
    release.set()
    step.join(30)
    again.join(30)
    assert counts == {"skipped": 1}
    assert _status(transfer) == S.SETTLING
    assert not ScreeningResult.objects.filter(transfer=transfer).exists()
    assert Payout.objects.filter(reference=str(transfer.pk)).count() == 1
