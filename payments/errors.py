from gateway.errors import ApplicationError, ConflictError, NotFoundError


class PaymentsError(ApplicationError):
    code = "payments-error"


class CorridorUnavailable(PaymentsError):
    code = "corridor-unavailable"
    title = "This currency pair is not offered"


class RateUnavailable(PaymentsError):
    status = 503
    code = "rate-unavailable"
    title = "No current exchange rate"


class AmountOutOfRange(PaymentsError):
    code = "amount-out-of-range"
    title = "Amount outside the corridor's limits"


class QuoteNotFound(NotFoundError):
    code = "quote-not-found"
    title = "Quote not found"


class QuoteExpired(PaymentsError):
    code = "quote-expired"
    title = "Quote expired"


class QuoteAlreadyUsed(ConflictError):
    code = "quote-already-used"
    title = "Quote already used by another transfer"


class IdempotencyMismatch(ConflictError):
    code = "idempotency-key-reused"
    title = "Idempotency-Key reused with a different request"


class CardRefused(PaymentsError):
    code = "card-refused"
    title = "This card cannot be used"


class FundingUnavailable(PaymentsError):
    status = 503
    code = "funding-unavailable"
    title = "The card processor could not be reached"


class TransferNotPayable(ConflictError):
    code = "transfer-not-payable"
    title = "This transfer cannot be paid now"
