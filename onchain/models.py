"""Chains, tokens, hot wallets, payouts, the batches that carry them and each signed attempt.

A payout is what the settlement engine owes. A batch is one nonce of one hot wallet carrying one or
more payouts (through our BatchPayout contract, or as a plain ERC-20 transfer when batching is off).
A chain transaction is one signed attempt at that nonce: the first, or a fee-bumped replacement.
Signed bytes are committed before they are broadcast, so a crash at any line leaves either nothing
sent or transactions we can rebroadcast byte for byte. docs/settlement.md has the invariants.
"""

import hashlib
import uuid

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django_fsm import transition
from simple_history.models import HistoricalRecords

from common.status import StatusField, StatusModel, StatusQuerySet
from onchain.fields import AddressField, Uint256Field


def validate_explorer_tx_url(value):
    """An http(s) address with exactly one `{tx_hash}` and no other braces: it is filled with str.format, and a page
    links to it."""
    if value and (not value.startswith(("https://", "http://")) or value.count("{") != 1 or value.count("}") != 1
                  or "{tx_hash}" not in value):
        raise ValidationError("An http(s) URL containing {tx_hash} once and no other braces, e.g. "
                              "https://bscscan.com/tx/{tx_hash}.")


class Chain(models.Model):
    class Protocol(models.TextChoices):
        # How the engine signs, sends and follows transactions there (onchain.services.drivers). Tron would be a second
        # driver: docs/settlement.md "Tron (not built)".
        EVM = "evm", "EVM (BNB Chain, Ethereum)"

    chain_id = models.PositiveBigIntegerField(unique=True)
    name = models.CharField(max_length=64)
    protocol = models.CharField(max_length=10, choices=Protocol.choices, default=Protocol.EVM)
    confirmations = models.PositiveSmallIntegerField(
        default=2, help_text="Depth (including its own block) that makes a block final where the chain has no "
                             "`finalized` tag, or when the tag is not used.")
    use_finalized_tag = models.BooleanField(default=False, help_text="Ask the node for the `finalized` block.")
    eip1559 = models.BooleanField(default=True, help_text="Type-2 transactions; off sends legacy gas-price ones.")
    max_fee_per_gas_ceiling = Uint256Field(null=True, blank=True,
                                           help_text="Never sign with a higher max fee (or gas price), in wei.")
    stuck_after_seconds = models.PositiveIntegerField(default=30,
                                                      help_text="Replace a transaction unmined after this long.")
    explorer_tx_url = models.CharField(max_length=200, blank=True, validators=[validate_explorer_tx_url],
                                       help_text="e.g. https://bscscan.com/tx/{tx_hash}; empty: no link on the status "
                                                 "pages")
    # The finality rule in time: status pages estimate how long a payout takes from this and `confirmations`.
    block_time_ms = models.PositiveIntegerField(default=3000, help_text="Typical time between blocks, in "
                                                "milliseconds (BNB Chain: 450).")
    # Recorded by each tracking pass, so status reads count confirmations without asking the node.
    head_block = models.PositiveBigIntegerField(null=True, blank=True, editable=False)
    head_seen_at = models.DateTimeField(null=True, blank=True, editable=False)

    # Who changed which setting, when and why (admin asks for a reason); the head is not a setting.
    history = HistoricalRecords(excluded_fields=["head_block", "head_seen_at"])

    def __str__(self):
        return f"{self.name} ({self.chain_id})"

    def tx_url(self, tx_hash):
        if not (self.explorer_tx_url and tx_hash):
            return ""
        return self.explorer_tx_url.replace("{tx_hash}", tx_hash)


