"""Partners, rates, quotes, transfers, Stripe events and the double-entry ledger."""

import secrets
import uuid
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django_fsm import transition
from rest_framework_api_key.models import AbstractAPIKey, APIKeyManager
from simple_history.models import HistoricalRecords

from common.money import from_units, to_units
from common.status import StatusField, StatusModel, StatusQuerySet
from onchain.fields import AddressField
from payments.assets import asset_for
from payments.currencies import MINOR_DIGITS, RATE_CURRENCIES, SOURCE_CURRENCIES, TARGET_CURRENCIES  # noqa: F401
from payments.pricing import cost_percent
from payments.scopes import DEFAULT_SCOPES, UnknownScopes, scopes_clean

BISHKEK = ZoneInfo("Asia/Bishkek")  # NBKR's rates are set per calendar day there


def bishkek_today():
    return timezone.localtime(timezone.now(), BISHKEK).date()


def new_status_token():
    # 192 bits from `secrets`: status links are unguessable (RELIABILITY.md asks for at least 128).
    return secrets.token_urlsafe(24)


class Partner(models.Model):
    name = models.CharField(max_length=100, unique=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    # Changes to partners, corridors, rates and limits keep who, when, why and the old values (admin shows them).
    history = HistoricalRecords()

    # DRF treats the authenticated partner as request.user.
    is_authenticated = True

    class Meta:
        # Staff actions on a partner's prefunded balance (payments/guarded_balances.py); staff/roles.py grants them.
        permissions = [("topup_partner_balance", "Can record a partner's top-up of its balance"),
                       ("withdraw_partner_balance", "Can record a withdrawal from a partner's balance")]

    def __str__(self):
        return self.name


LIVE_MARKER, TEST_MARKER = "tlp_live_", "tlp_test_"


class PartnerAPIKeyManager(APIKeyManager):
    """Keys read `tlp_live_<prefix>.<secret>` or `tlp_test_<prefix>.<secret>`: the mode is visible in the key, and the
    library's `<prefix>.<secret>` is what is hashed and looked up (the mode lives in its own column and must match)."""

    def get_usable_keys(self):
        return super().get_usable_keys().select_related("partner")  # authentication reads the partner next

    def create_key(self, **kwargs):
        obj, key = super().create_key(**kwargs)
        return obj, (LIVE_MARKER if obj.livemode else TEST_MARKER) + key

    def get_from_key(self, key):
        for marker, livemode in ((LIVE_MARKER, True), (TEST_MARKER, False)):
            if key.startswith(marker):
                api_key = super().get_from_key(key.removeprefix(marker))
                if api_key.livemode != livemode:
                    raise self.model.DoesNotExist("The key's mode does not match.")
                return api_key
        # Keys issued before the markers (bare `<prefix>.<secret>`) stay valid, as live keys.
        api_key = super().get_from_key(key)
        if not api_key.livemode:
            raise self.model.DoesNotExist("A test key needs its tlp_test_ marker.")
        return api_key


def default_scopes():
    return list(DEFAULT_SCOPES)


class PartnerAPIKey(AbstractAPIKey):
    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="api_keys")
    scopes = models.JSONField(default=default_scopes, help_text="What the key may do (payments/scopes.py).")
    livemode = models.BooleanField(default=True, help_text="Live keys move money; test keys work in the sandbox.")
    last_used_at = models.DateTimeField(null=True, blank=True, help_text="To the minute.")
    rate_limit_per_minute = models.PositiveIntegerField(
        null=True, blank=True, help_text="Requests per minute for this key; empty: RATE_API_PER_MINUTE.")
    rotated_from = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                     help_text="The key this one replaced.")

    objects = PartnerAPIKeyManager()

    class Meta(AbstractAPIKey.Meta):
        verbose_name = "partner API key"
        permissions = [("rotate_partnerapikey", "Can rotate a partner API key"),
                       ("revoke_partnerapikey", "Can revoke a partner API key")]

    @property
    def display_prefix(self):
        return (LIVE_MARKER if self.livemode else TEST_MARKER) + self.prefix

    def clean(self):
        super().clean()
        try:
            self.scopes = scopes_clean(self.scopes)
        except UnknownScopes as exc:
            raise ValidationError({"scopes": str(exc)}) from exc

    def save(self, *args, **kwargs):
        self.scopes = scopes_clean(self.scopes)  # never store an unknown scope, whoever saves
        super().save(*args, **kwargs)


