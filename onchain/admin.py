"""Operator views of the settlement side: hot wallets with live balances, payouts, chain transactions."""

from decimal import Decimal

from django.contrib import admin

from onchain.models import Chain, ChainTransaction, HotWallet, Payout, Token
from onchain.services.payouts import wallet_balances


@admin.register(Chain)
class ChainAdmin(admin.ModelAdmin):
    list_display = ["name", "chain_id", "confirmations"]


@admin.register(Token)
class TokenAdmin(admin.ModelAdmin):
    list_display = ["symbol", "chain", "address", "decimals"]


@admin.register(HotWallet)
class HotWalletAdmin(admin.ModelAdmin):
    list_display = ["address", "chain", "is_active", "halted", "next_nonce", "token_balance", "gas_balance"]
    readonly_fields = ["next_nonce", "token_balance", "gas_balance"]
    fields = ["chain", "address", "key_env", "is_active", "halted", "halt_reason", "max_payout_base_units",
              "next_nonce", "token_balance", "gas_balance"]

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

    @admin.display(description="token balance")
    def token_balance(self, obj):
        return self._balances(obj)[0]

    @admin.display(description="gas balance (native)")
    def gas_balance(self, obj):
        return self._balances(obj)[1]


@admin.register(Payout)
class PayoutAdmin(admin.ModelAdmin):
    list_display = ["reference", "status", "to_address", "amount_base_units", "wallet", "created_at"]
    list_filter = ["status", "token"]
    search_fields = ["reference", "to_address", "transaction__tx_hash"]
    readonly_fields = [f.name for f in Payout._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ChainTransaction)
class ChainTransactionAdmin(admin.ModelAdmin):
    list_display = ["tx_hash", "wallet", "nonce", "status", "block_number", "gas_used", "broadcast_count",
                    "last_broadcast_at"]
    list_filter = ["status", "wallet"]
    search_fields = ["tx_hash"]
    exclude = ["raw_tx"]
    readonly_fields = [f.name for f in ChainTransaction._meta.fields if f.name != "raw_tx"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
