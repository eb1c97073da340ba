"""Treasury safety: float and gas balances measured into a snapshot, low-balance alerts, and the float check
that refuses quotes the float cannot cover (against the snapshot, so quoting never waits on the chain)."""

import logging

from django.conf import settings
from django.db.models import DecimalField, OuterRef, Subquery, Sum
from django.utils import timezone

from common.money import to_units
from onchain import client
from onchain.models import HotWallet, OperatorAlert, Payout, Token, TreasurySnapshot
from onchain.services.alerts import alert_raise

log = logging.getLogger(__name__)


def treasury_check(*, token_id):
    """Measure the token float and every wallet's gas; alert below the configured thresholds."""
    token = Token.objects.select_related("chain").get(pk=token_id)
    wallets = list(HotWallet.objects.filter(chain=token.chain, is_active=True))
    w3 = client.web3()
    batching = bool(token.batch_contract) and settings.SETTLEMENT_BATCHING
    # With the batch contract the float is its balance (read once); without, each wallet pays from its own.
    holders = [token.batch_contract] if batching else [w.address for w in wallets]
    kgst = client.erc20(token.address)
    float_units = sum(kgst.functions.balanceOf(h).call() for h in holders) if holders else None
    for wallet in wallets:
        gas = w3.eth.get_balance(wallet.address)
        if wallet.low_gas_wei is not None and gas < wallet.low_gas_wei:
            alert_raise(kind=OperatorAlert.Kind.LOW_GAS, wallet=wallet,
                        message=f"gas balance {gas} wei is below {wallet.low_gas_wei}")
    if float_units is None:
        return None
    TreasurySnapshot.objects.update_or_create(token=token, defaults={"float_base_units": float_units,
                                                                     "measured_at": timezone.now()})
    if token.low_float_base_units is not None and float_units < token.low_float_base_units:
        alert_raise(kind=OperatorAlert.Kind.LOW_FLOAT, token=token,
                    message=f"float {float_units} base units is below {token.low_float_base_units}")
    return float_units


def _owed(token_ref):
    """Everything queued or batched for the token and not yet final, as one aggregate subquery."""
    return Subquery(Payout.objects.filter(token=token_ref, status__in=[Payout.Status.QUEUED, Payout.Status.BATCHED])
                    .order_by().values("token").annotate(s=Sum("amount_base_units")).values("s"),
                    output_field=DecimalField(max_digits=78, decimal_places=0))


def float_available(token):
    """Snapshot float less everything owed and not yet final; None when never measured."""
    row = (TreasurySnapshot.objects.filter(token=token).annotate(owed=_owed(OuterRef("token")))
           .values("float_base_units", "owed").first())
    if row is None:
        return None
    return row["float_base_units"] - int(row["owed"] or 0)


def float_covers(*, amount, symbol="KGST"):
    """Can the float pay `amount` (token units) on top of what is already owed? True where settlement is not
    configured or never measured (nothing to compare against; the transfer then waits in the queue). One query:
    every quote asks (the token, its snapshot and what is owed are read together)."""
    row = (Token.objects.filter(symbol=symbol).annotate(owed=_owed(OuterRef("pk")))
           .values("decimals", "snapshot__float_base_units", "owed").first())
    if row is None or row["snapshot__float_base_units"] is None:
        return True
    available = row["snapshot__float_base_units"] - int(row["owed"] or 0)
    return to_units(amount, row["decimals"]) <= available


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