class Corridor(models.Model):
    """Pricing for one source currency into one target currency (KGS or USD): margin on the official rate (a cross
    rate for RUB→USD, exactly 1 for USD→USD), fee, limits."""

    source_currency = models.CharField(max_length=3, choices=SOURCE_CURRENCIES)
    target_currency = models.CharField(max_length=3, choices=TARGET_CURRENCIES, default="KGS")
    margin_bps = models.PositiveIntegerField(help_text="Taken off the official rate, in basis points.")
    fixed_fee = models.DecimalField(max_digits=12, decimal_places=2)
    percent_fee_bps = models.PositiveIntegerField()
    min_amount = models.DecimalField(max_digits=12, decimal_places=2)
    max_amount = models.DecimalField(max_digits=12, decimal_places=2)
    # The fee (fixed + percent) is kept within these: never below min_fee, never above max_fee (none: no cap).
    min_fee = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    max_fee = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    is_active = models.BooleanField(default=True)

    history = HistoricalRecords()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source_currency", "target_currency"], name="corridor_unique_pair"),
            models.CheckConstraint(condition=Q(margin_bps__lt=10000) & Q(percent_fee_bps__lt=10000), name="corridor_bps_sane"),
            models.CheckConstraint(condition=Q(min_amount__gt=0) & Q(max_amount__gte=models.F("min_amount")),
                                   name="corridor_limits_sane"),
            models.CheckConstraint(
                condition=Q(fixed_fee__gte=0) & Q(min_fee__gte=0) & Q(min_fee__lt=models.F("min_amount"))
                & (Q(max_fee__isnull=True) | Q(max_fee__gte=models.F("min_fee"))),
                name="corridor_fees_sane"),
        ]

    def __str__(self):
        return f"{self.source_currency}→{self.target_currency}"


class Rate(models.Model):
    """An official rate (som per unit of source currency) as published by the rate source, recorded once per
    (source, value date, value). `effective_at` is when it takes effect: the start of its value date in Bishkek for
    NBKR, the moment it was typed for a manual rate; quotes use the latest one in effect (payments/services/rates.py)."""

    source_currency = models.CharField(max_length=3, choices=SOURCE_CURRENCIES)
    target_currency = models.CharField(max_length=3, choices=RATE_CURRENCIES, default="KGS")
    rate = models.DecimalField(max_digits=18, decimal_places=8)
    source = models.CharField(max_length=40, default="NBKR")
    effective_at = models.DateTimeField()
    value_date = models.DateField(default=bishkek_today, help_text="The date the source set this rate for.")
    fetched_at = models.DateTimeField(default=timezone.now, help_text="When we fetched (or an operator typed) it.")
    recorded_by = models.CharField(max_length=150, blank=True, help_text="The operator, for a manual rate.")
    created_at = models.DateTimeField(auto_now_add=True)

    history = HistoricalRecords()

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(rate__gt=0), name="rate_positive")]
        indexes = [models.Index(fields=["source_currency", "-effective_at"])]

    def __str__(self):
        return f"1 {self.source_currency} = {self.rate} {self.target_currency} ({self.source}, {self.effective_at:%Y-%m-%d})"


