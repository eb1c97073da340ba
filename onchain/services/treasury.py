"""Treasury safety: float and gas balances measured into a snapshot, low-balance alerts, and the float check
that refuses quotes the float cannot cover (against the snapshot, so quoting never waits on the chain)."""

import logging
from dataclasses import dataclass
from decimal import Decimal
from functools import cache

from django.conf import settings
from django.db import connection
from django.db.models import Sum
from django.utils import timezone
from web3.exceptions import TransactionNotFound

from common.money import to_units
from onchain import client
from onchain.models import Batch, HotWallet, OperatorAlert, Payout, Token, TreasurySnapshot
from onchain.services.alerts import alert_raise

log = logging.getLogger(__name__)


def treasury_check(*, token_id):
    """Measure the token float and every wallet's gas; alert below the configured thresholds."""
    token = Token.objects.select_related("chain").get(pk=token_id)
    wallets = list(HotWallet.objects.filter(chain=token.chain, is_active=True))
    w3 = client.web3(token.chain)
    batching = bool(token.batch_contract) and settings.SETTLEMENT_BATCHING
    # With the batch contract the float is its balance (read once); without, each wallet pays from its own.
    holders = [token.batch_contract] if batching else [w.address for w in wallets]
    kgst = client.erc20(token.address, token.chain)
    float_units = sum(kgst.functions.balanceOf(h).call() for h in holders) if holders else None
    for wallet in wallets:
        gas = w3.eth.get_balance(wallet.address)
        HotWallet.objects.filter(pk=wallet.pk).update(gas_wei=gas, gas_measured_at=timezone.now())
        if wallet.low_gas_wei is not None and gas < wallet.low_gas_wei:
            alert_raise(kind=OperatorAlert.Kind.LOW_GAS, wallet=wallet, subject="below floor",
                        message=f"gas balance {gas} wei is below {wallet.low_gas_wei}")
    if float_units is None:
        return None
    TreasurySnapshot.objects.update_or_create(token=token, defaults={"float_base_units": float_units,
                                                                     "measured_at": timezone.now()})
    if token.low_float_base_units is not None and float_units < token.low_float_base_units:
        alert_raise(kind=OperatorAlert.Kind.LOW_FLOAT, token=token, subject="below floor",
                    message=f"float {float_units} base units is below {token.low_float_base_units}")
    return float_units


def float_available(token):
    """Snapshot float less everything owed and not yet final; None when never measured."""
    snapshot = TreasurySnapshot.objects.filter(token=token).first()
    if snapshot is None:
        return None
    owed = (Payout.objects.filter(token=token, status__in=[Payout.Status.QUEUED, Payout.Status.BATCHED])
            .aggregate(s=Sum("amount_base_units"))["s"]) or 0
    return snapshot.float_base_units - int(owed)


@cache
def _float_sql():
    token, snapshot, payout = (m._meta.db_table for m in (Token, TreasurySnapshot, Payout))  # ours, never input
    return (f"SELECT t.decimals, CAST(s.float_base_units AS TEXT), "  # noqa: S608
            f"(SELECT CAST(SUM(p.amount_base_units) AS TEXT) FROM {payout} p WHERE p.token_id = t.id "
            f"AND p.status IN (%s, %s)) "
            f"FROM {token} t LEFT JOIN {snapshot} s ON s.token_id = t.id WHERE t.symbol = %s ORDER BY t.id LIMIT 1")


def float_covers(*, amount, symbol="KGST"):
    """Can the float pay `amount` (token units) on top of what is already owed? True where settlement is not
    configured or never measured (nothing to compare against; the transfer then waits in the queue).

    Every quote asks, so this is one statement written once (the token, its snapshot and what is owed read
    together) rather than ORM queries compiled per quote (`make bench-quotes`); base units are read as text."""
    with connection.cursor() as cursor:
        cursor.execute(_float_sql(), [Payout.Status.QUEUED, Payout.Status.BATCHED, symbol])
        row = cursor.fetchone()
    if row is None or row[1] is None:
        return True
    decimals, float_units, owed = row
    available = int(Decimal(float_units)) - (int(Decimal(owed)) if owed is not None else 0)
    return to_units(amount, decimals) <= available


def wallet_balances(wallet, token=None):
    """(token units the wallet can pay from, gas balance in wei), read from the chain. With a batch contract
    the float is the contract's balance; without, the wallet's own."""
    w3 = client.web3(wallet.chain)
    gas = w3.eth.get_balance(wallet.address)
    token = token or Token.objects.filter(chain=wallet.chain).first()
    held = None
    if token:
        holder = token.batch_contract if settings.SETTLEMENT_BATCHING and token.batch_contract else wallet.address
        held = client.erc20(token.address, token.chain).functions.balanceOf(holder).call()
    return held, gas


@dataclass(frozen=True)
class TreasuryPosition:
    """What the chain holds of a token, at one block, and what left it without being final yet.

    held_base_units     the token balance of the batch contract and every hot wallet of the chain, at `block`
    moving_base_units   what our batches not yet final (signed, broadcast or mined) had already paid out at `block`:
                        its payers reported nothing yet, so the caller's books still count it as held
    in_flight_base_units everything in those batches, paid or not yet
    """

    symbol: str
    decimals: int
    block: int
    held_base_units: int
    moving_base_units: int
    in_flight_base_units: int
    holders: tuple


def treasury_position(*, symbol="KGST"):
    """Measure the float for reconciliation. The block is read first, so a batch signed after this reads the
    database can only be mined above it; balances and receipts are read at that block."""
    token = Token.objects.select_related("chain").filter(symbol=symbol).first()
    if token is None:
        return None
    w3 = client.web3(token.chain)
    block = w3.eth.block_number
    in_flight = list(Batch.objects.filter(token=token, status__in=[Batch.Status.SIGNED, Batch.Status.BROADCAST,
                                                                   Batch.Status.MINED]).prefetch_related("attempts"))
    holders = [w.address for w in HotWallet.objects.filter(chain=token.chain).order_by("id")]
    if token.batch_contract:
        holders.append(token.batch_contract)
    erc20 = client.erc20(token.address, token.chain)
    held = sum(erc20.functions.balanceOf(h).call(block_identifier=block) for h in holders)
    moving = sum(batch.total_base_units for batch in in_flight if _paid_by(w3, batch, block))
    return TreasuryPosition(symbol=token.symbol, decimals=token.decimals, block=block, held_base_units=int(held),
                            moving_base_units=int(moving),
                            in_flight_base_units=int(sum(b.total_base_units for b in in_flight)),
                            holders=tuple(holders))


def _paid_by(w3, batch, block):
    """Had this batch's transaction moved its tokens at `block`?"""
    if batch.status == Batch.Status.MINED:
        return bool(batch.succeeded) and batch.block_number <= block
    for attempt in batch.attempts.all():
        try:
            receipt = w3.eth.get_transaction_receipt(attempt.tx_hash)
        except TransactionNotFound:
            continue
        if receipt["blockNumber"] <= block:
            return receipt["status"] == 1
    return False