class Token(models.Model):
    chain = models.ForeignKey(Chain, on_delete=models.PROTECT, related_name="tokens")
    symbol = models.CharField(max_length=16)
    address = AddressField()
    decimals = models.PositiveSmallIntegerField()
    batch_contract = AddressField(blank=True, help_text="Our BatchPayout contract holding this token's float.")
    low_float_base_units = Uint256Field(null=True, blank=True, help_text="Alert operators below this float.")
    gas_per_payout = models.PositiveIntegerField(
        null=True, blank=True,
        help_text="Gas limit per payout of a batch in this token, measured on the chain when the token is registered "
                  "(onchain.services.token_gas); empty: the global BATCH_GAS_PER_PAYOUT.")
    balance_slot = models.PositiveSmallIntegerField(
        null=True, blank=True,
        help_text="Storage slot of the token's balanceOf mapping (Solidity layout), found on the chain when the token "
                  "is registered; batches then list their recipients' balance slots in the transaction's access "
                  "list (~100 gas less per payout). Empty: no access list.")

    history = HistoricalRecords()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["chain", "address"], name="token_unique_per_chain"),
            models.UniqueConstraint(fields=["chain", "symbol"], name="token_symbol_unique_per_chain"),
        ]

    def __str__(self):
        return f"{self.symbol} on {self.chain.name}"


class HotWallet(models.Model):
    chain = models.ForeignKey(Chain, on_delete=models.PROTECT, related_name="hot_wallets")
    address = AddressField()
    # The name of the environment variable that holds the key: the key itself never enters the database.
    key_env = models.CharField(max_length=64, default="HOT_WALLET_PRIVATE_KEY")
    next_nonce = models.PositiveBigIntegerField(null=True, blank=True,
                                                help_text="Read from the chain on first use, then claimed under a row lock.")
    is_active = models.BooleanField(default=True)
    halted = models.BooleanField(default=False)
    halt_reason = models.CharField(max_length=300, blank=True)
    max_tx_base_units = Uint256Field(null=True, blank=True,
                                     help_text="Ceiling on what one transaction may send, checked before signing.")
    daily_limit_base_units = Uint256Field(null=True, blank=True,
                                          help_text="Ceiling on what this wallet signs per UTC day.")
    low_gas_wei = Uint256Field(null=True, blank=True, help_text="Alert operators below this gas balance.")
    # The last measured gas (treasury_check, every minute), so admin pages never wait on the chain to show it.
    gas_wei = Uint256Field(null=True, blank=True, editable=False)
    gas_measured_at = models.DateTimeField(null=True, blank=True, editable=False)

    # Settings, limits and halts (with the halt's reason); the nonce and the measured gas are bookkeeping, updated
    # outside save().
    history = HistoricalRecords(excluded_fields=["next_nonce", "gas_wei", "gas_measured_at"])

    class Meta:
        constraints = [models.UniqueConstraint(fields=["chain", "address"], name="hot_wallet_unique_per_chain")]
        # Staff actions (onchain/guarded.py), each its own permission; staff/roles.py grants them.
        permissions = [("halt_wallet", "Can halt sending from a hot wallet"),
                       ("resume_wallet", "Can resume a halted hot wallet (a nonce halt with a second person)"),
                       ("resync_nonce", "Can resync a hot wallet's nonce from the chain")]

    def __str__(self):
        return f"{self.address} on {self.chain.name}"


class BatchQuerySet(StatusQuerySet):
    def mark_final(self, at):
        """mined → final for a set of batches (a block's), compare-and-set in one statement; the caller holds their
        row locks and compares the count. Batch.mark_final is the same transition for one instance."""
        return self._move(source=[Batch.Status.MINED], target=Batch.Status.FINAL, final_at=at)


