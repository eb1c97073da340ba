"""Reconciliation against the chain: every ERC-20 `Transfer` log sent from our batch contract or hot wallets,
up to the final block, must match exactly one confirmed payout (same transaction, recipient and amount), and
every confirmed payout must have its log. A log we cannot match, or a payout paid twice, halts sending for
the token's wallets and alerts operators; a payout without its log alerts too."""

import logging
from collections import Counter

from django.db import transaction
from eth_utils import keccak

from onchain import client
from onchain.models import Batch, ChainTransaction, HotWallet, Payout, ReconciliationCursor, Token
from onchain.services.alerts import alert_raise, wallet_halt
from onchain.services.tracking import final_height

log = logging.getLogger(__name__)
TRANSFER_TOPIC = "0x" + keccak(text="Transfer(address,address,uint256)").hex()
WITHDRAWN_TOPIC = "0x" + keccak(text="Withdrawn(address,uint256)").hex()
MAX_RANGE = 2_000


def _topic(address):
    return "0x" + address[2:].lower().rjust(64, "0")


def reconcile(*, token_id):
    """Check the next range of final blocks. Returns (logs seen, problems found)."""
    token = Token.objects.select_related("chain").get(pk=token_id)
    w3 = client.web3(token.chain)
    top = final_height(w3, token.chain, w3.eth.block_number)
    cursor = ReconciliationCursor.objects.filter(token=token).first()
    start = (cursor.last_block + 1) if cursor else max(top - MAX_RANGE + 1, 0)
    end = min(top, start + MAX_RANGE - 1)
    if end < start:
        return 0, 0
    wallets = list(HotWallet.objects.filter(chain=token.chain))
    senders = [w.address for w in wallets] + ([token.batch_contract] if token.batch_contract else [])
    logs = w3.eth.get_logs({"fromBlock": start, "toBlock": end, "address": token.address,
                            "topics": [TRANSFER_TOPIC, [_topic(a) for a in senders]]})
    # A transaction of ours whose batch the tracker has not made final yet is not a mismatch: stop the range
    # before its block and come back to it on a later pass.
    hashes = {lg["transactionHash"].to_0x_hex() for lg in logs}
    pending = (ChainTransaction.objects.filter(tx_hash__in=hashes).exclude(batch__status=Batch.Status.FINAL)
               .values_list("tx_hash", flat=True))
    pending_blocks = [lg["blockNumber"] for lg in logs if lg["transactionHash"].to_0x_hex() in set(pending)]
    if pending_blocks:
        end = min(pending_blocks) - 1
        logs = [lg for lg in logs if lg["blockNumber"] <= end]
        if end < start:
            return 0, 0
    seen = Counter((lg["transactionHash"].to_0x_hex(), "0x" + lg["topics"][2].hex()[-40:], int(lg["data"].hex() or "0", 16))
                   for lg in logs)
    # Treasury sweeps out of the batch contract are recorded by its own `Withdrawn` event: not payouts.
    if token.batch_contract:
        for lg in w3.eth.get_logs({"fromBlock": start, "toBlock": end, "address": token.batch_contract,
                                   "topics": [WITHDRAWN_TOPIC]}):
            key = (lg["transactionHash"].to_0x_hex(), "0x" + lg["topics"][1].hex()[-40:], int(lg["data"].hex() or "0", 16))
            if seen.get(key):
                seen[key] -= 1
    batches = Batch.objects.filter(token=token, status=Batch.Status.FINAL, block_number__gte=start,
                                   block_number__lte=end).select_related("mined_tx")
    expected = Counter()
    for batch in batches:
        for to, amount in batch.payouts.values_list("to_address", "amount_base_units"):
            expected[(batch.mined_tx.tx_hash, to.lower(), int(amount))] += 1
    problems = []
    for key, count in seen.items():
        if count > expected.get(key, 0):
            problems.append(f"transfer {key[2]} to {key[1]} in {key[0]} is not a payout of ours "
                            f"(seen {count}, expected {expected.get(key, 0)})")
    for key, count in expected.items():
        if seen.get(key, 0) < count:
            problems.append(f"payout of {key[2]} to {key[1]} in {key[0]} has no Transfer log")
    for problem in problems:
        alert_raise(kind="reconciliation", token=token, message=problem)
    if any("not a payout of ours" in p for p in problems):
        for wallet in wallets:
            wallet_halt(wallet_id=wallet.pk, reason="reconciliation found a transfer that is not a payout of ours")
    with transaction.atomic():
        ReconciliationCursor.objects.update_or_create(token=token, defaults={"last_block": end})
    log.info("reconciled token=%s blocks=%s-%s logs=%s problems=%s", token.symbol, start, end, len(logs), len(problems))
    return sum(seen.values()), len(problems)


def payouts_paid_on_chain(*, token_id, from_block=0):
    """Count, from the chain's logs, how many times each of our payouts was paid (tests and benchmarks)."""
    token = Token.objects.select_related("chain").get(pk=token_id)
    w3 = client.web3(token.chain)
    senders = [w.address for w in HotWallet.objects.filter(chain=token.chain)] + (
        [token.batch_contract] if token.batch_contract else [])
    logs = w3.eth.get_logs({"fromBlock": from_block, "toBlock": "latest", "address": token.address,
                            "topics": [TRANSFER_TOPIC, [_topic(a) for a in senders]]})
    paid = Counter(("0x" + lg["topics"][2].hex()[-40:], int(lg["data"].hex() or "0", 16)) for lg in logs)
    return {p.reference: paid.get((p.to_address.lower(), int(p.amount_base_units)), 0)
            for p in Payout.objects.filter(token=token)}
