"""How onchain reports back to whoever asked for payouts (payments): a declared contract, registered at start-up.

The engine calls the listener inside its own database transaction, so the payouts' new state and the caller's
commit together or not at all. References are the caller's own ids, given to `payout_request`. A listener may also
have `payouts_final_many(*, finals)` (finals: [(references, tx_hash)], one pair per batch, the batches of every
block a tracking pass found final, made final in one transaction): the tracker then calls it once per pass instead of
`payouts_final` once per batch.
"""

import contextlib
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from onchain.errors import SettlementNotConfigured


@runtime_checkable
class PayoutListener(Protocol):
    def payouts_final(self, *, references: Sequence[str], tx_hash: str) -> None:
        """These payouts are final on chain (paid once, in the transaction `tx_hash`)."""

    def payouts_failed(self, *, references: Sequence[str], reason: str) -> None:
        """These payouts failed for good: nothing of them can still be mined."""


_registered: list[PayoutListener] = []


def payout_listener_register(listener: PayoutListener) -> None:
    """Called once from the caller's AppConfig.ready(); a second registration replaces the first."""
    if not isinstance(listener, PayoutListener):
        raise TypeError(f"{listener!r} does not implement onchain's PayoutListener")
    _registered[:] = [listener]


def payout_listener() -> PayoutListener:
    if not _registered:
        raise SettlementNotConfigured("No payout listener is registered: payouts cannot be reported.")
    return _registered[-1]


@contextlib.contextmanager
def payout_listener_override(listener: PayoutListener):
    """Tests: report to `listener` inside the block, then to the registered one again."""
    if not isinstance(listener, PayoutListener):
        raise TypeError(f"{listener!r} does not implement onchain's PayoutListener")
    _registered.append(listener)
    try:
        yield listener
    finally:
        _registered.remove(listener)
