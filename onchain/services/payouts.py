"""Payouts: what the settlement engine owes, requested once per reference by the caller (payments).

The engine around them: `batches.batches_build` groups queued payouts into signed batches (one nonce each),
`sending.batch_send` broadcasts the stored bytes, `tracking.chain_track` follows them to finality and reports
through the registered listener (onchain.listener). docs/settlement.md has the invariants.
"""

import logging

from common.money import to_units
from onchain.errors import SettlementNotConfigured
from onchain.models import Payout, Token
from onchain.triggers import build_soon

log = logging.getLogger(__name__)


def settlement_token(symbol="KGST", chain_id=None):
    """The token paid for `symbol`; `chain_id` (an EVM chain id) picks among chains where it is issued on several
    (USDKG: Ethereum, later Tron), else the first registered."""
    tokens = Token.objects.select_related("chain").filter(symbol=symbol)
    if chain_id is not None:
        tokens = tokens.filter(chain__chain_id=chain_id)
    token = tokens.order_by("id").first()
    if token is None:
        raise SettlementNotConfigured(f"No {symbol} token is registered" + (f" on chain {chain_id}." if chain_id else "."))
    return token


def payout_request(*, reference, to_address, amount, symbol="KGST", chain_id=None):
    """Queue a payout of `amount` (token units, a Decimal) once per reference. Call inside the caller's
    transaction: the payout commits with the caller's state change, and a build is triggered on commit
    (onchain.triggers: one pending build task per token, however many payouts). Beat's pass (every
    SETTLEMENT_TRACK_MS) picks up from the table whatever a lost trigger left, so no payout depends on a task."""
    token = settlement_token(symbol, chain_id)
    payout, created = Payout.objects.get_or_create(
        reference=reference,
        defaults={"token": token, "to_address": to_address, "amount_base_units": to_units(amount, token.decimals)},
    )
    if created:
        log.info("payout_queued reference=%s payout=%s amount_base_units=%s", reference, payout.id,
                 payout.amount_base_units)
        build_soon(token.pk)
    return payout