class Batch(StatusModel):
    """One nonce of one wallet. `onchain_id` is what the BatchPayout contract records as paid, so no two
    transactions can ever pay the same batch, whatever happens to nonces."""

    class Mode(models.TextChoices):
        CONTRACT = "contract", "BatchPayout contract"
        SINGLE = "single", "plain ERC-20 transfer"

    class Status(models.TextChoices):
        SIGNED = "signed", "signed, not yet accepted by a node"
        BROADCAST = "broadcast", "sent, not yet mined"
        MINED = "mined", "mined, waiting for finality"
        FINAL = "final", "final"
        REVERTED = "reverted", "reverted on chain (final)"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    token = models.ForeignKey(Token, on_delete=models.PROTECT, related_name="batches")
    wallet = models.ForeignKey(HotWallet, on_delete=models.PROTECT, related_name="batches")
    nonce = models.PositiveBigIntegerField()
    mode = models.CharField(max_length=10, choices=Mode.choices)
    count = models.PositiveIntegerField()
    total_base_units = Uint256Field()
    status = StatusField(default=Status.SIGNED, choices=Status.choices)
    mined_tx = models.ForeignKey("ChainTransaction", null=True, blank=True, on_delete=models.PROTECT,
                                 related_name="+")
    block_number = models.PositiveBigIntegerField(null=True, blank=True)
    block_hash = models.CharField(max_length=66, blank=True)
    succeeded = models.BooleanField(null=True, blank=True, help_text="The receipt's status once mined.")
    created_at = models.DateTimeField(auto_now_add=True)
    broadcast_at = models.DateTimeField(null=True, blank=True)
    mined_at = models.DateTimeField(null=True, blank=True)
    final_at = models.DateTimeField(null=True, blank=True)
    send_attempts = models.PositiveIntegerField(default=0, help_text="Broadcast tasks started (crash counter).")

    objects = BatchQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "batches"
        constraints = [models.UniqueConstraint(fields=["wallet", "nonce"], name="one_batch_per_nonce")]
        indexes = [models.Index(fields=["status"])]

    def __str__(self):
        return f"batch {self.id} nonce {self.nonce} ({self.count} payouts, {self.status})"

    @property
    def onchain_id(self):
        return "0x" + self.id.hex.rjust(64, "0")

    @transition(field=status, source=[Status.SIGNED, Status.BROADCAST], target=Status.BROADCAST)
    def mark_broadcast(self, at):
        self.broadcast_at = self.broadcast_at or at

    @transition(field=status, source=[Status.SIGNED, Status.BROADCAST], target=Status.MINED)
    def mark_mined(self, *, tx, block_number, block_hash, succeeded, at):
        self.mined_tx, self.block_number, self.block_hash, self.mined_at = tx, block_number, block_hash, at
        self.succeeded = succeeded

    @transition(field=status, source=Status.MINED, target=Status.BROADCAST)
    def mark_reorged(self):
        """Its block left the canonical chain: the same bytes go out again."""
        self.mined_tx, self.block_number, self.block_hash, self.mined_at = None, None, "", None
        self.succeeded = None

    @transition(field=status, source=Status.MINED, target=Status.FINAL)
    def mark_final(self, at):
        self.final_at = at

    @transition(field=status, source=Status.MINED, target=Status.REVERTED)
    def mark_reverted(self, at):
        self.final_at = at


