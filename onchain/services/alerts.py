"""Operator alerts and wallet halts: what a human must see in admin."""

import logging

from django.db import transaction

from onchain.models import HotWallet, OperatorAlert

log = logging.getLogger(__name__)


def alert_raise(*, kind, message, wallet=None, token=None):
    """One open alert per (kind, wallet, token, message): a condition seen every pass is not repeated."""
    alert, created = OperatorAlert.objects.get_or_create(kind=kind, wallet=wallet, token=token, message=message[:500],
                                                         resolved_at=None)
    if created:
        log.error("operator_alert kind=%s wallet=%s token=%s message=%s", kind, wallet and wallet.address,
                  token and token.symbol, message)
    return alert


def wallet_halt(*, wallet_id, reason):
    with transaction.atomic():
        wallet = HotWallet.objects.select_for_update().get(pk=wallet_id)
        if not wallet.halted:
            wallet.halted, wallet.halt_reason = True, reason[:300]
            wallet.save(update_fields=["halted", "halt_reason"])
            log.error("wallet_halted wallet=%s reason=%s", wallet.address, reason)
    return wallet


def wallet_resume(*, wallet_id):
    with transaction.atomic():
        wallet = HotWallet.objects.select_for_update().get(pk=wallet_id)
        wallet.halted, wallet.halt_reason = False, ""
        wallet.save(update_fields=["halted", "halt_reason"])
    return wallet
