"""One way to change a status: transitions on instances, compare-and-set queryset methods in bulk; never a
direct assignment and never a plain `.update(status=...)`, for every model that has a status."""

import pytest

from onchain.models import Batch, ChainTransaction, Payout
from payments.models import Transfer
from tests.onchain.helpers import queue

STATUS_MODELS = [Transfer, Payout, Batch, ChainTransaction]


@pytest.mark.parametrize("model", STATUS_MODELS, ids=lambda m: m.__name__)
def test_status_cannot_be_assigned_directly(model):
    """The FSM field is protected: `obj.status = ...` raises instead of skipping the transition's guard."""
    obj = model()
    with pytest.raises(AttributeError, match="Direct status modification"):
        obj.status = "completed"


@pytest.mark.parametrize("model", STATUS_MODELS, ids=lambda m: m.__name__)
def test_bulk_update_of_status_is_refused(model):
    """`.update(status=...)` is refused before any SQL runs; other columns still update in bulk."""
    with pytest.raises(TypeError, match="changes only through a transition"):
        model.objects.filter(pk__in=[]).update(status="completed")


@pytest.mark.django_db
def test_payout_bulk_transitions_move_only_rows_in_their_source_status(chain):
    """mark_batched moves queued payouts only; mark_confirmed batched ones only; each returns the count moved."""
    first, second = queue("cas-1"), queue("cas-2")
    Payout.objects.filter(pk=second.pk).mark_failed("refused")
    assert Payout.objects.filter(pk__in=[first.pk, second.pk]).mark_confirmed() == 0  # none batched yet
    moved = Payout.objects.filter(pk__in=[first.pk, second.pk]).mark_batched(None)
    assert moved == 1
    assert dict(Payout.objects.values_list("reference", "status")) == {"cas-1": "batched", "cas-2": "failed"}
    assert Payout.objects.all().mark_confirmed() == 1
    assert Payout.objects.all().mark_failed("late") == 0  # confirmed and failed are final
    assert dict(Payout.objects.values_list("reference", "status")) == {"cas-1": "confirmed", "cas-2": "failed"}
