"""Staff actions on a partner's prefunded balance: an operator records a top-up (the partner's money arrived at our
bank) or a withdrawal (we paid it back), with the partner's bank reference and a reason. They run through
staff.services.action_perform like every staff action: the permission is checked, the Partner row is locked, the
reason and the outcome (done or refused, with the journal entry or the refusal) go into the audit trail.

Each action carries its own amount, so it is built per request and not registered: it cannot wait for a second
person's approval (staff approvals re-run a registered action by name)."""

from django.utils.formats import number_format

from payments.models import Partner, from_minor
from payments.services import balances
from staff.actions import GuardedAction

TOPUP_PERMISSION = "payments.topup_partner_balance"
WITHDRAW_PERMISSION = "payments.withdraw_partner_balance"


def _memo(actor, reason):
    return f"{actor.get_username()}: {reason}"


def balance_topup_action(*, currency, amount, reference):
    def perform(partner, *, reason, actor):
        entry = balances.balance_topup(partner=partner, currency=currency, amount=amount, reference=reference,
                                       memo=_memo(actor, reason))
        return (f"top-up of {_shown(amount, currency)} recorded (bank reference {reference}, journal entry "
                f"#{entry.pk}); balance now {_balance(partner, currency)}")

    return GuardedAction(permission=TOPUP_PERMISSION, model=Partner, done="topped up", perform=perform)


def balance_withdraw_action(*, currency, amount, reference):
    def perform(partner, *, reason, actor):
        entry = balances.balance_withdraw(partner=partner, currency=currency, amount=amount, reference=reference,
                                          memo=_memo(actor, reason))
        return (f"withdrawal of {_shown(amount, currency)} recorded (bank reference {reference}, journal entry "
                f"#{entry.pk}); balance now {_balance(partner, currency)}")

    return GuardedAction(permission=WITHDRAW_PERMISSION, model=Partner, done="withdrawn", perform=perform)


def _shown(amount, currency):
    return f"{number_format(amount, 2, force_grouping=True)} {currency}"


def _balance(partner, currency):
    return _shown(from_minor(balances.balance_get(partner=partner, currency=currency), currency), currency)
