from gateway.errors import ApplicationError


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


class CeilingExceeded(OnchainError):
    status = 422
    code = "payout-ceiling-exceeded"
    title = "The payout exceeds the hot wallet's per-transaction ceiling"


class SignerUnavailable(OnchainError):
    code = "signer-unavailable"
    title = "The hot wallet's key is not available"
