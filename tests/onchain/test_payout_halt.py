"""Payout halts (onchain.api.payouts_halt / payouts_resume): while one is set no new batch is signed, batches signed
before it still go to finality, and each halt is cleared only by its own key."""

import pytest

from onchain import api as onchain_api
from onchain.models import Batch, Payout, PayoutHalt
from tests.onchain.helpers import all_final, build, queue, recording_listener, send, track_until

pytestmark = pytest.mark.django_db


def test_a_halt_stops_new_batches_and_lets_signed_ones_finish(chain):
    """A batch signed before the halt is sent and made final (its payer is told); a payout queued meanwhile waits
    in the queue, unsigned, until the halt is lifted."""
    token = chain["token"]
    with recording_listener() as heard:
        queue("halt-before")
        (signed,) = build(token)
        onchain_api.payouts_halt(key="test", reason="treasury difference")
        waiting = queue("halt-during")
        assert build(token) == []
        send([signed])
        track_until(chain["chain"], lambda: Batch.objects.get(pk=signed.pk).status == Batch.Status.FINAL)
        assert [r for r, _ in heard.final] == ["halt-before"]
        assert Payout.objects.get(pk=waiting.pk).status == Payout.Status.QUEUED
        assert onchain_api.payouts_halted() == ["treasury difference"]

        assert onchain_api.payouts_resume(key="test") is True
        (batch,) = build(token)
        assert Payout.objects.get(pk=waiting.pk).batch_id == batch.pk
        send([batch])
        all_final(chain["chain"])
        assert sorted(r for r, _ in heard.final) == ["halt-before", "halt-during"]


def test_each_halt_is_cleared_only_by_its_own_key(chain):
    """Two owners halt; one resumes: payouts stay halted for the other's reason. Halting twice under one key is one
    halt."""
    onchain_api.payouts_halt(key="a", reason="first")
    onchain_api.payouts_halt(key="a", reason="first again")
    onchain_api.payouts_halt(key="b", reason="second")
    assert PayoutHalt.objects.count() == 2
    assert onchain_api.payouts_resume(key="a") is True
    assert onchain_api.payouts_resume(key="a") is False
    queue("halt-other-key")
    assert build(chain["token"]) == []
    assert onchain_api.payouts_halted() == ["second"]
    onchain_api.payouts_resume(key="b")
    assert len(build(chain["token"])) == 1


def test_a_halt_set_while_a_pass_runs_stops_it_before_signing(chain, monkeypatch):
    """The halt is checked again under the wallet's lock, just before a nonce is claimed: a pass that began before
    the halt signs nothing after it."""
    from onchain.services import batches

    queue("halt-race")
    real = batches.fee_quote

    def fee_quote_then_halt(*args, **kwargs):  # the pass has begun (fees are read before any lock)
        onchain_api.payouts_halt(key="race", reason="set mid-pass")
        return real(*args, **kwargs)

    monkeypatch.setattr(batches, "fee_quote", fee_quote_then_halt)
    assert build(chain["token"]) == []
    assert not Batch.objects.exists()
