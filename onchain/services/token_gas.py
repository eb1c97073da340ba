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
from eth_utils import to_checksum_address

from onchain import client
from onchain.errors import OnchainError
from onchain.models import HotWallet, Token
from onchain.services.payout_call import balance_key, payout_args

log = logging.getLogger(__name__)
SAMPLE = 21  # payouts in the larger simulated batch: the slope is taken over 20 payouts
MARGIN = 1.10
# Distinct amounts of three significant bytes each: their greatest common divisor is 1, so every word carries as
# many non-zero calldata bytes as a real payout in tiyin (units of 10^16 base units, ~3 bytes) and the float needs
# only SAMPLE × ~11M base units (far below one token).
AMOUNT = 0xA5A5A5
MAX_BALANCE_SLOT = 64  # tokens declare balanceOf among their first state variables


def _fresh_addresses(n):
    return ["0x" + os.urandom(20).hex() for _ in range(n)]


def _estimate(w3, token, operator, n):
    entries = [(to, AMOUNT + i) for i, to in enumerate(_fresh_addresses(n))]
    contract = client.batch_payout(token.batch_contract, token.chain)
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
    w3 = client.web3(token.chain)
    batch = client.batch_payout(token.batch_contract, token.chain)
    wallets = HotWallet.objects.filter(chain=token.chain, is_active=True).order_by("pk")
    operator = next((w.address for w in wallets if batch.functions.isOperator(w.address).call()), None)
    if operator is None:
        raise OnchainError(f"no active hot wallet is an operator of {token.batch_contract}")
    figure = gas_per_payout_estimate(w3, token, operator)
    slot = balance_slot_find(w3, token)
    with transaction.atomic():
        Token.objects.filter(pk=token.pk).update(gas_per_payout=figure, balance_slot=slot)
    log.info("token_gas_measured token=%s gas_per_payout=%s balance_slot=%s", token.symbol, figure, slot)
    return figure


def balance_slot_find(w3, token, max_slot=MAX_BALANCE_SLOT):
    """The slot of the token's balanceOf mapping, or None: the node lists the storage a `transfer(fresh, 1)` from
    the batch contract touches (eth_createAccessList), and the slot is the one whose Solidity key for the fresh
    address is among them. None for another layout (Vyper, namespaced storage) or a node without the method:
    batches then go without an access list, at ~100 gas more per payout."""
    fresh = _fresh_addresses(1)[0]
    data = client.erc20(token.address, token.chain).encode_abi("transfer", [to_checksum_address(fresh), 1])
    try:
        answer = w3.provider.make_request("eth_createAccessList", [
            {"from": token.batch_contract, "to": token.address, "data": data}, "latest"])
        listed = {k.lower() for entry in answer["result"]["accessList"]
                  if entry["address"].lower() == token.address.lower() for k in entry["storageKeys"]}
    except Exception:  # noqa: BLE001 - the node does not offer it, or the transfer fails: no access list
        log.warning("balance_slot_unknown token=%s", token.symbol, exc_info=True)
        return None
    return next((slot for slot in range(max_slot + 1) if balance_key(fresh, slot) in listed), None)