class Quote(models.Model):
    """A firm price until `expires_at`: send `source_amount`, the recipient gets `target_amount`."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    partner = models.ForeignKey(Partner, null=True, blank=True, on_delete=models.PROTECT, related_name="quotes")
    source_currency = models.CharField(max_length=3, choices=SOURCE_CURRENCIES)
    source_amount = models.DecimalField(max_digits=12, decimal_places=2)
    target_currency = models.CharField(max_length=3, choices=TARGET_CURRENCIES)
    target_amount = models.DecimalField(max_digits=14, decimal_places=2)
    official_rate = models.DecimalField(max_digits=18, decimal_places=8)
    rate = models.DecimalField(max_digits=18, decimal_places=8, help_text="Our rate: official less the margin.")
    fee = models.DecimalField(max_digits=12, decimal_places=2)
    # send: the sender chose source_amount; receive: the sender chose target_amount (the recipient gets exactly it).
    direction = models.CharField(max_length=7, choices=[("send", "send-fixed"), ("receive", "receive-fixed")],
                                 default="send")
    official_rate_date = models.DateField(null=True, blank=True, help_text="Value date of the official rate.")
    livemode = models.BooleanField(default=True, help_text="False: made with a test key (sandbox).")
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(source_amount__gt=0) & Q(target_amount__gt=0) & Q(fee__gte=0),
                                   name="quote_amounts_positive"),
            models.CheckConstraint(condition=Q(fee__lt=models.F("source_amount")), name="quote_fee_below_amount"),
        ]

    def __str__(self):
        return f"{self.source_amount} {self.source_currency} → {self.target_amount} {self.target_currency}"

    @property
    def asset(self):
        """The stablecoin and network the recipient is paid in (payments/assets.py)."""
        return asset_for(self.target_currency)

    @property
    def total_charged(self):
        """What the sender pays: the fee is inside source_amount."""
        return self.source_amount

    @property
    def cost_percent(self):
        """Fee plus spread (and the last minor unit) against the official rate, in percent (pricing.cost_percent)."""
        return cost_percent(source_amount=self.source_amount, target_amount=self.target_amount,
                            official_rate=self.official_rate)


class TransferQuerySet(StatusQuerySet):
    def mark_completed(self, at):
        """A whole batch of payouts final on chain: settling transfers complete, compare-and-set in one statement."""
        return self._move(source=[Transfer.Status.SETTLING], target=Transfer.Status.COMPLETED, completed_at=at)

    def mark_completed_ids(self, ids, at):
        """mark_completed for the transfers whose keys are `ids`, thousands at a time (a block's payouts): one
        compare-and-set statement on PostgreSQL (common.status `_move_ids`). Returns how many moved."""
        return self._move_ids(ids, source=[Transfer.Status.SETTLING], target=Transfer.Status.COMPLETED, completed_at=at)

    def mark_paid_to_partner(self):
        """A batch's payouts to payout partners are final on chain: their settling transfers wait for each partner's
        confirmation (compare-and-set, like mark_completed)."""
        return self._move(source=[Transfer.Status.SETTLING], target=Transfer.Status.AWAITING_PAYOUT_CONFIRMATION)


class Transfer(StatusModel):
    """One remittance. `status` moves only through the transitions below (docs/states.md)."""

    class Status(models.TextChoices):
        AWAITING_FUNDING = "awaiting_funding", "awaiting funding"
        FUNDED = "funded", "funded, being screened"
        HELD = "held", "held for compliance review"
        SETTLING = "settling", "paying out on-chain"
        COMPLETED = "completed", "completed"
        EXPIRED = "expired", "expired unfunded"
        REJECTED = "rejected", "rejected by screening"
        REFUNDED = "refunded", "refunded"
        SETTLEMENT_FAILED = "settlement_failed", "settlement failed, operator decides"
        CHARGED_BACK = "charged_back", "card payment disputed before payout, nothing paid"
        REFUNDING = "refunding", "being refunded (refund asked for, not yet succeeded)"
        REFUND_FAILED = "refund_failed", "refund failed, operator decides"
        CANCELLED = "cancelled", "cancelled before payment"
        AWAITING_PAYOUT_CONFIRMATION = "awaiting_payout_confirmation", "paid to the payout partner, awaiting its confirmation"
        PAYOUT_FAILED = "payout_failed", "the payout partner could not pay out, operator decides"
        AWAITING_CLAIM = "awaiting_claim", "paid and screened, waiting for the recipient to claim it"

    class FundingMethod(models.TextChoices):
        CARD = "card", "card (Stripe PaymentIntent)"
        BALANCE = "balance", "the partner's prefunded balance"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    partner = models.ForeignKey(Partner, null=True, blank=True, on_delete=models.PROTECT, related_name="transfers")
    quote = models.OneToOneField(Quote, on_delete=models.PROTECT, related_name="transfer")
    idempotency_key = models.CharField(max_length=255)
    request_fingerprint = models.CharField(max_length=64, help_text="sha256 of the creating request's body")
    status = StatusField(default=Status.AWAITING_FUNDING, choices=Status.choices)
    # False: a sandbox transfer (test key): never charged, never paid out, never in the ledger (services/sandbox.py).
    livemode = models.BooleanField(default=True)

    sender_name = models.CharField(max_length=140)
    sender_phone = models.CharField(max_length=20)
    sender_email = models.EmailField()
    recipient_name = models.CharField(max_length=140)
    recipient_phone = models.CharField(max_length=20)
    # Empty until the recipient claims the transfer (payments/services/claims.py): the sender gave only the phone.
    recipient_wallet = AddressField(blank=True)

    # Funded by card (a Stripe PaymentIntent) or at creation from the partner's prefunded balance (services/balances.py).
    funding_method = models.CharField(max_length=8, choices=FundingMethod.choices, default=FundingMethod.CARD)
    # Card funding through a Stripe PaymentIntent (amounts as the quote's, in minor units).
    payment_intent_id = models.CharField(max_length=255, blank=True, db_index=True)
    payment_client_secret = models.CharField(max_length=255, blank=True)
    funded_at = models.DateTimeField(null=True, blank=True)
    # The card that paid (from its PaymentMethod at the pay page, then from the succeeded charge) and the pay page's
    # attempts; no card number ever reaches us, only Stripe's fingerprint and the issuing country.
    card_fingerprint = models.CharField(max_length=64, blank=True, db_index=True)
    card_country = models.CharField(max_length=2, blank=True)
    charge_id = models.CharField(max_length=255, blank=True, db_index=True)
    card_attempts = models.PositiveSmallIntegerField(default=0)
    last_card_token = models.CharField(max_length=255, blank=True)
    # Funded card payments of new senders and large amounts are paid out no earlier than this (the sweeper moves them).
    release_after = models.DateTimeField(null=True, blank=True)
    # US remittance rule (payments/services/us_remittance.py): the sender may cancel until then; no payout before it.
    cancel_window_ends_at = models.DateTimeField(null=True, blank=True)
    refund_id = models.CharField(max_length=255, blank=True)
    payout_reference = models.CharField(max_length=64, blank=True, help_text="onchain.Payout.reference")
    failure_reason = models.CharField(max_length=300, blank=True)
    # The partner's own id for this transfer (docs/api.md "References"): unique per partner when given.
    reference = models.CharField(max_length=64, blank=True, default="")
    # The language the transfer was made in (the sender's page, or the API request's Accept-Language): its
    # notifications are written in it (services/notifications.py).
    language = models.CharField(max_length=8, choices=settings.LANGUAGES, default="en")

    sender_token = models.CharField(max_length=64, unique=True, default=new_status_token, editable=False)
    recipient_token = models.CharField(max_length=64, unique=True, default=new_status_token, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    objects = TransferQuerySet.as_manager()

    class Meta:
        constraints = [
            # Web transfers have no partner and NULLs are distinct, hence the second, partial constraint.
            # Per mode too: a sandbox transfer's key never answers (or blocks) a live request.
            models.UniqueConstraint(fields=["partner", "livemode", "idempotency_key"],
                                    name="transfer_idempotency_per_partner"),
            models.UniqueConstraint(fields=["idempotency_key"], condition=Q(partner__isnull=True),
                                    name="transfer_idempotency_web"),
            # Also the index the list's `reference` filter reads (partner first, as every list query is); one per mode,
            # as test and live objects never mix.
            models.UniqueConstraint(fields=["partner", "livemode", "reference"], condition=~Q(reference=""),
                                    name="transfer_reference_per_partner"),
        ]
        indexes = [models.Index(fields=["status", "created_at"]), models.Index(fields=["partner", "-created_at"]),
                   models.Index(fields=["partner", "status", "-created_at"], name="transfer_partner_status_idx")]
        # Staff actions (payments/guarded.py), each its own permission; staff/roles.py grants them.
        permissions = [("release_transfer", "Can release a held transfer (with a second person)"),
                       ("reject_transfer", "Can reject a held transfer (it is refunded)"),
                       ("refund_transfer", "Can refund a transfer whose settlement failed"),
                       ("cancel_transfer", "Can cancel a transfer before settlement (refunded in full if paid)")]

    def __str__(self):
        return f"transfer {self.id} ({self.status})"

    @property
    def source_minor(self):
        return to_minor(self.quote.source_amount, self.quote.source_currency)

    @transition(field=status, source=Status.AWAITING_FUNDING, target=Status.FUNDED)
    def mark_funded(self, at):
        self.funded_at = at

    @transition(field=status, source=Status.AWAITING_FUNDING, target=Status.REFUNDING)
    def mark_funding_refused(self, reason):
        """A captured payment we do not accept (it does not match the quote, a refused card country, a frozen
        identity): it goes back in full, through `refunding` like every refund."""
        self.failure_reason = reason[:300]

    @transition(field=status, source=Status.AWAITING_FUNDING, target=Status.EXPIRED)
    def mark_expired(self):
        pass

    @transition(field=status, source=[Status.FUNDED, Status.AWAITING_CLAIM], target=Status.HELD)
    def mark_held(self, reason):
        self.failure_reason = reason[:300]

    @transition(field=status, source=[Status.FUNDED, Status.HELD, Status.AWAITING_CLAIM], target=Status.REJECTED)
    def mark_rejected(self, reason):
        self.failure_reason = reason[:300]

    # Recipient claim (payments/services/claims.py): screened clear with no destination yet, it waits for the
    # recipient; the claim fills the destination and sends it back to `funded`, where the usual advance screens the
    # destination and pays it (or waits for its release time).
    @transition(field=status, source=[Status.FUNDED, Status.HELD], target=Status.AWAITING_CLAIM)
    def mark_awaiting_claim(self):
        pass

    @transition(field=status, source=Status.AWAITING_CLAIM, target=Status.FUNDED)
    def mark_claimed(self):
        pass

    @transition(field=status, source=[Status.FUNDED, Status.HELD], target=Status.SETTLING)
    def mark_settling(self, payout_reference):
        self.payout_reference = payout_reference

    @transition(field=status, source=Status.SETTLING, target=Status.SETTLEMENT_FAILED)
    def mark_settlement_failed(self, reason):
        self.failure_reason = reason[:300]

    @transition(field=status, source=Status.AWAITING_PAYOUT_CONFIRMATION, target=Status.COMPLETED)
    def mark_payout_confirmed(self, at):
        """The payout partner paid the person out (its confirmation through the API)."""
        self.completed_at = at

    @transition(field=status, source=Status.AWAITING_PAYOUT_CONFIRMATION, target=Status.PAYOUT_FAILED)
    def mark_payout_failed(self, reason):
        """The payout partner could not pay the person: the KGST is at the partner, an operator decides
        (docs/runbook.md, "Payout partners")."""
        self.failure_reason = reason[:300]

    @transition(field=status, source=[Status.REJECTED, Status.SETTLEMENT_FAILED, Status.FUNDED, Status.HELD,
                                      Status.PAYOUT_FAILED, Status.AWAITING_CLAIM],
                target=Status.REFUNDING)
    def mark_refunding(self, reason=None):
        """The money goes back: recorded before the refund is asked for (its idempotency key derives from the
        transfer, so a crash after the call gets the same refund back). Rejected and failed settlements come here from
        the refund task; funded and held transfers when the sender or an operator cancels them."""
        if reason:
            self.failure_reason = reason[:300]

    @transition(field=status, source=Status.REFUNDING, target=Status.REFUNDED)
    def mark_refunded(self, refund_id):
        """The refund's own status is `succeeded` (a pending refund is not refunded)."""
        self.refund_id = refund_id

    @transition(field=status, source=[Status.REFUNDING, Status.REFUNDED], target=Status.REFUND_FAILED)
    def mark_refund_failed(self, reason):
        """The refund failed or was cancelled (also after it had succeeded: card refunds can fail days later); the
        money is back with us and owed to the sender. An operator decides (docs/runbook.md)."""
        self.failure_reason = reason[:300]

    @transition(field=status, source=Status.AWAITING_FUNDING, target=Status.CANCELLED)
    def mark_cancelled(self, reason):
        """Cancelled before any payment, its PaymentIntent cancelled first: nothing was charged, nothing is posted."""
        self.failure_reason = reason[:300]

    @transition(field=status, source=[Status.AWAITING_FUNDING, Status.FUNDED, Status.HELD, Status.REJECTED,
                                      Status.REFUNDING, Status.REFUND_FAILED, Status.AWAITING_CLAIM],
                target=Status.CHARGED_BACK)
    def mark_charged_back(self, reason):
        """The cardholder's bank took the payment back (a dispute) before any payout: nothing will be paid, and
        nothing can be refunded (Stripe refuses refunds on a disputed charge). From `refund_failed`: the chargeback
        returned what the failed refund left owed to the sender."""
        self.failure_reason = reason[:300]


class StripeEvent(models.Model):
    """Each Stripe event id is applied once: the unique id makes a redelivery a no-op."""

    event_id = models.CharField(max_length=255, unique=True)
    event_type = models.CharField(max_length=100)
    object_id = models.CharField(max_length=255, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"{self.event_type} {self.event_id}"


class CardDispute(models.Model):
    """A dispute or an early fraud warning Stripe reported on a transfer's charge: applied once per Stripe object."""

    class Kind(models.TextChoices):
        DISPUTE = "dispute", "dispute (chargeback)"
        EARLY_FRAUD_WARNING = "early_fraud_warning", "early fraud warning"

    stripe_id = models.CharField(max_length=255, unique=True)
    kind = models.CharField(max_length=24, choices=Kind.choices)
    transfer = models.ForeignKey(Transfer, null=True, blank=True, on_delete=models.PROTECT, related_name="disputes")
    charge_id = models.CharField(max_length=255, blank=True)
    payment_intent_id = models.CharField(max_length=255, blank=True, db_index=True)
    amount_minor = models.BigIntegerField(null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    reason = models.CharField(max_length=100, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"{self.kind} {self.stripe_id}"


class Freeze(models.Model):
    """An identity that may not send or receive: set by a dispute or an early fraud warning (or an operator),
    consulted when a transfer is created, at the pay page, at funding and at screening. Lifted, never deleted."""

    class Kind(models.TextChoices):
        EMAIL = "email", "sender email"
        PHONE = "phone", "sender phone"
        CARD = "card", "card fingerprint"
        WALLET = "wallet", "recipient wallet"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    value = models.CharField(max_length=254, help_text="normalised: email lower-case, phone E.164, wallet lower-case")
    reason = models.CharField(max_length=300)
    source = models.CharField(max_length=255, blank=True, help_text="what froze it, e.g. a Stripe dispute id")
    transfer = models.ForeignKey(Transfer, null=True, blank=True, on_delete=models.PROTECT, related_name="freezes")
    created_at = models.DateTimeField(auto_now_add=True)
    lifted_at = models.DateTimeField(null=True, blank=True)
    lifted_by = models.CharField(max_length=150, blank=True)
    lift_reason = models.CharField(max_length=300, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["kind", "value"], condition=Q(lifted_at__isnull=True),
                                               name="one_active_freeze_per_identity")]
        indexes = [models.Index(fields=["kind", "value"])]

    def __str__(self):
        return f"{self.kind} {self.value}{' (lifted)' if self.lifted_at else ''}"


class VelocityCounter(models.Model):
    """Card attempts per identity (kind, sha256 of the normalised value) in one fixed window; incremented with an
    atomic upsert in the attempt's transaction, so every process shares the count (payments/services/fraud.py)."""

    kind = models.CharField(max_length=10)
    key = models.CharField(max_length=64)
    window_seconds = models.PositiveIntegerField()
    window_start = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["kind", "key", "window_seconds", "window_start"],
                                               name="one_counter_per_window")]

    def __str__(self):
        return f"{self.kind} {self.key[:8]}… {self.count} since {self.window_start:%Y-%m-%d %H:%M}"


class LedgerAccount(models.Model):
    """One account per (code, currency), and per partner for a partner's own accounts (its prefunded balance)."""

    code = models.CharField(max_length=64)
    currency = models.CharField(max_length=3)
    partner = models.ForeignKey(Partner, null=True, blank=True, on_delete=models.PROTECT, related_name="ledger_accounts")

    class Meta:
        constraints = [
            # NULLs are distinct, hence one constraint for the house's accounts and one for partners' accounts.
            models.UniqueConstraint(fields=["code", "currency"], condition=Q(partner__isnull=True),
                                    name="ledger_account_unique"),
            models.UniqueConstraint(fields=["code", "currency", "partner"], condition=Q(partner__isnull=False),
                                    name="ledger_partner_account_unique"),
        ]

    def __str__(self):
        return f"{self.code}:{self.currency}" + (f":{self.partner_id}" if self.partner_id else "")


class JournalEntry(models.Model):
    """One balanced posting, for one step of one transfer ((transfer, kind) unique, so a retried step posts once), or
    for a movement of no transfer (a partner's top-up or withdrawal, a reconciliation adjustment) under its own
    `reference` ((kind, reference) unique)."""

    transfer = models.ForeignKey(Transfer, null=True, blank=True, on_delete=models.PROTECT,
                                 related_name="journal_entries")
    kind = models.CharField(max_length=32)
    reference = models.CharField(max_length=100, blank=True)
    memo = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Inserted False, its postings added, then set True; the database then refuses an unbalanced entry and any later
    # change (the ledger_triggers migration; docs/ledger.md). Balances count posted entries only.
    posted = models.BooleanField(default=False, db_default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["transfer", "kind"], name="one_entry_per_step"),
            models.UniqueConstraint(fields=["kind", "reference"], condition=Q(transfer__isnull=True),
                                    name="one_entry_per_reference"),
            models.CheckConstraint(condition=Q(transfer__isnull=False) | ~Q(reference=""),
                                   name="entry_has_transfer_or_reference"),
        ]
        verbose_name_plural = "journal entries"

    def __str__(self):
        return f"{self.kind} for {self.transfer_id or self.reference}"


