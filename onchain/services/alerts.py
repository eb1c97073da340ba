"""Operator alerts and wallet halts: what a human must see in admin."""

import logging

from django.db import transaction
from django.utils import timezone

from onchain.models import HotWallet, OperatorAlert
from onchain.services.alert_delivery import alert_deliveries_plan

log = logging.getLogger(__name__)


def alert_raise(*, kind, message, wallet=None, token=None, subject=None):
    """One open alert per key (OperatorAlert.key_for; a unique constraint holds it under races): a condition seen
    every pass is raised once; a new one is delivered to people (ALERT_EMAILS, ALERT_WEBHOOK_URL) after the caller
    commits."""
    key = OperatorAlert.key_for(kind=kind, message=message, wallet_id=wallet and wallet.pk,
                                token_id=token and token.pk, subject=subject)
    with transaction.atomic():
        alert, created = OperatorAlert.objects.get_or_create(
            key=key, resolved_at=None, defaults={"kind": kind, "wallet": wallet, "token": token,
                                                 "message": message[:500]})
        if created:
            log.error("operator_alert id=%s kind=%s wallet=%s token=%s message=%s", alert.pk, kind,
                      wallet and wallet.address, token and token.symbol, message)
            alert_deliveries_plan(alert=alert, now=timezone.now())
        elif alert.message != message[:500]:
            # The same condition, newer figures: the open alert says what was seen last (no new notice).
            OperatorAlert.objects.filter(pk=alert.pk).update(message=message[:500])
    return alert


def wallet_halt(*, wallet_id, reason):
    with transaction.atomic():
        wallet = HotWallet.objects.select_for_update().get(pk=wallet_id)
        if not wallet.halted:
            wallet.halted, wallet.halt_reason = True, reason[:300]
            wallet._change_reason = reason  # the wallet's history (django-simple-history) says why
            wallet.save(update_fields=["halted", "halt_reason"])
            log.error("wallet_halted wallet=%s reason=%s", wallet.address, reason)
    return wallet


def wallet_resume(*, wallet_id, reason=""):
    with transaction.atomic():
        wallet = HotWallet.objects.select_for_update().get(pk=wallet_id)
        wallet.halted, wallet.halt_reason = False, ""
        wallet._change_reason = reason or None
        wallet.save(update_fields=["halted", "halt_reason"])
    return wallet
