"""Operator views of settlement: hot wallets (live balances, nonce, halt/resume with a reason), batches with
their attempts and replacements, payouts, alerts. Money rows are read-only; actions need their own permission and
a reason (staff.admin_actions) and call services (onchain/guarded.py)."""

from decimal import Decimal

from django.contrib import admin

from common.admin import ReadOnlyAdmin
from onchain import guarded
from onchain.models import (
    AlertDelivery,
    Batch,
    Chain,
    ChainTransaction,
    HotWallet,
    OperatorAlert,
    Payout,
    PayoutHalt,
    Token,
)
from onchain.services.treasury import wallet_balances
from staff.admin_actions import GuardedActionsMixin, guarded_action_response
from staff.admin_history import HistoryAdmin


@admin.register(Chain)
class ChainAdmin(HistoryAdmin):
    list_display = ["name", "chain_id", "confirmations", "use_finalized_tag", "eip1559", "max_fee_per_gas_ceiling",
                    "stuck_after_seconds"]


@admin.register(Token)
class TokenAdmin(HistoryAdmin):
    list_display = ["symbol", "chain", "address", "decimals", "batch_contract", "low_float_base_units"]


@admin.register(HotWallet)
class HotWalletAdmin(GuardedActionsMixin, HistoryAdmin):
    list_display = ["address", "chain", "is_active", "halted", "halt_reason", "next_nonce", "in_flight",
                    "token_balance", "gas_balance"]
    list_filter = ["halted", "is_active"]
    # The halt changes only through the actions (a reason each; resuming a nonce halt needs a second person).
    readonly_fields = ["halted", "halt_reason", "next_nonce", "in_flight", "token_balance", "gas_balance"]
    fields = ["chain", "address", "key_env", "is_active", "halted", "halt_reason", "max_tx_base_units",
              "daily_limit_base_units", "low_gas_wei", "next_nonce", "in_flight", "token_balance", "gas_balance"]
    actions = ["halt", "resume", "resync_nonce"]

    def _balances(self, obj):
        # Read live, once per row and request; an unreachable node shows "unavailable", not an error page.
        if not hasattr(obj, "_balances"):
            try:
                token = obj.chain.tokens.first()
                held, gas = wallet_balances(obj, token)
                obj._balances = (f"{Decimal(held).scaleb(-token.decimals):,.2f} {token.symbol}" if token else "—",
                                 f"{Decimal(gas).scaleb(-18):,.4f}")
            except Exception:  # noqa: BLE001
                obj._balances = ("unavailable", "unavailable")
        return obj._balances

    @admin.display(description="float (token)")
    def token_balance(self, obj):
        return self._balances(obj)[0]

    @admin.display(description="gas balance (native)")
    def gas_balance(self, obj):
        return self._balances(obj)[1]

    @admin.display(description="batches in flight")
    def in_flight(self, obj):
        return obj.batches.filter(status__in=[Batch.Status.SIGNED, Batch.Status.BROADCAST, Batch.Status.MINED]).count()

    @admin.action(description="Halt sending (queued payouts wait)", permissions=["halt"])
    def halt(self, request, queryset):
        return guarded_action_response(self, request, queryset, guarded.HALT)

    @admin.action(description="Resume sending (a nonce halt needs a second person)", permissions=["resume"])
    def resume(self, request, queryset):
        return guarded_action_response(self, request, queryset, guarded.RESUME)

    @admin.action(description="Resync nonce from the chain (only with nothing in flight)", permissions=["resync_nonce"])
    def resync_nonce(self, request, queryset):
        return guarded_action_response(self, request, queryset, guarded.RESYNC_NONCE)

    def has_halt_permission(self, request):
        return request.user.has_perm(guarded.HALT.permission)

    def has_resume_permission(self, request):
        return request.user.has_perm(guarded.RESUME.permission)

    def has_resync_nonce_permission(self, request):
        return request.user.has_perm(guarded.RESYNC_NONCE.permission)


class AttemptInline(admin.TabularInline):
    model = ChainTransaction
    fields = ["tx_hash", "status", "max_fee_per_gas", "max_priority_fee_per_gas", "replaces", "broadcast_count",
              "last_broadcast_at", "last_error"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Batch)
class BatchAdmin(ReadOnlyAdmin):
    list_display = ["id", "status", "wallet", "nonce", "mode", "count", "total_base_units", "block_number",
                    "created_at", "final_at", "send_attempts"]
    list_filter = ["status", "mode", "wallet"]
    search_fields = ["id", "attempts__tx_hash", "payouts__reference"]
    readonly_fields = [f.name for f in Batch._meta.fields]
    inlines = [AttemptInline]


@admin.register(Payout)
class PayoutAdmin(ReadOnlyAdmin):
    list_display = ["reference", "status", "to_address", "amount_base_units", "batch", "created_at"]
    list_filter = ["status", "token"]
    search_fields = ["reference", "to_address", "batch__attempts__tx_hash"]
    readonly_fields = [f.name for f in Payout._meta.fields]


@admin.register(ChainTransaction)
class ChainTransactionAdmin(ReadOnlyAdmin):
    list_display = ["tx_hash", "wallet", "nonce", "status", "replaces", "max_fee_per_gas", "gas_used",
                    "broadcast_count", "last_broadcast_at"]
    list_filter = ["status", "wallet"]
    search_fields = ["tx_hash"]
    exclude = ["raw_tx", "data"]
    readonly_fields = [f.name for f in ChainTransaction._meta.fields if f.name not in ("raw_tx", "data")]


class AlertDeliveryInline(admin.TabularInline):
    model = AlertDelivery
    fields = readonly_fields = ["channel", "round", "status", "attempts", "last_error", "created_at", "sent_at"]
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(OperatorAlert)
class OperatorAlertAdmin(GuardedActionsMixin, ReadOnlyAdmin):
    """Alerts reach people by e-mail and the chat webhook, again every ALERT_RESEND_MINUTES until acknowledged;
    acknowledging and resolving each need a reason (the audit trail keeps it with the name)."""

    list_display = ["created_at", "kind", "wallet", "token", "message", "acknowledged_at", "resolved_at"]
    list_filter = ["kind", ("resolved_at", admin.EmptyFieldListFilter),
                   ("acknowledged_at", admin.EmptyFieldListFilter)]
    exclude = ["key"]
    inlines = [AlertDeliveryInline]
    actions = ["acknowledge", "resolve"]

    @admin.action(description="Acknowledge (stops the reminders)", permissions=["acknowledge"])
    def acknowledge(self, request, queryset):
        return guarded_action_response(self, request, queryset, guarded.ACKNOWLEDGE)

    @admin.action(description="Mark resolved", permissions=["resolve"])
    def resolve(self, request, queryset):
        return guarded_action_response(self, request, queryset, guarded.RESOLVE)

    def has_acknowledge_permission(self, request):
        return request.user.has_perm(guarded.ACKNOWLEDGE.permission)

    def has_resolve_permission(self, request):
        return request.user.has_perm(guarded.RESOLVE.permission)


@admin.register(PayoutHalt)
class PayoutHaltAdmin(ReadOnlyAdmin):
    """Halts of all payouts (a treasury reconciliation difference): set and cleared by their owner's service, never
    here. While one is listed no new batch is signed."""

    list_display = ["key", "reason", "created_at"]