class Posting(models.Model):
    """Positive amounts debit, negative credit, in the account's minor units."""

    entry = models.ForeignKey(JournalEntry, on_delete=models.PROTECT, related_name="postings")
    account = models.ForeignKey(LedgerAccount, on_delete=models.PROTECT, related_name="postings")
    amount_minor = models.BigIntegerField()

    class Meta:
        constraints = [models.CheckConstraint(condition=~Q(amount_minor=0), name="posting_nonzero")]

    def __str__(self):
        return f"{self.account}: {self.amount_minor:+d}"


def to_minor(amount, currency):
    """Decimal major units → integer minor units of `currency`, refusing anything finer than it allows."""
    return to_units(amount, MINOR_DIGITS[currency])


def from_minor(amount_minor, currency):
    """Integer minor units → Decimal major units of `currency` (exact), the one way back from to_minor."""
    return from_units(amount_minor, MINOR_DIGITS[currency])


class ReconciliationItemQuerySet(StatusQuerySet):
    def open(self):
        return self.filter(status=ReconciliationItem.Status.OPEN)


class ReconciliationItem(StatusModel):
    """A difference a reconciliation job found between our books and an outside record (Stripe, a partner's statement,
    the chain), in major units of `currency`: `expected` is what our ledger says, `actual` what the outside record
    says. One open item per (kind, subject); a job that sees the same subject again updates it (last_seen_at).
    An operator resolves it with a reason (payments/guarded.py); docs/runbook.md says what each kind means."""

    class Kind(models.TextChoices):
        CARD_PAYMENT = "card_payment", "card payment (Stripe PaymentIntent)"
        CARD_REFUND = "card_refund", "card refund (Stripe refund)"
        CARD_DISPUTE = "card_dispute", "card dispute (Stripe dispute)"
        PARTNER_BALANCE = "partner_balance", "partner balance vs its statement"
        TREASURY = "treasury", "KGST float vs the chain"

    class Status(models.TextChoices):
        OPEN = "open", "open"
        RESOLVED = "resolved", "resolved"

    kind = models.CharField(max_length=20, choices=Kind.choices)
    subject = models.CharField(max_length=200, help_text="What differs: a Stripe id, a partner statement, a token.")
    currency = models.CharField(max_length=4)
    expected = models.DecimalField(max_digits=40, decimal_places=18, help_text="What our ledger says.")
    actual = models.DecimalField(max_digits=40, decimal_places=18, help_text="What Stripe, the partner or the chain says.")
    detail = models.CharField(max_length=500)
    halts_payouts = models.BooleanField(default=False, help_text="A treasury shortfall: payouts stop until resolved.")
    status = StatusField(default=Status.OPEN, choices=Status.choices)
    detected_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.CharField(max_length=150, blank=True)
    resolution = models.TextField(blank=True, help_text="The operator's reason.")

    objects = ReconciliationItemQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["kind", "subject"], condition=Q(status="open"),
                                               name="one_open_item_per_subject")]
        indexes = [models.Index(fields=["status", "kind"])]
        permissions = [("resolve_reconciliation_item", "Can resolve a reconciliation difference (with a reason)")]

    def __str__(self):
        return f"{self.get_kind_display()} {self.subject}: {self.difference:+f} {self.currency} ({self.status})"

    @property
    def difference(self):
        return (self.actual - self.expected).normalize()

    @transition(field=status, source=Status.OPEN, target=Status.RESOLVED)
    def mark_resolved(self, *, by, reason, at):
        self.resolved_by, self.resolution, self.resolved_at = by, reason, at


