"""Chains, tokens, hot wallets, payouts and the transactions that carry them.

A payout is what the settlement engine owes; a chain transaction is one signed, stored attempt
at a nonce. The signed bytes are committed before they are broadcast, so a crash at any line
leaves either nothing sent or a transaction we can rebroadcast byte for byte.
"""

import uuid

from django.db import models
from django.db.models import Q
from django_fsm import FSMField, transition

from onchain.fields import AddressField, Uint256Field


class Chain(models.Model):
    chain_id = models.PositiveBigIntegerField(unique=True)
    name = models.CharField(max_length=64)
    confirmations = models.PositiveSmallIntegerField(
        default=2, help_text="Blocks on top of (and including) the one holding a payout before it is final.")
    explorer_tx_url = models.CharField(max_length=200, blank=True, help_text="e.g. https://bscscan.com/tx/{tx_hash}")

    def __str__(self):
        return f"{self.name} ({self.chain_id})"

    def tx_url(self, tx_hash):
        return self.explorer_tx_url.format(tx_hash=tx_hash) if self.explorer_tx_url and tx_hash else ""


class Token(models.Model):
    chain = models.ForeignKey(Chain, on_delete=models.PROTECT, related_name="tokens")
    symbol = models.CharField(max_length=16)
    address = AddressField()
    decimals = models.PositiveSmallIntegerField()

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
    halt_reason = models.CharField(max_length=200, blank=True)
    max_payout_base_units = Uint256Field(null=True, blank=True, help_text="Per-transaction ceiling, checked before signing.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["chain", "address"], name="hot_wallet_unique_per_chain")]

    def __str__(self):
        return f"{self.address} on {self.chain.name}"


class ChainTransaction(models.Model):
    class Status(models.TextChoices):
        SIGNED = "signed", "signed, not yet sent"
        BROADCAST = "broadcast", "sent, not yet mined"
        MINED = "mined", "mined, waiting for confirmations"
        FINAL = "final", "final"
        REVERTED = "reverted", "reverted on chain"

    wallet = models.ForeignKey(HotWallet, on_delete=models.PROTECT, related_name="transactions")
    nonce = models.PositiveBigIntegerField()
    tx_hash = models.CharField(max_length=66, unique=True)
    raw_tx = models.BinaryField()
    to_address = AddressField(help_text="The contract called (the token).")
    gas_limit = models.PositiveBigIntegerField()
    max_fee_per_gas = Uint256Field()
    max_priority_fee_per_gas = Uint256Field()
    status = FSMField(default=Status.SIGNED, choices=Status.choices)
    block_number = models.PositiveBigIntegerField(null=True, blank=True)
    block_hash = models.CharField(max_length=66, blank=True)
    gas_used = models.PositiveBigIntegerField(null=True, blank=True)
    broadcast_count = models.PositiveIntegerField(default=0)
    last_broadcast_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["wallet", "nonce"], name="one_transaction_per_nonce")]
        indexes = [models.Index(fields=["status"])]

    def __str__(self):
        return f"nonce {self.nonce} {self.tx_hash[:12]}… ({self.status})"

    @transition(field=status, source=[Status.SIGNED, Status.BROADCAST], target=Status.BROADCAST)
    def mark_broadcast(self):
        pass

    @transition(field=status, source=[Status.SIGNED, Status.BROADCAST, Status.MINED], target=Status.MINED)
    def mark_mined(self, *, block_number, block_hash, gas_used):
        self.block_number, self.block_hash, self.gas_used = block_number, block_hash, gas_used

    @transition(field=status, source=Status.MINED, target=Status.BROADCAST)
    def mark_reorged(self):
        """The block that held it left the canonical chain: the same bytes go out again."""
        self.block_number, self.block_hash, self.gas_used = None, "", None

    @transition(field=status, source=Status.MINED, target=Status.FINAL)
    def mark_final(self):
        pass

    @transition(field=status, source=Status.MINED, target=Status.REVERTED)
    def mark_reverted(self):
        pass


class Payout(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "queued"
        SUBMITTED = "submitted", "signed and sent"
        CONFIRMED = "confirmed", "final on chain"
        FAILED = "failed", "failed, operator decides"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # The caller's id for what this pays (a transfer): one payout per reference, ever.
    reference = models.CharField(max_length=64, unique=True)
    token = models.ForeignKey(Token, on_delete=models.PROTECT, related_name="payouts")
    wallet = models.ForeignKey(HotWallet, on_delete=models.PROTECT, related_name="payouts")
    to_address = AddressField()
    amount_base_units = Uint256Field()
    status = FSMField(default=Status.QUEUED, choices=Status.choices)
    transaction = models.OneToOneField(ChainTransaction, null=True, blank=True, on_delete=models.PROTECT,
                                       related_name="payout")
    failure_reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=~Q(amount_base_units=0), name="payout_amount_positive"),
        ]
        indexes = [models.Index(fields=["status"])]

    def __str__(self):
        return f"payout {self.reference} ({self.status})"

    @transition(field=status, source=Status.QUEUED, target=Status.SUBMITTED)
    def mark_submitted(self, transaction):
        self.transaction = transaction

    @transition(field=status, source=Status.SUBMITTED, target=Status.CONFIRMED)
    def mark_confirmed(self):
        pass

    @transition(field=status, source=[Status.QUEUED, Status.SUBMITTED], target=Status.FAILED)
    def mark_failed(self, reason):
        self.failure_reason = reason[:300]
