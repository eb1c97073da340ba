"""Shared pieces of the settlement tests: a recording listener (what onchain reports), queueing, driving."""

import contextlib
from decimal import Decimal

from onchain.listener import payout_listener_override
from onchain.models import Batch, Payout
from onchain.services import batches, payouts, tracking
from tests.conftest import new_recipient, wait_for


class RecordingListener:
    """Stands in for payments: records what onchain reports through its one narrow interface."""

    final, failed = [], []

    @classmethod
    def payouts_final(cls, *, references, tx_hash):
        cls.final.extend((r, tx_hash) for r in references)

    @classmethod
    def payouts_failed(cls, *, references, reason):
        cls.failed.extend((r, reason) for r in references)

    @classmethod
    def reset(cls):
        cls.final, cls.failed = [], []


@contextlib.contextmanager
def recording_listener():
    """Onchain reports to a RecordingListener (emptied) instead of payments, in this process, inside the block."""
    RecordingListener.reset()
    with payout_listener_override(RecordingListener):
        yield RecordingListener


def queue(reference, amount="12.34", to=None):
    return payouts.payout_request(reference=reference, to_address=to or new_recipient(), amount=Decimal(amount))


def build(token):
    return batches.batches_build(token_id=token.pk, force=True)


def send(built):
    from onchain.services.sending import batch_send

    for batch in built:
        batch_send(batch_id=batch.pk)


def track_until(chain, predicate, timeout=30, what="settlement"):
    def done():
        tracking.chain_track(chain_id=chain.pk)
        return predicate()
    wait_for(done, timeout=timeout, interval=0.3, what=what)


def all_final(chain, timeout=30):
    track_until(chain, lambda: not Batch.objects.exclude(status__in=[Batch.Status.FINAL, Batch.Status.REVERTED]).exists()
                and not Payout.objects.filter(status=Payout.Status.QUEUED).exists(), timeout=timeout,
                what="every batch to be final")
