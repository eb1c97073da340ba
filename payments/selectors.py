"""Reads that several interfaces share (API, status pages, admin)."""

from onchain.api import payout_settlement, payout_settlements


def transfer_settlement(*, transfer):
    """The on-chain side of one transfer (onchain.api.Settlement), or None before its payout is queued."""
    if not transfer.payout_reference:
        return None
    return payout_settlement(reference=transfer.payout_reference)


def transfer_settlements(*, transfers):
    """{transfer id: Settlement} for a page of transfers, in a constant number of queries."""
    references = {t.payout_reference: t.pk for t in transfers if t.payout_reference}
    found = payout_settlements(references=list(references))
    return {references[ref]: settlement for ref, settlement in found.items()}
