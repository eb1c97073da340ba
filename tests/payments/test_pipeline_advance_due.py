"""Screening in batches (payments/pipeline.py `transfers_advance_due`, payments/services/screening.py
`screening_check_many`): one task screens every funded transfer due, each table read once per batch; each transfer is
still moved once, by its own guarded transition, with the decision screening_check gives it alone. Funding kicks that
task once (single flight), not once per transfer; the sweeper kicks it for a transfer whose kick or task was lost."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from common import ops_state
from onchain.models import Payout
from payments import pipeline
from payments.models import ScreeningResult, Transfer
from payments.services import balances, fraud, us_remittance
from payments.services.quotes import quote_create
from payments.services.screening import CLEAR, HOLD, REJECT, screening_check, screening_check_many
from payments.services.transfers import transfer_create
from tests.conftest import new_recipient

pytestmark = pytest.mark.django_db
S = Transfer.Status
TRAVEL = {"originator": {"address": "Moscow, Tverskaya 1, RU", "date_of_birth": "1990-05-17"},
          "beneficiary": {"country": "kg"}}


@pytest.fixture
def funded(partner, pricing):
    """Balance-funded transfers (funded at creation: no card, no Stripe), each its own sender unless told."""
    balances.balance_topup(partner=partner, currency="RUB", amount=Decimal("5000000.00"), reference="bank-batch")
    balances.balance_topup(partner=partner, currency="USD", amount=Decimal("50000.00"), reference="bank-batch-usd")
    made = []

    def make(*, recipient_name="Gulnara Usenova", sender_name="Aibek Usenov", wallet=None, amount="15000.00",
             currency="RUB", email=None, travel_rule=None):
        quote = quote_create(source_currency=currency, source_amount=Decimal(amount), partner=partner)
        transfer, _ = transfer_create(
            partner=partner, idempotency_key=str(quote.id), fingerprint="f", quote_id=quote.id,
            sender={"name": sender_name, "phone": f"+7916123{len(made):04d}",
                    "email": email or f"sender{len(made)}@example.com"},
            recipient={"name": recipient_name, "phone": "+996555123456", "wallet_address": wallet or new_recipient()},
            funding={"method": "balance"}, travel_rule=travel_rule)
        assert transfer.status == S.FUNDED
        made.append(transfer)
        return Transfer.objects.select_related("quote").get(pk=transfer.pk)

    return make


def mixed(funded):
    """One transfer per screening path: clear, a listed name, a listed travel-rule originator, a denylisted wallet, a
    frozen sender, a frozen wallet, over the sender's tier, a mixed-script name, one sender over a day's limit with two
