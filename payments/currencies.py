"""The currencies the gateway knows, as choices and minor-unit digits (re-exported by payments.models)."""

SOURCE_CURRENCIES = [("RUB", "Russian ruble"), ("USD", "US dollar")]
# What the recipient receives: som (as KGST) or dollars (as USDKG); payments/assets.py maps each to its token.
TARGET_CURRENCIES = [("KGS", "Kyrgyz som"), ("USD", "US dollar")]
# Official rates are all against the som (NBKR publishes X/KGS); a cross rate is derived, never stored.
RATE_CURRENCIES = [("KGS", "Kyrgyz som")]
# Minor units per currency (all three have two decimals); fiat is stored as integer minor units.
MINOR_DIGITS = {"RUB": 2, "USD": 2, "KGS": 2}