class ChainTransaction(StatusModel):
    """One signed attempt at a batch's nonce: the original or a replacement with higher fees."""

    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        MINED = "mined", "mined"
        SUPERSEDED = "superseded", "another attempt at this nonce was mined"

    batch = models.ForeignKey(Batch, on_delete=models.PROTECT, related_name="attempts")
    wallet = models.ForeignKey(HotWallet, on_delete=models.PROTECT, related_name="transactions")
    nonce = models.PositiveBigIntegerField()
    tx_hash = models.CharField(max_length=66, unique=True)
    raw_tx = models.BinaryField()
    to_address = AddressField(help_text="The contract called: the batch contract or the token.")
    data = models.BinaryField(help_text="Call data, kept so a replacement carries exactly the same call.")
    tx_type = models.PositiveSmallIntegerField(default=2)
    gas_limit = models.PositiveBigIntegerField()
    max_fee_per_gas = Uint256Field(help_text="Gas price for legacy transactions.")
    max_priority_fee_per_gas = Uint256Field()
    replaces = models.OneToOneField("self", null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="replaced_by")
    status = StatusField(default=Status.PENDING, choices=Status.choices)
    gas_used = models.PositiveBigIntegerField(null=True, blank=True)
    broadcast_count = models.PositiveIntegerField(default=0)
    last_broadcast_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = StatusQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["wallet", "nonce"])]

    def __str__(self):
        return f"nonce {self.nonce} {self.tx_hash[:12]}… ({self.status})"

    @transition(field=status, source=[Status.PENDING, Status.SUPERSEDED], target=Status.MINED)
    def mark_mined(self, gas_used):
        self.gas_used = gas_used

    @transition(field=status, source=[Status.PENDING, Status.MINED], target=Status.SUPERSEDED)
    def mark_superseded(self):
        self.gas_used = None

    @transition(field=status, source=[Status.MINED, Status.SUPERSEDED], target=Status.PENDING)
    def mark_unmined(self):
        self.gas_used = None


class PayoutQuerySet(StatusQuerySet):
    """Payouts move in sets (a batch at a time): each method is a guarded compare-and-set in one statement and
    returns how many rows moved."""

    def mark_batched(self, batch):
        return self._move(source=[Payout.Status.QUEUED], target=Payout.Status.BATCHED, batch=batch)

    def mark_confirmed(self):
        return self._move(source=[Payout.Status.BATCHED], target=Payout.Status.CONFIRMED)

    def mark_failed(self, reason):
        return self._move(source=[Payout.Status.QUEUED, Payout.Status.BATCHED], target=Payout.Status.FAILED,
                          failure_reason=reason[:300])

    def mark_requeued(self):
        """batched → queued, only for payouts of a batch that reverted on chain (final): that transaction spent the
        batch's nonce, so none of its attempts can ever be mined, and it paid nothing. The payout leaves the batch
        and waits for a new one (a new batch id and nonce). A payout of any other batch, or a failed one (its caller
        may have refunded it), never goes back."""
        return self.filter(batch__status=Batch.Status.REVERTED)._move(
            source=[Payout.Status.BATCHED], target=Payout.Status.QUEUED, batch=None, requeues=F("requeues") + 1)


class Payout(StatusModel):
    class Status(models.TextChoices):
        QUEUED = "queued", "queued"
        BATCHED = "batched", "in a signed batch"
        CONFIRMED = "confirmed", "final on chain"
        FAILED = "failed", "failed, operator decides"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # The caller's id for what this pays (a transfer): one payout per reference, ever.
    reference = models.CharField(max_length=64, unique=True)
    token = models.ForeignKey(Token, on_delete=models.PROTECT, related_name="payouts")
    to_address = AddressField()
    amount_base_units = Uint256Field()
    status = StatusField(default=Status.QUEUED, choices=Status.choices)
    batch = models.ForeignKey(Batch, null=True, blank=True, on_delete=models.PROTECT, related_name="payouts")
    failure_reason = models.CharField(max_length=300, blank=True)
    requeues = models.PositiveSmallIntegerField(
        default=0, editable=False,
        help_text="Times put back in the queue because its batch reverted over another payout (mark_requeued).")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = PayoutQuerySet.as_manager()

    class Meta:
        constraints = [models.CheckConstraint(condition=~Q(amount_base_units=0), name="payout_amount_positive")]
        indexes = [models.Index(fields=["status", "created_at"])]

    def __str__(self):
        return f"payout {self.reference} ({self.status})"


