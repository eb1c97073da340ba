"""Payouts: what the settlement engine owes, requested once per reference by the caller (payments).

The engine around them: `batches.batches_build` groups queued payouts into signed batches (one nonce each),
`sending.batch_send` broadcasts the stored bytes, `tracking.chain_track` follows them to finality and reports
through the registered listener (onchain.listener). docs/settlement.md has the invariants.
"""

import logging

from common.money import to_units
from common.status import status_listened
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


def payouts_request(*, requests):
    """payout_request for each of `requests` (dicts of its keyword arguments), inside the caller's transaction: one
    read of the references already queued and one insert for the new ones, one build trigger per token. A payout
    model with status listeners is inserted one by one (a bulk insert would not tell them)."""
    first = {}
    for r in requests:
        first.setdefault(r["reference"], r)  # one payout per reference: the first request for it
    requests = list(first.values())
    if status_listened(Payout):
        return [payout_request(**r) for r in requests]
    tokens = {}
    for r in requests:
        key = (r.get("symbol", "KGST"), r.get("chain_id"))
        if key not in tokens:
            tokens[key] = settlement_token(*key)
    existing = {p.reference: p for p in Payout.objects.filter(reference__in=[r["reference"] for r in requests])}
    new = []
    for r in requests:
        if r["reference"] in existing:
            continue
        token = tokens[(r.get("symbol", "KGST"), r.get("chain_id"))]
        new.append(Payout(reference=r["reference"], token=token, to_address=r["to_address"],
                          amount_base_units=to_units(r["amount"], token.decimals)))
    created = {p.reference: p for p in Payout.objects.bulk_create(new)}
    for payout in created.values():
        log.info("payout_queued reference=%s payout=%s amount_base_units=%s", payout.reference, payout.id,
                 payout.amount_base_units)
    for token_id in dict.fromkeys(p.token_id for p in created.values()):
        build_soon(token_id)
    return [existing.get(r["reference"]) or created[r["reference"]] for r in requests]
