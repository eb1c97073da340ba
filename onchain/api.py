"""The one door into onchain: everything another app may use of settlement, and nothing else.

payments imports onchain only through this module (plus `onchain.fields` for field types and `onchain.errors`);
onchain never imports payments. Both rules are import-linter contracts (pyproject.toml), checked by CI.

- Ask:     `payout_request` queues a payout once per caller reference, inside the caller's transaction; `symbol`
           (KGST, USDKG) names the token, paid on the chain it is registered on (`chain_id` picks one of several);
           `payouts_request` queues many at once (one read, one insert).
- Hear:    implement `PayoutListener` and register it at start-up (`payout_listener_register`); the engine
           reports final and failed payouts through it, inside its own transaction.
- Read:    `payout_settlement(s)`, `payout_eta` (how long until final), `payout_is_dead`, `float_covers`,
           `wallet_balances`, `treasury_position`; `settlement_overview` for the operations dashboard (admin
           home), `payout_rows` for admin's links.
- Tell:    `operator_alert_raise` puts a condition in front of operators (admin → Operator alerts).
- Stop:    `payouts_halt(key=, reason=)` stops signing new batches until `payouts_resume(key=)` (batches already
           signed go on to finality); `payouts_halted` lists the reasons. Each caller owns its key.
- Measure: `treasury_position` reads what the chain holds of the float at one block, and what our batches not yet
           final had already moved by then (for reconciliation against the caller's books).
- Check:   `recipient_check` refuses an address no payout may go to (RecipientRefused, translated reason), asking the
           node of the paid token's chain (`symbol`) for its code (ChainUnavailable when it does not answer); call it
           before storing what pays it.
- Dev:     `devchain_bootstrap` deploys a dev token (KGST, or USDKG with `symbol=`, `chain_id=`) on a local chain
           (make run, tests, benchmarks).
"""

from onchain.listener import PayoutListener, payout_listener_override, payout_listener_register
from onchain.selectors import (
    PayoutEta,
    Settlement,
    payout_eta,
    payout_is_dead,
    payout_rows,
    payout_settlement,
    payout_settlements,
)
from onchain.selectors_dashboard import settlement_overview
from onchain.services.alerts import alert_raise
from onchain.services.devchain import devchain_bootstrap
from onchain.services.halts import payouts_halt, payouts_halted, payouts_resume
from onchain.services.payouts import payout_request, payouts_request
from onchain.services.recipients import recipient_check
from onchain.services.treasury import TreasuryPosition, float_covers, treasury_position, wallet_balances


def operator_alert_raise(*, kind, message):
    """An operator alert that concerns no wallet or token (e.g. `funding`); one open alert per (kind, message)."""
    return alert_raise(kind=kind, message=message)


__all__ = [
    "PayoutEta",
    "PayoutListener",
    "Settlement",
    "TreasuryPosition",
    "devchain_bootstrap",
    "float_covers",
    "operator_alert_raise",
    "payout_eta",
    "payout_is_dead",
    "payout_listener_override",
    "payout_listener_register",
    "payout_request",
    "payouts_request",
    "payout_rows",
    "payout_settlement",
    "payout_settlements",
    "payouts_halt",
    "payouts_halted",
    "payouts_resume",
    "recipient_check",
    "settlement_overview",
    "treasury_position",
    "wallet_balances",
]
