"""Payout halts that concern no single wallet: while one is set, no new batch is signed (a wallet's own halt,
HotWallet.halted, stays the per-wallet switch). Each halt belongs to the caller that set it (`key`), so clearing one
never clears another's."""

import logging

from onchain.models import PayoutHalt

log = logging.getLogger(__name__)


def payouts_halt(*, key, reason):
    halt, created = PayoutHalt.objects.get_or_create(key=key, defaults={"reason": reason[:300]})
    if created:
        log.error("payouts_halted key=%s reason=%s", key, reason)
    return halt


def payouts_resume(*, key):
    removed, _ = PayoutHalt.objects.filter(key=key).delete()
    if removed:
        log.warning("payouts_resumed key=%s", key)
    return bool(removed)


def payouts_halted():
    """The reasons payouts are halted now ([] when they run)."""
    return list(PayoutHalt.objects.order_by("created_at").values_list("reason", flat=True))
