"""One settlement driver per chain protocol: what the periodic passes (onchain.tasks) run for a chain or token.

Each chain runs on its own connection (onchain.client.web3(chain)), wallets, nonces, fee policy, finality rule,
float and reconciliation; a driver is the seam where a chain that is not EVM would plug in its own way of signing,
sending and following transactions (docs/settlement.md "Tron (not built)"). Only EVM is built.
"""

from typing import Protocol

from onchain.models import Chain
from onchain.services import batches, reconcile, tracking, treasury


class SettlementDriver(Protocol):
    def build(self, *, token_id, on_built=None) -> list:
        """Sign batches for the token's queued payouts (committed; `on_built(batch)` as each commits, to send it)."""

    def track(self, *, chain_id) -> int:
        """One pass over the chain's open batches; returns how many became final."""

    def reconcile(self, *, token_id) -> tuple:
        """Check the next range of final blocks against confirmed payouts."""

    def treasury_check(self, *, token_id):
        """Measure float and gas, alert below the floors."""


class EvmDriver:
    def build(self, *, token_id, on_built=None):
        return batches.batches_build(token_id=token_id, on_built=on_built)

    def track(self, *, chain_id):
        return tracking.chain_track(chain_id=chain_id)

    def reconcile(self, *, token_id):
        return reconcile.reconcile(token_id=token_id)

    def treasury_check(self, *, token_id):
        return treasury.treasury_check(token_id=token_id)


DRIVERS = {Chain.Protocol.EVM: EvmDriver()}


def driver_for(protocol):
    return DRIVERS[protocol]
