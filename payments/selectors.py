"""Reads that several interfaces share (API, status pages, admin)."""

from onchain.selectors import payout_settlement


def transfer_settlement(*, transfer):
    if not transfer.payout_reference:
        return None
    return payout_settlement(reference=transfer.payout_reference)