class PartnerStatement(models.Model):
    """A partner's closing balance with us at the end of `as_of` (TIME_ZONE), from the partner's own books, typed in
    by an operator. The partner-balance job compares it once with the ledger's balance at the same moment."""

    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, related_name="statements")
    currency = models.CharField(max_length=3, choices=SOURCE_CURRENCIES)
    as_of = models.DateField(help_text="The statement's date: its closing balance, end of that day.")
    closing_balance = models.DecimalField(max_digits=14, decimal_places=2)
    reference = models.CharField(max_length=200, blank=True, help_text="The statement's own reference or file name.")
    recorded_by = models.CharField(max_length=150, blank=True, editable=False)
    recorded_at = models.DateTimeField(auto_now_add=True)
    compared_at = models.DateTimeField(null=True, blank=True, editable=False)
    ledger_balance = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True, editable=False)

    def __str__(self):
        return f"{self.partner} {self.currency} {self.as_of}: {self.closing_balance}"


# Screening results and review decisions (docs/compliance.md, "Review") ------------------------------------------

class AppendOnlyQuerySet(models.QuerySet):
    """Rows are only ever added: updates and deletes are refused (the admin shows them read-only too)."""

    def update(self, **kwargs):
        raise TypeError(f"{self.model.__name__} rows are append-only")

    def delete(self):
        raise TypeError(f"{self.model.__name__} rows are append-only")

    def bulk_update(self, objs, fields, batch_size=None):
        raise TypeError(f"{self.model.__name__} rows are append-only")


