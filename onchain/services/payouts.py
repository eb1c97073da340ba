"""Payouts: what the settlement engine owes, requested once per reference by the caller (payments).

The engine around them: `batches.batches_build` groups queued payouts into signed batches (one nonce each),
`sending.batch_send` broadcasts the stored bytes, `tracking.chain_track` follows them to finality and reports
through the listener. docs/settlement.md has the invariants.
"""

import logging
from decimal import Decimal

from django.conf import settings
from django.utils.module_loading import import_string

from onchain import client
from onchain.errors import SettlementNotConfigured
from onchain.models import Payout, Token

log = logging.getLogger(__name__)


def listener():
    """The caller's callbacks: `payouts_final(references, tx_hash)` and `payouts_failed(references, reason)`,
    called inside the engine's transaction so both sides commit together."""
    return import_string(settings.ONCHAIN_PAYOUT_LISTENER)


def to_base_units(amount, decimals):
    """Decimal token amount → integer base units, exactly (refuses sub-base-unit fractions)."""
    scaled = Decimal(amount).scaleb(decimals)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} has more precision than {decimals} decimals")
    return int(scaled)


def settlement_token(symbol="KGST"):
    token = Token.objects.select_related("chain").filter(symbol=symbol).first()
    if token is None:
        raise SettlementNotConfigured(f"No {symbol} token is registered.")
    return token


def payout_request(*, reference, to_address, amount, symbol="KGST"):
    """Queue a payout of `amount` (token units, a Decimal) once per reference. Call inside the caller's
    transaction: the payout commits with the caller's state change; the batcher (beat, every
    SETTLEMENT_TRACK_MS) picks it up from the table, so there is no task to lose between a commit and the broker."""
    token = settlement_token(symbol)
    payout, created = Payout.objects.get_or_create(
        reference=reference,
        defaults={"token": token, "to_address": to_address, "amount_base_units": to_base_units(amount, token.decimals)},
    )
    if created:
        log.info("payout_queued reference=%s payout=%s amount_base_units=%s", reference, payout.id,
                 payout.amount_base_units)
    return payout


def wallet_balances(wallet, token=None):
    """(token units the wallet can pay from, gas balance in wei), read from the chain. With a batch contract
    the float is the contract's balance; without, the wallet's own."""
    w3 = client.web3()
    gas = w3.eth.get_balance(wallet.address)
    token = token or Token.objects.filter(chain=wallet.chain).first()
    held = None
    if token:
        holder = token.batch_contract if settings.SETTLEMENT_BATCHING and token.batch_contract else wallet.address
        held = client.erc20(token.address).functions.balanceOf(holder).call()
    return held, gas
