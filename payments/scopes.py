"""What a partner API key may do (docs/api.md "Keys and scopes"). Views declare `required_scopes`;
payments/api/permissions.py refuses a key that lacks one, and a view that declares none."""

QUOTES = "quotes"
TRANSFERS_CREATE = "transfers:create"
TRANSFERS_READ = "transfers:read"
PAYOUTS_CONFIRM = "payouts:confirm"
WEBHOOKS_MANAGE = "webhooks:manage"
BALANCES_READ = "balances:read"

SCOPES = (QUOTES, TRANSFERS_CREATE, TRANSFERS_READ, PAYOUTS_CONFIRM, WEBHOOKS_MANAGE, BALANCES_READ)
# A key made without a scope list: everything an origination partner needs. `payouts:confirm` confirms payouts to
# people in Kyrgyzstan (payout partners only), so it is granted only when asked for by name.
DEFAULT_SCOPES = tuple(s for s in SCOPES if s != PAYOUTS_CONFIRM)


class UnknownScopes(ValueError):
    def __init__(self, unknown):
        self.unknown = sorted(unknown)
        super().__init__(f"Unknown scopes: {', '.join(self.unknown)}. Known scopes: {', '.join(SCOPES)}.")


def scopes_clean(scopes):
    """A key's scope list, validated: None → the defaults; unknown names raise UnknownScopes; order as SCOPES."""
    if scopes is None:
        return list(DEFAULT_SCOPES)
    if isinstance(scopes, str):
        scopes = [s for s in scopes.replace(",", " ").split() if s]
    scopes = {str(s).strip() for s in scopes}
    unknown = scopes - set(SCOPES)
    if unknown:
        raise UnknownScopes(unknown)
    return [s for s in SCOPES if s in scopes]
