"""Factories for the security tests: staff users by role, the objects each admin action applies to, and the
POST an admin action sends (with the confirmation page's `post` and `reason` fields)."""

import itertools
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission

from onchain.models import HotWallet, OperatorAlert, Payout
from payments import pipeline
from payments.models import Transfer
from payments.providers import stripe_rail
from payments.services.quotes import quote_create
from payments.services.setup import corridors_seed, rates_seed
from payments.services.transfers import transfer_create, transfer_funding_prepare
from tests.conftest import new_recipient, pay_on_stripe
from tests.helpers import force_status

PASSWORD = "a-long-password-for-staff-123"
ROLES = ["operator", "compliance officer", "treasury", "auditor"]
_numbers = itertools.count(1)


def staff_user(role=None, *, perms=(), username=None):
    """A staff member (not a superuser) in the role's group, with `perms` ("app.codename") granted directly."""
    name = username or f"{(role or 'staff').replace(' ', '-')}-{next(_numbers)}"
    user = get_user_model().objects.create_user(name, f"{name}@example.com", PASSWORD, is_staff=True)
    if role:
        user.groups.add(Group.objects.get(name=role))
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return get_user_model().objects.get(pk=user.pk)  # a fresh instance: no permission cache


def view_only_staff():
    """Staff holding every view permission of the money apps and nothing else."""
    user = staff_user(username=f"viewer-{next(_numbers)}")
    user.user_permissions.set(Permission.objects.filter(content_type__app_label__in=["payments", "onchain"],
                                                        codename__startswith="view_"))
    return get_user_model().objects.get(pk=user.pk)


def transfer(*, status=None, reason="", currency="RUB", amount="15000.00"):
    corridors_seed()
    rates_seed()
    quote = quote_create(source_currency=currency, source_amount=Decimal(amount))
    created, _ = transfer_create(
        partner=None, idempotency_key=str(quote.id), fingerprint="f", quote_id=quote.id,
        sender={"name": "Aibek Usenov", "phone": "+79161234567", "email": "aibek@example.com"},
        recipient={"name": "Gulnara Usenova", "phone": "+996555123456", "wallet_address": new_recipient()})
    if status:
        force_status(Transfer.objects.filter(pk=created.pk), status, failure_reason=reason)
    return Transfer.objects.get(pk=created.pk)


def held_transfer():
    """A transfer screening held on a sanctions name match (the only kind of hold screening makes)."""
    return transfer(status=Transfer.Status.HELD, reason="recipient name matches a sanctions list entry")


def failed_settlement():
    """A card-funded transfer whose payout failed for good: refundable on (local)stripe."""
    corridors_seed()
    rates_seed()
    quote = quote_create(source_currency="USD", source_amount=Decimal("120.00"))
    created, _ = transfer_create(
        partner=None, idempotency_key=str(quote.id), fingerprint="f", quote_id=quote.id,
        sender={"name": "John Smith", "phone": "+12125551234", "email": "john@example.com"},
        recipient={"name": "Aida Bekova", "phone": "+996555123456", "wallet_address": new_recipient()})
    created = transfer_funding_prepare(transfer=created)
    pay_on_stripe(created.payment_intent_id)
    pipeline.transfer_mark_funded(payment_intent=stripe_rail.payment_intent_retrieve(created.payment_intent_id))
    pipeline.transfer_advance(transfer_id=created.pk)
    assert Payout.objects.filter(reference=str(created.pk)).mark_failed("reverted") == 1
    pipeline.TransferPayoutListener().payouts_failed(references=[str(created.pk)], reason="transaction reverted")
    return Transfer.objects.get(pk=created.pk)


def halted_wallet(wallet, reason="top-up pending"):
    HotWallet.objects.filter(pk=wallet.pk).update(halted=True, halt_reason=reason)
    return HotWallet.objects.get(pk=wallet.pk)


def nonce_halted_wallet(wallet):
    """Halted the way the tracker halts a wallet whose key signed outside the gateway."""
    reason = "chain nonce 7 is ahead of ours (5): a transaction we did not sign"
    OperatorAlert.objects.create(kind=OperatorAlert.Kind.NONCE, wallet=wallet, message=reason)
    return halted_wallet(wallet, reason)


def open_alert(wallet):
    return OperatorAlert.objects.create(kind=OperatorAlert.Kind.LOW_GAS, wallet=wallet, message="gas low")


def act(client, changelist, action, objects, *, reason="checked against the documents", confirm=True, follow=False):
    """POST an admin action as the changelist form does; `confirm` adds what the confirmation page sends."""
    data = {"action": action, "_selected_action": [str(o.pk) for o in objects]}
    if confirm:
        data["post"] = "yes"
        data["reason"] = reason
    return client.post(changelist, data, follow=follow)
