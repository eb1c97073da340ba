from common.errors import ApplicationError


class OnchainError(ApplicationError):
    status = 503
    code = "onchain-error"
    title = "Settlement error"


class ChainUnavailable(OnchainError):
    code = "chain-unavailable"
    title = "The chain's RPC did not answer"


class SettlementNotConfigured(OnchainError):
    code = "settlement-not-configured"
    title = "No token or hot wallet is configured for settlement"


class WalletHalted(OnchainError):
    code = "wallet-halted"
    title = "Sending is halted for this hot wallet"


class SignerUnavailable(OnchainError):
    code = "signer-unavailable"
    title = "The hot wallet's key is not available"


class FeeCeilingReached(OnchainError):
    code = "fee-ceiling-reached"
    title = "Network fees are above the configured ceiling"


class RecipientRefused(OnchainError):
    """An address no payout may go to (`onchain.api.recipient_check`); `kind` names why, `detail` says it to a
    person (translated)."""

    status = 422
    code = "recipient-refused"
    title = "This address cannot receive payouts"

    def __init__(self, detail=None, *, kind, field=None):
        super().__init__(detail, field=field)
        self.kind = kind
