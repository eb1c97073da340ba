"""Staff actions on hot wallets and alerts (run from admin through staff.services: permission, reason, four-eyes,
audit trail). Registered in OnchainConfig.ready(); each calls a settlement service."""

from django.utils import timezone

from onchain.models import HotWallet, OperatorAlert
from onchain.services.alerts import wallet_halt, wallet_resume
from onchain.services.tracking import nonce_resync
from staff.actions import ActionRefused, GuardedAction


def _not_halted(wallet):
    if wallet.halted:
        raise ActionRefused("Already halted.")


def _halted(wallet):
    if not wallet.halted:
        raise ActionRefused("Not halted.")


def _halted_for_a_foreign_nonce(wallet):
    """Someone signed with the wallet's key outside the gateway (the tracker's nonce halt): resuming needs a second
    person."""
    return "nonce" in wallet.halt_reason.lower() or wallet.alerts.filter(
        kind=OperatorAlert.Kind.NONCE, resolved_at__isnull=True).exists()


def _halt(wallet, *, reason, actor):
    wallet_halt(wallet_id=wallet.pk, reason=reason)


def _resume(wallet, *, reason, actor):
    wallet_resume(wallet_id=wallet.pk, reason=reason)


def _resync(wallet, *, reason, actor):
    try:
        return f"next nonce {nonce_resync(wallet_id=wallet.pk)}"
    except ValueError as exc:
        raise ActionRefused(str(exc)) from exc


def _open(alert):
    if alert.resolved_at is not None:
        raise ActionRefused("Already resolved.")


def _unacknowledged(alert):
    _open(alert)
    if alert.acknowledged_at is not None:
        raise ActionRefused("Already acknowledged.")


def _resolve(alert, *, reason, actor):
    OperatorAlert.objects.filter(pk=alert.pk, resolved_at__isnull=True).update(resolved_at=timezone.now())


def _acknowledge(alert, *, reason, actor):
    OperatorAlert.objects.filter(pk=alert.pk, acknowledged_at__isnull=True).update(acknowledged_at=timezone.now())
    return "acknowledged: no more reminders; resolve it when the condition is gone"


HALT = GuardedAction(permission="onchain.halt_wallet", model=HotWallet, done="halted", check=_not_halted,
                     perform=_halt)
RESUME = GuardedAction(permission="onchain.resume_wallet", model=HotWallet, done="resumed", check=_halted,
                       perform=_resume, four_eyes=_halted_for_a_foreign_nonce,
                       state=lambda w: f"halted={w.halted}|{w.halt_reason}")
# Reads the chain's nonce first: outside any transaction, recorded once it returns.
RESYNC_NONCE = GuardedAction(permission="onchain.resync_nonce", model=HotWallet, done="resynced", perform=_resync,
                             atomic=False)
RESOLVE = GuardedAction(permission="onchain.resolve_alert", model=OperatorAlert, done="resolved", check=_open,
                        perform=_resolve)
ACKNOWLEDGE = GuardedAction(permission="onchain.acknowledge_alert", model=OperatorAlert, done="acknowledged",
                            check=_unacknowledged, perform=_acknowledge)
ACTIONS = (HALT, RESUME, RESYNC_NONCE, RESOLVE, ACKNOWLEDGE)