transfers. (Creation refuses a denylisted or
    frozen wallet and a frozen sender: those became so after the transfer was made.)"""
    transfers = [
        funded(),
        funded(recipient_name="Ivan Sanctionov"),
        funded(amount="1000.00", currency="USD",
               travel_rule={**TRAVEL, "originator": {**TRAVEL["originator"], "name": "Ivan Sanctionov"}}),
        funded(),
        funded(email="frozen@example.com"),
        funded(),
        funded(amount="80000.00"),
        funded(recipient_name="Gulnara Усенова"),
        funded(),
        funded(amount="60000.00", email="twice@example.com"),  # one sender twice: each counts the other, not itself
        funded(amount="60000.00", email="twice@example.com"),
    ]
    Transfer.objects.filter(pk=transfers[3].pk).update(recipient_wallet="0x000000000000000000000000000000000000dEaD")
    fraud.identities_freeze(pairs=[("email", "frozen@example.com"), ("wallet", transfers[5].recipient_wallet)],
                            reason="dispute dp_1", source="dp_1")
    return [Transfer.objects.select_related("quote").get(pk=t.pk) for t in transfers]


def test_a_batch_is_screened_exactly_as_each_transfer_alone(funded):
    """screening_check_many gives each transfer the Outcome screening_check gives it alone: decision, reason, hits."""
    transfers = mixed(funded)
    alone = [screening_check(transfer=t) for t in transfers]
    together = screening_check_many(transfers=transfers)
    assert together == alone
    assert [o.decision for o in together] == [CLEAR, HOLD, HOLD, REJECT, REJECT, REJECT, HOLD, HOLD, CLEAR, HOLD, HOLD]
    assert together[6].reason == "ID document required above 75,000.00 RUB per transfer (sender is at tier 0)"
    assert together[9].reason == together[10].reason == ("ID document required above 100,000.00 RUB per day (sender "
                                                         "is at tier 0)")


def test_the_task_advances_every_funded_transfer_due_once(funded, chain):
    """transfers_advance_due moves each funded transfer due once, by its decision (in batches: here 4 a transaction),
    with one payout per clear one and one `inline` result each; a transfer whose payout release time is ahead is
    left funded; a second run finds nothing to do."""
    transfers = mixed(funded)
    later = funded()
    Transfer.objects.filter(pk=later.pk).update(release_after=timezone.now() + timedelta(hours=1))
    assert pipeline.transfers_advance_due(batch=4) == len(transfers)
    statuses = dict(Transfer.objects.values_list("pk", "status"))
    assert [statuses[t.pk] for t in transfers] == [S.SETTLING, S.HELD, S.HELD, S.REJECTED, S.REJECTED, S.REJECTED,
                                                   S.HELD, S.HELD, S.SETTLING, S.HELD, S.HELD]
    assert statuses[later.pk] == S.FUNDED
    assert sorted(Payout.objects.values_list("reference", flat=True)) == sorted(
        [str(transfers[0].pk), str(transfers[8].pk)])
    assert Transfer.objects.get(pk=transfers[0].pk).payout_reference == str(transfers[0].pk)
    results = list(ScreeningResult.objects.values_list("transfer_id", "trigger", "status_after"))
    assert sorted(results) == sorted((t.pk, "inline", statuses[t.pk]) for t in transfers)
    assert pipeline.transfers_advance_due(batch=4) == 0
    assert ScreeningResult.objects.count() == len(transfers) and Payout.objects.count() == 2


def test_one_transfer_that_cannot_be_paid_does_not_hold_up_its_batch(funded, chain, monkeypatch, settings):
    """A batch that fails is done again one transfer per transaction: the others are advanced, the failing one stays
    funded; it is left out of batches for SWEEP_RESEND_SECONDS (a later run does not fail its batch again), then
    taken again."""
    failing = f"{settings.CELERY_TASK_DEFAULT_QUEUE}:ops:failing:advance"
    ops_state.client().delete(failing)
    transfers = [funded() for _ in range(3)]
    stuck = transfers[1].pk
    monkeypatch.setattr(us_remittance, "cancel_window_open", lambda transfer: transfer.pk == stuck)
    pipeline.transfers_advance_due(batch=10)
    statuses = dict(Transfer.objects.values_list("pk", "status"))
    assert [statuses[t.pk] for t in transfers] == [S.SETTLING, S.FUNDED, S.SETTLING]
    assert not ScreeningResult.objects.filter(transfer_id=stuck).exists()
    assert ops_state.failing("advance") == {str(stuck)}
    monkeypatch.setattr(us_remittance, "cancel_window_open", lambda transfer: False)
    assert pipeline.transfers_advance_due(batch=10) == 0  # remembered as failing: not taken yet
    ops_state.client().delete(failing)  # its window ends
    assert pipeline.transfers_advance_due(batch=10) == 1
    assert Transfer.objects.get(pk=stuck).status == S.SETTLING


def test_funding_kicks_one_task_however_many_transfers(settings):
    """Single flight: while a screening task is pending, fundings do not enqueue another; once it starts (and clears
    the mark), the next funding does."""
    ops_state.pending_clear("advance")
    assert ops_state.pending_claim("advance", 5) is True
    assert ops_state.pending_claim("advance", 5) is False
    assert ops_state.pending_claim("advance", 5) is False
    ops_state.pending_clear("advance")
    assert ops_state.pending_claim("advance", 5) is True
    ops_state.pending_clear("advance")


def test_the_sweeper_kicks_screening_for_a_transfer_whose_task_was_lost(funded, chain, monkeypatch):
    """A funded transfer whose kick (or task) was lost: the sweeper kicks the screening task once (not a task per
    row), and that task advances it. A transfer funded just now is left to its own kick."""
    kicks = []
    monkeypatch.setattr(pipeline, "advance_kick", lambda: kicks.append(1))
    fresh = funded()
    pipeline.transfers_sweep()
    assert kicks == []
    lost = [funded(), funded()]
    Transfer.objects.filter(pk__in=[t.pk for t in lost]).update(updated_at=timezone.now() - timedelta(minutes=1))
    pipeline.transfers_sweep()
    assert kicks == [1]
    pipeline.transfers_advance_due()
    assert set(Transfer.objects.values_list("status", flat=True)) == {S.SETTLING}
    assert Payout.objects.filter(reference__in=[str(t.pk) for t in [fresh, *lost]]).count() == 3
