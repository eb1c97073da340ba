"""Payout partners: banks and wallet providers in Kyrgyzstan that pay the som out to the person. A transfer may name
one instead of a wallet; its KGST goes to the partner's settlement address and the partner confirms (or fails) the
payout to the person through the API (docs/api.md, "Payout partners"; docs/states.md)."""

import secrets

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django_fsm import transition
from simple_history.models import HistoricalRecords

from common.status import StatusField, StatusModel, StatusQuerySet
from onchain.fields import AddressField, validate_address

__all__ = ["PartnerPayout", "PayoutPartner"]

# Crockford's base32 without the letters people misread (I, L, O, U): what a cashier types back from a screen.
REFERENCE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_payout_reference():
    return "TP" + "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(10))


class PayoutPartner(models.Model):
    """A bank or wallet provider that pays recipients out. Its `operator` is the API account whose keys list and
    confirm its payouts (scope `payouts:confirm`); the KGST for its payouts goes to `settlement_address`."""

    class Kind(models.TextChoices):
        BANK = "bank", "bank"
        WALLET_PROVIDER = "wallet_provider", "wallet provider"

    code = models.SlugField(max_length=40, unique=True, help_text="What integrators name it by, e.g. demir-bank.")
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    settlement_address = AddressField(help_text="Where its payouts' KGST goes (checked as a recipient wallet is).")
    operator = models.ForeignKey("payments.Partner", on_delete=models.PROTECT, related_name="payout_partners",
                                 help_text="The API account whose keys see and confirm this partner's payouts.")
    is_active = models.BooleanField(default=True, help_text="Inactive: no new transfer may name it.")
    created_at = models.DateTimeField(auto_now_add=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return f"{self.name} ({self.code})"

    def clean(self):
        try:
            self.settlement_address = validate_address(self.settlement_address or "")
        except ValidationError as exc:
            raise ValidationError({"settlement_address": exc.messages}) from exc


class PartnerPayoutQuerySet(StatusQuerySet):
    def awaiting(self):
        return self.filter(status=PartnerPayout.Status.AWAITING)


class PartnerPayout(StatusModel):
    """The payout partner's part of one transfer: created with the transfer (status `pending` until its KGST is final
    at the settlement address), then awaiting the partner's confirmation, then confirmed or failed. `reference` is
    what the partner sees and quotes back; `escalated_at` marks the one operator alert for a late confirmation."""

    class Status(models.TextChoices):
        PENDING = "pending", "not sent yet"
        AWAITING = "awaiting", "KGST at the partner, awaiting its confirmation"
        CONFIRMED = "confirmed", "paid out to the person (confirmed by the partner)"
        FAILED = "failed", "the partner could not pay out"

    transfer = models.OneToOneField("payments.Transfer", on_delete=models.PROTECT, related_name="partner_payout")
    payout_partner = models.ForeignKey(PayoutPartner, on_delete=models.PROTECT, related_name="payouts")
    reference = models.CharField(max_length=16, unique=True, default=new_payout_reference, editable=False)
    recipient_account = models.CharField(max_length=64, help_text="The recipient's account or phone at the partner.")
    status = StatusField(default=Status.PENDING, choices=Status.choices)
    tx_hash = models.CharField(max_length=66, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True, help_text="When its KGST was final at the partner.")
    confirmed_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    failure_reason = models.CharField(max_length=300, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    returned_at = models.DateTimeField(null=True, blank=True, help_text="When treasury recorded the KGST of this "
                                                                         "failed payout back in the float.")

    objects = PartnerPayoutQuerySet.as_manager()

    class Meta:
        # A staff action (payments/guarded_payout_partners.py); staff/roles.py grants it to treasury.
        permissions = [("record_payout_return", "Can record the KGST of a failed partner payout returned to the float")]
        indexes = [models.Index(fields=["payout_partner", "status", "sent_at"]),
                   models.Index(fields=["status", "sent_at"], condition=Q(escalated_at__isnull=True),
                                name="payout_awaiting_unescalated")]

    def __str__(self):
        return f"payout {self.reference} via {self.payout_partner_id} ({self.status})"

    @transition(field=status, source=Status.PENDING, target=Status.AWAITING)
    def mark_sent(self, *, tx_hash, at):
        self.tx_hash, self.sent_at = tx_hash or "", at

    @transition(field=status, source=Status.AWAITING, target=Status.CONFIRMED)
    def mark_confirmed(self, at):
        self.confirmed_at = at

    @transition(field=status, source=Status.AWAITING, target=Status.FAILED)
    def mark_failed(self, reason, at):
        self.failure_reason, self.failed_at = reason[:300], at

    @property
    def age(self):
        return timezone.now() - self.sent_at if self.sent_at else None
