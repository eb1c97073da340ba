"""Reorganising an anvil chain at its head, for the reorg campaign (bench/reorg.py) and its CI-sized test
(tests/onchain/test_reorg_campaign.py). No Django: it talks to the node only.

anvil 1.7 (`anvil_reorg(depth, txs)`): replaces the last `depth` blocks with as many new ones, keeps the head's
number, and puts nothing of the replaced blocks back in its pool: a transaction is in the new branch only when
passed in `txs` as [raw bytes, block offset from the first new block]; one with a nonce gap is skipped silently.
It replaces blocks at or below its own `finalized` tag as readily as any other (it does not move the tag back), which
no chain with finality does: `Reorg.below_finalized` records when that happened.
"""

from collections import defaultdict
from dataclasses import dataclass


@dataclass
class Reorg:
    head: int  # the head when it happened (the same number after it)
    depth: int
    finalized: int  # the node's `finalized` block just before
    dropped: list  # hashes of the replaced blocks' transactions left out of the new branch
    reincluded: list  # hashes put back into the new branch

    @property
    def below_finalized(self):
        """It replaced a block at or below the node's `finalized` tag: a finality violation, not a reorg a chain with
        finality can have."""
        return self.head - self.depth + 1 <= self.finalized


def rpc(w3, method, *params):
    response = w3.provider.make_request(method, list(params))
    if "error" in response:
        raise RuntimeError(f"{method}: {response['error']}")
    return response.get("result")


def reorg_head(w3, depth, rng, *, reinclude_share=0.5, interval_mining=None):
    """Replace the last `depth` blocks. For a seeded share of the senders found in them, a nonce-ordered prefix of
    their transactions (of seeded length, at least one) goes into the new branch at seeded, non-decreasing offsets, as when the
    competing block producer had them too; everything else is dropped from the chain and from the pool, and it is the
    sender's job to send it again. With `interval_mining` (seconds) block production is paused around the read and
    the reorg, so the blocks read are the blocks replaced, then resumed."""
    if interval_mining:
        rpc(w3, "evm_setIntervalMining", 0)
        rpc(w3, "evm_setAutomine", False)
    try:
        head = w3.eth.block_number
        finalized = w3.eth.get_block("finalized")["number"]
        by_sender = defaultdict(list)
        for number in range(head - depth + 1, head + 1):
            for tx in w3.eth.get_block(number, full_transactions=True)["transactions"]:
                by_sender[tx["from"]].append(tx["hash"].to_0x_hex())
        kept, dropped = [], []
        for sender in sorted(by_sender):  # sorted: the draws do not depend on the node's ordering of senders
            hashes = by_sender[sender]
            keep = rng.randint(1, len(hashes)) if rng.random() < reinclude_share else 0
            offsets = sorted(rng.randrange(depth) for _ in range(keep))
            kept += [(h, offset) for h, offset in zip(hashes[:keep], offsets, strict=True)]
            dropped += hashes[keep:]
        txs = [[rpc(w3, "eth_getRawTransactionByHash", h), offset] for h, offset in kept]
        rpc(w3, "anvil_reorg", depth, txs)
    finally:
        if interval_mining:
            rpc(w3, "evm_setIntervalMining", interval_mining)
    return Reorg(head=head, depth=depth, finalized=finalized, dropped=dropped, reincluded=[h for h, _ in kept])