class OperatorAlert(models.Model):
    """Something an operator must see: low float or gas, a reconciliation mismatch, a fee ceiling hit."""

    class Kind(models.TextChoices):
        LOW_FLOAT = "low_float", "low token float"
        LOW_GAS = "low_gas", "low gas balance"
        RECONCILIATION = "reconciliation", "reconciliation mismatch"
        FEE_CEILING = "fee_ceiling", "fee ceiling reached"
        NONCE = "nonce", "nonce disagreement"
        LIMIT = "limit", "ceiling or daily limit reached"
        FUNDING = "funding", "card funding problem (amount mismatch, dispute, fraud warning)"
        # Raised by payments through onchain.api.operator_alert_raise: named here so admin can filter on them.
        RATES = "rates", "official rates not fetched or stale"
        PAYOUT_PARTNER = "payout_partner", "payout partner payout unconfirmed or failed"
        WEBHOOK = "webhook", "partner webhook endpoint disabled"
        STUCK_BATCH = "stuck_batch", "batch not mined long after it was signed"

    kind = models.CharField(max_length=20, choices=Kind.choices)
    wallet = models.ForeignKey(HotWallet, null=True, blank=True, on_delete=models.PROTECT, related_name="alerts")
    token = models.ForeignKey(Token, null=True, blank=True, on_delete=models.PROTECT, related_name="alerts")
    # What makes two raises the same condition (OperatorAlert.key_for): at most one open alert per key,
    # so a condition seen on every pass is raised, and delivered, once.
    key = models.CharField(max_length=160, editable=False)
    message = models.CharField(max_length=500)
    created_at = models.DateTimeField(auto_now_add=True)
    # Someone is on it: reminders stop (staff action with a reason, onchain/guarded.py); it stays open until resolved.
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["resolved_at", "kind"])]
        constraints = [models.UniqueConstraint(fields=["key"], condition=Q(resolved_at__isnull=True),
                                               name="one_open_alert_per_key")]
        permissions = [("resolve_alert", "Can mark an operator alert resolved"),
                       ("acknowledge_alert", "Can acknowledge an operator alert (stops its reminders)")]

    def __str__(self):
        return f"{self.get_kind_display()}: {self.message}"

    def save(self, *args, **kwargs):
        if not self.key:
            self.key = self.key_for(kind=self.kind, message=self.message, wallet_id=self.wallet_id,
                                    token_id=self.token_id)
        super().save(*args, **kwargs)

    @staticmethod
    def key_for(*, kind, message, wallet_id=None, token_id=None, subject=None):
        """The condition an alert stands for: its kind, wallet and token, and `subject` (what within them; the
        message when none is given). A raiser whose message carries a changing figure (a balance) names a fixed
        subject, or each pass would open, and send, a new alert."""
        what = subject if subject is not None else hashlib.sha256(message[:500].encode()).hexdigest()[:40]
        return f"{kind}|w{wallet_id or ''}|t{token_id or ''}|{what}"[:160]


class TreasurySnapshot(models.Model):
    """The last measured float and gas, so quoting never waits on the chain."""

    token = models.OneToOneField(Token, on_delete=models.CASCADE, related_name="snapshot")
    float_base_units = Uint256Field()
    measured_at = models.DateTimeField()

    def __str__(self):
        return f"{self.token}: {self.float_base_units} at {self.measured_at:%Y-%m-%d %H:%M:%S}"


class ReconciliationCursor(models.Model):
    token = models.OneToOneField(Token, on_delete=models.CASCADE, related_name="reconciliation_cursor")
    last_block = models.PositiveBigIntegerField()
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"{self.token}: reconciled to block {self.last_block}"


class PayoutHalt(models.Model):
    """While any row exists, no new batch is signed (onchain.services.batches): payouts wait in the queue; batches
    already signed are still sent, tracked and made final. Set and cleared by whoever owns the reason (`key`), through
    onchain.api (`payouts_halt`, `payouts_resume`), e.g. payments' treasury reconciliation."""

    key = models.CharField(max_length=64, unique=True)
    reason = models.CharField(max_length=300)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"payouts halted ({self.key}): {self.reason}"
from onchain.models_alerts import AlertDelivery  # noqa: E402,F401
