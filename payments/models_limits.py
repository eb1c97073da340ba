"""Limits, KYC tiers and the travel rule (payments/services/limits.py, payments/services/travel_rule.py)."""

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from simple_history.models import HistoricalRecords

from onchain.fields import AddressField
from payments.currencies import SOURCE_CURRENCIES


class LimitTier(models.Model):
    """What a sender of one KYC tier may send in one corridor (source currency), per transfer, per day (the last 24
    hours) and per 30 days (the last 30 × 24 hours), counted by each identity (phone, email, ID document, card).
    The highest tier's limits are the hard maximum: a transfer above them is refused at creation. Edited in admin."""

    class Tier(models.IntegerChoices):
        BASIC = 0, "0: name and phone"
        ID_DOCUMENT = 1, "1: ID document"
        PROOF_OF_FUNDS = 2, "2: proof of funds"

    source_currency = models.CharField(max_length=3, choices=SOURCE_CURRENCIES)
    tier = models.PositiveSmallIntegerField(choices=Tier.choices)
    per_transfer = models.DecimalField(max_digits=14, decimal_places=2)
    per_day = models.DecimalField(max_digits=14, decimal_places=2)
    per_30_days = models.DecimalField(max_digits=14, decimal_places=2)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source_currency", "tier"], name="one_limit_per_corridor_tier"),
            models.CheckConstraint(condition=Q(per_transfer__gt=0) & Q(per_day__gte=models.F("per_transfer"))
                                   & Q(per_30_days__gte=models.F("per_day")), name="limit_tier_sane"),
        ]
        ordering = ["source_currency", "tier"]

    def __str__(self):
        return f"{self.source_currency} tier {self.tier}"

    def clean(self):
        errors = {}
        if self.per_transfer is not None and self.per_transfer <= 0:
            errors["per_transfer"] = "Must be above zero."
        if None not in (self.per_transfer, self.per_day) and self.per_day < self.per_transfer:
            errors["per_day"] = "The daily limit cannot be below the per-transfer limit."
        if None not in (self.per_day, self.per_30_days) and self.per_30_days < self.per_day:
            errors["per_30_days"] = "The 30-day limit cannot be below the daily limit."
        others = LimitTier.objects.filter(source_currency=self.source_currency).exclude(pk=self.pk)
        lower = others.filter(tier__lt=self.tier).order_by("-tier").first()
        higher = others.filter(tier__gt=self.tier).order_by("tier").first()
        for name in ("per_transfer", "per_day", "per_30_days"):
            mine = getattr(self, name)
            if mine is None or name in errors:
                continue
            if lower and mine < getattr(lower, name):
                errors[name] = f"Cannot be below tier {lower.tier}'s {getattr(lower, name)}."
            elif higher and mine > getattr(higher, name):
                errors[name] = f"Cannot be above tier {higher.tier}'s {getattr(higher, name)}."
        if errors:
            raise ValidationError(errors)


