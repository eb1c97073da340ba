"""Operator views of settlement: hot wallets (live balances, nonce, halt/resume with a reason), batches with
their attempts and replacements, payouts, alerts. Money rows are read-only; actions need their own permission and
a reason (staff.admin_actions) and call services (onchain/guarded.py)."""

from decimal import Decimal
from urllib.parse import urlencode

from django.contrib import admin
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join

from common.admin import ReadOnlyAdmin, compact
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

BATCH_LINK_MAX = 200  # a batch's references in one link's query string (BATCH_MAX_SIZE is well below it)


def _changelist(model, **params):
    """An admin list by URL name, filtered: payments' lists too, named, never imported (onchain stands below it)."""
    app, name = model.split(".")
    try:
        url = reverse(f"admin:{app}_{name}_changelist")
    except NoReverseMatch:
        return ""
    return f"{url}?{urlencode(params)}"


def short_address(address):
    """An address as list columns show it on a 1280-px screen: its head and tail, the whole in the hover title."""
    return format_html('<span title="{}">{}…{}</span>', address, address[:8], address[-4:])


@admin.register(Chain)
class ChainAdmin(HistoryAdmin):
    list_display = ["name", "chain_id", "protocol", "confirmations", "use_finalized_tag", "eip1559", "max_fee_per_gas_ceiling",
                    "stuck_after_seconds", "block_time_ms", "explorer_tx_url"]


@admin.register(Token)
class TokenAdmin(HistoryAdmin):
    list_display = ["symbol", "chain", "address", "decimals", "batch_contract", "low_float_base_units", "gas_per_payout"]


@admin.register(HotWallet)
class HotWalletAdmin(GuardedActionsMixin, HistoryAdmin):
    # Fits a 1280-px screen: the address shortened (in full on hover and on the page), one state column, balances
    # compact (1.25M KGST); the full figures are on the wallet's page.
    list_display = ["short_address", "chain", "state", "next_nonce", "in_flight", "float_short", "gas_short"]
    list_display_links = ["short_address"]
    list_select_related = ["chain"]
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

    @admin.display(description="address", ordering="address")
    def short_address(self, obj):
        return short_address(obj.address)

    @admin.display(description="state")
    def state(self, obj):
        if obj.halted:
            return format_html('<span title="{}">halted</span>', obj.halt_reason)
        return "sending" if obj.is_active else "inactive"

    def _compact_balances(self, obj):
        if not hasattr(obj, "_compact"):
            try:
                token = obj.chain.tokens.first()
                held, gas = wallet_balances(obj, token)
                obj._compact = (f"{compact(Decimal(held).scaleb(-token.decimals))} {token.symbol}" if token else "—",
                                compact(Decimal(gas).scaleb(-18)))
            except Exception:  # noqa: BLE001
                obj._compact = ("unavailable", "unavailable")
        return obj._compact

    @admin.display(description="float")
    def float_short(self, obj):
        return self._compact_balances(obj)[0]

    @admin.display(description="gas")
    def gas_short(self, obj):
        low = obj.low_gas_wei is not None and obj.gas_wei is not None and obj.gas_wei < obj.low_gas_wei
        return f"{self._compact_balances(obj)[1]}{' (low)' if low else ''}"

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
    readonly_fields = [f.name for f in Batch._meta.fields] + ["links"]
    inlines = [AttemptInline]

    @admin.display(description="payouts and transfers")
    def links(self, obj):
        return format_html('<a href="{}">its payouts</a> · <a href="{}">its transfers</a>',
                           _changelist("onchain.payout", batch__id__exact=obj.pk),
                           _changelist("payments.transfer", payout_reference__in=",".join(
                               obj.payouts.values_list("reference", flat=True)[:BATCH_LINK_MAX])))


@admin.register(Payout)
class PayoutAdmin(ReadOnlyAdmin):
    list_display = ["reference", "status", "to_address", "amount_base_units", "batch", "created_at"]
    list_filter = ["status", "token"]
    search_fields = ["reference", "to_address", "batch__attempts__tx_hash"]
    readonly_fields = [f.name for f in Payout._meta.fields] + ["links"]

    @admin.display(description="transfer, batch")
    def links(self, obj):
        # The reference is the caller's id; a transfer records it as its payout_reference (onchain knows no transfers).
        parts = [format_html('<a href="{}">transfer</a>',
                             _changelist("payments.transfer", payout_reference__exact=obj.reference))]
        if obj.batch_id:
            parts.append(format_html('<a href="{}">batch</a>', reverse("admin:onchain_batch_change",
                                                                       args=[obj.batch_id])))
        return format_html_join(" · ", "{}", ((p,) for p in parts))


@admin.register(ChainTransaction)
class ChainTransactionAdmin(ReadOnlyAdmin):
    list_display = ["tx_hash", "wallet", "nonce", "status", "replaces", "max_fee_per_gas", "gas_used",
                    "broadcast_count", "last_broadcast_at"]
    list_filter = ["status", "wallet"]
    search_fields = ["tx_hash"]
    exclude = ["raw_tx", "data"]
    readonly_fields = [f.name for f in ChainTransaction._meta.fields if f.name not in ("raw_tx", "data")] + ["links"]

    @admin.display(description="batch, payouts")
    def links(self, obj):
        return format_html('<a href="{}">batch</a> · <a href="{}">its payouts</a>',
                           reverse("admin:onchain_batch_change", args=[obj.batch_id]),
                           _changelist("onchain.payout", batch__id__exact=obj.batch_id))


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

    # Fits a 1280-px screen: the wallet shortened (in full on hover), one state column for acknowledged/resolved.
    list_display = ["created_at", "kind", "wallet_short", "token", "message", "state"]
    list_select_related = ["wallet", "token"]
    list_filter = ["kind", ("resolved_at", admin.EmptyFieldListFilter),
                   ("acknowledged_at", admin.EmptyFieldListFilter)]
    exclude = ["key"]
    inlines = [AlertDeliveryInline]
    actions = ["acknowledge", "resolve"]

    @admin.display(description="wallet", ordering="wallet__address")
    def wallet_short(self, obj):
        if obj.wallet is None:
            return "-"
        return short_address(obj.wallet.address)

    @admin.display(description="state")
    def state(self, obj):
        if obj.resolved_at:
            return format_html('<span title="{}">resolved</span>', obj.resolved_at)
        if obj.acknowledged_at:
            return format_html('<span title="{}">acknowledged</span>', obj.acknowledged_at)
        return "open"

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
