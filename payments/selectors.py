"""Reads that several interfaces share (API, status pages, admin)."""

from onchain.api import payout_settlement, payout_settlements
from payments.models import Transfer


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


def transfers_of_partner(*, partner, livemode=True, statuses=None, created_after=None, created_before=None,
                         source_currency=None, target_currency=None, reference=None):
    """The partner's transfers with their quotes (one query), narrowed by the list's filters (docs/api.md "Listing
    and filtering"): any of `statuses`, created at or after `created_after` and before `created_before`, the quote's
    corridor, the partner's `reference`. Partner first, as the indexes that serve these filters are; a key's mode
    (`livemode`) sees only its own mode's transfers."""
    qs = Transfer.objects.filter(partner=partner, livemode=livemode).select_related(
        "quote", "partner_payout__payout_partner")
    if statuses:
        qs = qs.filter(status__in=statuses)
    if created_after is not None:
        qs = qs.filter(created_at__gte=created_after)
    if created_before is not None:
        qs = qs.filter(created_at__lt=created_before)
    if source_currency:
        qs = qs.filter(quote__source_currency=source_currency)
    if target_currency:
        qs = qs.filter(quote__target_currency=target_currency)
    if reference is not None:
        qs = qs.filter(reference=reference)
    return qs