class SenderProfile(models.Model):
    """What one sender (normalised phone and email) has provided and what an operator verified: the KYC tier.
    The ID number is kept only as a keyed hash (it counts the document's limits); never in clear."""

    phone = models.CharField(max_length=20)
    email = models.CharField(max_length=254)
    id_type = models.CharField(max_length=20, blank=True, choices=[("passport", "passport"),
                                                                   ("national_id", "national ID card"),
                                                                   ("residence_permit", "residence permit")])
    id_country = models.CharField(max_length=2, blank=True, help_text="ISO 3166-1 alpha-2 of the issuing country")
    id_number_hash = models.CharField(max_length=64, blank=True, editable=False)
    id_number_last4 = models.CharField(max_length=4, blank=True, editable=False)
    id_expiry = models.DateField(null=True, blank=True)
    id_recorded_by = models.CharField(max_length=150, blank=True, editable=False)
    id_recorded_at = models.DateTimeField(null=True, blank=True, editable=False)
    id_verified_by = models.CharField(max_length=150, blank=True, editable=False)
    id_verified_at = models.DateTimeField(null=True, blank=True, editable=False)
    funds_reference = models.CharField(max_length=200, blank=True,
                                       help_text="Where the proof of funds is kept (document reference)")
    funds_recorded_by = models.CharField(max_length=150, blank=True, editable=False)
    funds_verified_by = models.CharField(max_length=150, blank=True, editable=False)
    funds_verified_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["phone", "email"], name="one_profile_per_sender")]
        permissions = [("verify_sender_id", "Can verify a sender's ID document (KYC tier 1)"),
                       ("verify_sender_funds", "Can verify a sender's proof of funds (KYC tier 2)")]

    def __str__(self):
        return f"sender {self.phone} {self.email} (tier {self.tier})"

    @property
    def id_valid(self):
        return bool(self.id_verified_at and self.id_number_hash
                    and (self.id_expiry is None or self.id_expiry >= timezone.localdate()))

    @property
    def tier(self):
        if not self.id_valid:
            return LimitTier.Tier.BASIC
        return LimitTier.Tier.PROOF_OF_FUNDS if self.funds_verified_at else LimitTier.Tier.ID_DOCUMENT


class LimitIdentity(models.Model):
    """One row per counted identity (kind, sha256 of its normalised value): reservations for it are made under this
    row's lock (an upsert that locks it), so concurrent transfers of one sender count one after the other."""

    kind = models.CharField(max_length=10)
    key = models.CharField(max_length=64)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["kind", "key"], name="one_limit_identity")]
        verbose_name_plural = "limit identities"

    def __str__(self):
        return f"{self.kind} {self.key[:8]}…"


class LimitReservation(models.Model):
    """A transfer's amount counted against one identity's limits. It counts while its transfer is live; a transfer that
    ends cancelled, expired, refunded or charged back releases it (limits.RELEASED: derived from the status, so no
    step can forget to release)."""

    transfer = models.ForeignKey("payments.Transfer", on_delete=models.CASCADE, related_name="limit_reservations")
    kind = models.CharField(max_length=10)
    key = models.CharField(max_length=64)
    currency = models.CharField(max_length=3)
    amount_minor = models.BigIntegerField()
    created_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["transfer", "kind"], name="one_reservation_per_identity_kind"),
                       models.CheckConstraint(condition=Q(amount_minor__gt=0), name="reservation_positive")]
        indexes = [models.Index(fields=["kind", "key", "currency", "created_at"])]

    def __str__(self):
        return f"{self.kind} {self.key[:8]}… {self.amount_minor} {self.currency}"


class TravelRuleRecord(models.Model):
    """Originator and beneficiary data kept with a transfer of USD 1,000 or more (or the equivalent; the
    comparison in som is recorded too). Personal data: only what the travel rule asks for, never logged."""

    transfer = models.OneToOneField("payments.Transfer", on_delete=models.PROTECT, related_name="travel_rule")
    originator_name = models.CharField(max_length=140)
    originator_address = models.CharField(max_length=300)
    originator_date_of_birth = models.DateField(null=True, blank=True)
    originator_id_number = models.CharField(max_length=40, blank=True)
    originator_account = models.CharField(max_length=100, help_text="account or wallet reference; the transfer id "
                                                                    "when the sender gave none")
    beneficiary_name = models.CharField(max_length=140)
    beneficiary_wallet = AddressField()
    beneficiary_country = models.CharField(max_length=2)
    amount_kgs = models.DecimalField(max_digits=18, decimal_places=2, help_text="the amount converted to som")
    threshold_kgs = models.DecimalField(max_digits=18, decimal_places=2, help_text="USD 1,000 in som at the time")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.CheckConstraint(
            condition=Q(originator_date_of_birth__isnull=False) | ~Q(originator_id_number=""),
            name="travel_rule_dob_or_id")]

    def __str__(self):
        return f"travel rule data of transfer {self.transfer_id}"