class AppendOnlyModel(models.Model):
    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise TypeError(f"{type(self).__name__} rows are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError(f"{type(self).__name__} rows are append-only")


class ScreeningResult(AppendOnlyModel):
    """One screening run of one transfer: inline when it is funded (in the transaction that applies the decision), again
    when a new list version loads (`rescreen:<list version>`), or on an operator's request (`manual`). `hits` keeps,
    per hit, the party, the screened name, the listed name (alias or primary), score, rule, list and entry, and the
    listed entry's dates of birth and nationalities (payments/services/review.py, hit_as_json)."""

    class Decision(models.TextChoices):
        CLEAR = "clear", "clear"
        HOLD = "hold", "hold for review"
        REJECT = "reject", "reject"

    transfer = models.ForeignKey(Transfer, on_delete=models.PROTECT, related_name="screening_results")
    run_at = models.DateTimeField(default=timezone.now, db_index=True)
    trigger = models.CharField(max_length=120, help_text='"inline", "rescreen:<list version>" or "manual"')
    decision = models.CharField(max_length=10, choices=Decision.choices)
    reason = models.CharField(max_length=300, blank=True)
    status_after = models.CharField(max_length=20, help_text="The transfer's status once this result was applied.")
    list_fingerprint = models.CharField(max_length=64, blank=True)
    list_versions = models.JSONField(default=dict, blank=True)
    hits = models.JSONField(default=list, blank=True)

    class Meta:
        indexes = [models.Index(fields=["transfer", "-run_at"]), models.Index(fields=["trigger"])]
        # A staff action (payments/guarded.py); staff/roles.py grants it to compliance officers.
        permissions = [("rescreen_transfer", "Can screen a held transfer again against the lists in force")]

    def __str__(self):
        return f"{self.decision} for transfer {self.transfer_id} ({self.trigger}, {self.run_at:%Y-%m-%d %H:%M:%S})"


class ReviewDecision(AppendOnlyModel):
    """A compliance officer's decision on a held transfer, linked to the screening result it decided: approved (released,
    by a second officer when four-eyes applies: `requested_by` asked, `decided_by` approved) or rejected (refunded)."""

    class Decision(models.TextChoices):
        APPROVED = "approved", "approved: released for payout"
        REJECTED = "rejected", "rejected: refunded"

    transfer = models.OneToOneField(Transfer, on_delete=models.PROTECT, related_name="review_decision")
    screening_result = models.ForeignKey(ScreeningResult, null=True, blank=True, on_delete=models.PROTECT,
                                         related_name="decisions",
                                         help_text="The latest result when it was decided (none for a hold older "
                                                   "than the review queue).")
    decision = models.CharField(max_length=10, choices=Decision.choices)
    reason = models.TextField()
    decided_at = models.DateTimeField(default=timezone.now, db_index=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decided_by_username = models.CharField(max_length=150)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    requested_by_username = models.CharField(max_length=150, blank=True)
    approval = models.ForeignKey("staff.ApprovalRequest", null=True, blank=True, on_delete=models.PROTECT,
                                 related_name="+")

    def __str__(self):
        return f"{self.decision} transfer {self.transfer_id} by {self.decided_by_username}"


class HeldTransfer(Transfer):
    """The review queue in admin: held transfers (payments/admin_review.py)."""

    class Meta:
        proxy = True
        verbose_name = "held transfer (review queue)"
        verbose_name_plural = "review queue: held transfers"


from payments.models_claims import ClaimCode, ClaimReminder  # noqa: E402,F401
from payments.models_idempotency import *  # noqa: E402,F401,F403
from payments.models_limits import LimitIdentity, LimitReservation, LimitTier, SenderProfile, TravelRuleRecord  # noqa: E402,F401
from payments.models_notifications import Notification  # noqa: E402,F401
from payments.models_payout_partners import PartnerPayout, PayoutPartner  # noqa: E402,F401
from payments.models_sanctions import SanctionsAddress, SanctionsEntry, SanctionsListVersion, SanctionsName  # noqa: E402,F401
from payments.models_webhooks import *  # noqa: E402,F401,F403
