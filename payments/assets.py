"""What the recipient receives, per target currency: the stablecoin paid out, the network it lives on, and the
ledger account that holds its float. Pure data: no database, no settings.

- KGS (som): KGST on BNB Chain, float in `kgst_float`.
- USD (dollars): USDKG, the gold-backed dollar stablecoin, an ERC-20 on Ethereum, float in `usdkg_float`.

The token's address, decimals and chain are configuration (onchain.Token, looked up by `symbol`): payout amounts
become base units from the token's own decimals, and the ETA reads the token's chain. `network` is the product name
of the network shown to people ("USDKG on Ethereum"), whatever the registered chain row is called (a dev anvil).
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Asset:
    currency: str  # the target currency of quotes paid in this asset
    symbol: str  # onchain.Token.symbol
    network: str  # shown to people
    float_account: str  # payments.services.ledger.ACCOUNTS code of the payout float, in `currency`

    @property
    def label(self):
        return f"{self.symbol} on {self.network}"


ASSETS = {
    "KGS": Asset("KGS", "KGST", "BNB Chain", "kgst_float"),
    "USD": Asset("USD", "USDKG", "Ethereum", "usdkg_float"),
}


def asset_for(currency):
    """The asset paid out for a quote's target currency (KeyError for a currency we never pay out)."""
    return ASSETS[currency]
