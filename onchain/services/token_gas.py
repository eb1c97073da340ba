"""A token's gas per payout, measured on its chain when the token is registered.

The batch builder's gas limit is `BATCH_GAS_BASE + per-payout gas × payouts`. One global per-payout figure fits one
token: a real stablecoin with an issuer blacklist, fees or hooks costs more per transfer, and a batch that runs out
of gas reverts whole (every payout fails and an operator sorts it out). So each token gets its own figure: the node
estimates (`eth_estimateGas`) our BatchPayout paying 1 and then `SAMPLE` fresh addresses from an operator, and the
difference per extra payout is the token's cost in a batch, new recipients being the dearest (their balance goes
from zero to non-zero); `MARGIN` on top covers what the estimate cannot see (a slightly larger calldata, a token
upgrade). The estimate is a simulation: nothing is sent, nothing is paid.
"""

import logging
import math
import os

from django.db import transaction

from onchain import client
from onchain.errors import OnchainError
from onchain.models import HotWallet, Token
from onchain.services.payout_call import payout_args

log = logging.getLogger(__name__)
SAMPLE = 21  # payouts in the larger simulated batch: the slope is taken over 20 payouts
MARGIN = 1.10
# Distinct amounts of three significant bytes each: their greatest common divisor is 1, so every word carries as
# many non-zero calldata bytes as a real payout in tiyin (units of 10^16 base units, ~3 bytes) and the float needs
# only SAMPLE × ~11M base units (far below one token).
AMOUNT = 0xA5A5A5


def _fresh_addresses(n):
    return ["0x" + os.urandom(20).hex() for _ in range(n)]


def _estimate(w3, token, operator, n):
    entries = [(to, AMOUNT + i) for i, to in enumerate(_fresh_addresses(n))]
    contract = client.batch_payout(token.batch_contract)
    data = contract.encode_abi("payout", payout_args(os.urandom(32), entries))
    return w3.eth.estimate_gas({"from": operator, "to": contract.address, "data": data})


def gas_per_payout_estimate(w3, token, operator):
    """Per-payout gas of a batch of `token` from `operator` (an operator of its BatchPayout), with the margin."""
    try:
        one, many = _estimate(w3, token, operator, 1), _estimate(w3, token, operator, SAMPLE)
    except Exception as exc:  # a revert (not an operator, float empty) or the node: say what to fix
        raise OnchainError(f"cannot estimate {token.symbol}'s gas per payout from {operator}: {exc} (is it an "
                           f"operator of {token.batch_contract}, and does the contract hold a float?)") from exc
    slope = (many - one) / (SAMPLE - 1)
    return math.ceil(slope * MARGIN / 100) * 100  # whole hundreds: the figure is a limit, not a measurement


def token_gas_measure(*, token_id):
    """Estimate and store the token's `gas_per_payout` (from the first active hot wallet of its chain that is an
    operator of its batch contract). Returns the stored figure."""
    token = Token.objects.select_related("chain").get(pk=token_id)
    if not token.batch_contract:
        raise OnchainError(f"{token.symbol} has no batch contract: its payouts are single transfers")
    w3 = client.web3()
    batch = client.batch_payout(token.batch_contract)
    wallets = HotWallet.objects.filter(chain=token.chain, is_active=True).order_by("pk")
    operator = next((w.address for w in wallets if batch.functions.isOperator(w.address).call()), None)
    if operator is None:
        raise OnchainError(f"no active hot wallet is an operator of {token.batch_contract}")
    figure = gas_per_payout_estimate(w3, token, operator)
    with transaction.atomic():
        Token.objects.filter(pk=token.pk).update(gas_per_payout=figure)
    log.info("token_gas_measured token=%s gas_per_payout=%s", token.symbol, figure)
    return figure
