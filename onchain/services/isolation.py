"""After a batch reverts: which of its payouts made it revert, and may the others go out again?

BatchPayout pays all or nothing, so one payout the token refuses (an issuer blacklist, say) reverts the whole
batch. Once the reverted block is final, the tracker asks `revert_isolate` before taking any lock (it reads the
node). At the latest block it simulates the batch's own call (`eth_call` of `payout(batchId, unit, width, packed)` from the hot
wallet: the reverted batch id is unpaid, because a reverted transaction changes nothing); the contract names the
first entry that fails (`TransferFailed(index, to, amount)`). That entry alone is then simulated (`transfer` from
the batch contract) beside the same amount to a control address: if the token refuses the recipient and not the
control, the payout is a culprit; it is taken out and the rest simulated again, until the rest passes.

Anything else stops the search and re-queues nothing: the rest still fails with no single recipient to blame (a
short float: the entry pays alone but not after the others), a revert that is not `TransferFailed` (the wallet is
no longer an operator), or a batch with no culprit at all (it ran out of gas, or what refused it has changed
since): those payouts fail, as every payout of a reverted batch did before, and an operator decides. So a payout
is re-queued only when at least one culprit was found and the batch without the culprits simulates clean; each
re-queue round fails at least one payout, so it cannot loop.
"""

import logging
from collections import defaultdict
from dataclasses import dataclass, field

from eth_abi import decode as abi_decode
from eth_utils import keccak, to_checksum_address
from web3.exceptions import ContractLogicError

from onchain import client
from onchain.models import Batch, Payout
from onchain.services.payout_call import payout_args, payout_entries
from onchain.services.recipients import token_refuses

log = logging.getLogger(__name__)
TRANSFER_FAILED = keccak(text="TransferFailed(uint256,address,uint256)")[:4]


@dataclass
class Isolation:
    culprits: dict = field(default_factory=dict)  # payout id → why (the token refuses its recipient)
    requeue: list = field(default_factory=list)  # payout ids to pay again in a new batch
    unexplained: str = ""  # why the others cannot go out again (then every payout not a culprit fails)


def _entry(payout):
    return payout.to_address.lower(), int(payout.amount_base_units)


def _simulate_batch(w3, batch, batch_id, payouts):
    """None when `payout` of these payouts under `batch_id` would pass at the latest block, else the revert data
    (bytes). Encoded afresh (a subset may have another unit or width): the contract pays the same amounts in the
    same order, so its failing index is the same."""
    contract = client.batch_payout(batch.token.batch_contract, batch.token.chain)
    data = contract.encode_abi("payout", payout_args(batch_id, [(p.to_address, p.amount_base_units) for p in payouts]))
    try:
        w3.eth.call({"from": batch.wallet.address, "to": contract.address, "data": data}, "latest")
    except ContractLogicError as exc:
        raw = exc.data if isinstance(exc.data, str) and exc.data.startswith("0x") else "0x"
        return bytes.fromhex(raw[2:])
    return None


def revert_isolate(w3, batch):
    """Split the payouts of the reverted `batch` (mined, status 0) into culprits and payouts to re-queue, by
    simulation at the latest block. Reads the node; call it with no lock held. Node failures propagate (the
    tracker's pass is retried)."""
    payouts = list(Payout.objects.filter(batch=batch, status=Payout.Status.BATCHED))
    if batch.mode != Batch.Mode.CONTRACT:  # a plain transfer from the hot wallet: one payout, nothing to re-queue
        result = Isolation()
        for payout in payouts:
            why = token_refuses(w3, batch.token, batch.wallet.address, payout.to_address, int(payout.amount_base_units))
            if why:
                result.culprits[payout.pk] = why
            else:
                result.unexplained = "no recipient to blame (out of gas, or what refused it has changed since)"
        return result
    _fn, args = client.batch_payout(batch.token.batch_contract, batch.token.chain).decode_function_input(bytes(batch.mined_tx.data))
    batch_id = args["batchId"]
    by_entry = defaultdict(list)
    for payout in payouts:
        by_entry[_entry(payout)].append(payout)
    try:  # the call's order; one payout per entry
        entries = [by_entry[entry].pop() for entry in payout_entries(args["unit"], args["width"], args["packed"])]
    except IndexError:
        return Isolation(unexplained="its call data does not match its payouts")
    result = Isolation()
    while entries:
        revert = _simulate_batch(w3, batch, batch_id, entries)
        if revert is None:
            break
        index, to, amount = (abi_decode(["uint256", "address", "uint256"], revert[4:])
                             if revert[:4] == TRANSFER_FAILED and len(revert) == 100 else (None, None, None))
        if index is None or index >= len(entries):
            result.unexplained = f"the rest still reverts ({'0x' + revert[:4].hex() if revert else 'no revert data'})"
            break
        culprit = entries[index]
        why = token_refuses(w3, batch.token, batch.token.batch_contract, to_checksum_address(to), amount)
        if why is None:
            result.unexplained = f"no single payout explains it: entry {index} pays alone (is the float short?)"
            break
        result.culprits[culprit.pk] = why
        entries.pop(index)
    if not result.culprits and not result.unexplained:
        result.unexplained = "no single payout explains it (out of gas, or what refused it has changed since)"
    if not result.unexplained:
        result.requeue = [p.pk for p in entries]
    log.warning("batch_revert_isolated batch=%s culprits=%s requeue=%s unexplained=%s", batch.pk,
                len(result.culprits), len(result.requeue), result.unexplained)
    return result
