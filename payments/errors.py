"""Every refusal payments can raise derives from PaymentsError (itself a common.errors.ApplicationError), so one
handler renders each as RFC 9457 problem details and one `except PaymentsError` catches them all."""

from django.utils.translation import gettext_lazy as _

from common.errors import ApplicationError


class PaymentsError(ApplicationError):
    """Titles are lazy (translated when shown); the detail is fixed as a plain str, in the language active when
    the error is raised, so it reads the same in a form, a log line or a JSON problem body."""

    code = "payments-error"

    def __init__(self, detail=None, *, field=None):
        super().__init__(str(detail or self.title), field=field)


class CorridorUnavailable(PaymentsError):
    code = "corridor-unavailable"
    title = _("This currency pair is not offered")


class RateUnavailable(PaymentsError):
    status = 503
    code = "rate-unavailable"
    title = _("No current exchange rate")


class AmountOutOfRange(PaymentsError):
    code = "amount-out-of-range"
    title = _("Amount outside the corridor's limits")


class QuoteNotFound(PaymentsError):
    status = 404
    code = "quote-not-found"
    title = _("Quote not found")


class QuoteExpired(PaymentsError):
    code = "quote-expired"
    title = _("Quote expired")


class QuoteAlreadyUsed(PaymentsError):
    status = 409
    code = "quote-already-used"
    title = _("Quote already used by another transfer")


class IdempotencyMismatch(PaymentsError):
    """The Idempotency-Key was first used with another body or on another endpoint (the IETF draft's 422)."""

    status = 422
    code = "idempotency-key-reused"
    title = _("Idempotency-Key reused with a different request")


class WalletRefused(PaymentsError):
    code = "wallet-refused"
    title = _("This wallet cannot receive payouts")


class WalletCheckUnavailable(PaymentsError):
    """The recipient's address could not be checked on the chain (the node did not answer): nothing was stored."""

    status = 503
    code = "wallet-check-unavailable"
    title = _("The wallet address could not be checked")


class CardRefused(PaymentsError):
    code = "card-refused"
    title = _("This card cannot be used")


class CardDeclined(CardRefused):
    """The issuer or the processor declined the card (Stripe's CardError); the detail is its user message."""

    code = "card-declined"


class ProcessorRequestRefused(PaymentsError):
    """The card processor refused the request itself (Stripe's InvalidRequestError): an unreadable token, a
    PaymentIntent that cannot be confirmed again. Callers decide what it means in their step."""

    status = 409
    code = "processor-request-refused"
    title = _("The card processor refused this request")


class FundingUnavailable(PaymentsError):
    status = 503
    code = "funding-unavailable"
    title = _("The card processor could not be reached")


class FundingPending(FundingUnavailable):
    """The transfer is saved, but its card payment could not be prepared yet (the processor did not answer)."""

    def __init__(self, detail=None, *, transfer, field=None):
        super().__init__(detail, field=field)
        self.transfer = transfer


class TransferNotPayable(PaymentsError):
    status = 409
    code = "transfer-not-payable"
    title = _("This transfer cannot be paid now")


class FloatUnavailable(PaymentsError):
    status = 503
    code = "float-insufficient"
    title = _("We cannot deliver this amount right now")


class ScreeningUndecided(PaymentsError):
    status = 500
    code = "screening-undecided"
    title = "Screening returned no decision"


class LedgerImbalance(PaymentsError):
    status = 500
    code = "ledger-imbalance"
    title = "Unbalanced ledger entry"


class WebhookRefused(PaymentsError):
    """A webhook body that does not verify against its signature, or is not an event."""

    status = 400
    code = "bad-webhook"
    title = "Webhook refused"


class CardAttemptsExhausted(PaymentsError):
    """The pay page took CARD_ATTEMPTS_PER_TRANSFER cards for this transfer; it can only be cancelled or expire."""

    status = 409
    code = "card-attempts-exhausted"
    title = _("No card attempts left for this transfer")


class VelocityLimited(PaymentsError):
    """Too many card attempts for a card, sender, wallet or client within a window; `retry_after` in seconds."""

    status = 429
    code = "too-many-attempts"
    title = _("Too many payment attempts")

    def __init__(self, detail=None, *, retry_after, field=None):
        super().__init__(detail, field=field)
        self.retry_after = retry_after


class TransferRefused(PaymentsError):
    """The sender, card or wallet is frozen (a dispute or a fraud warning); which one is not said."""

    status = 403
    code = "transfer-refused"
    title = _("We cannot accept this transfer")


class InsufficientBalance(PaymentsError):
    """A partner's prefunded balance does not cover a transfer or a withdrawal: nothing was created or posted."""

    status = 409
    code = "insufficient-balance"
    title = _("The balance does not cover this amount")


class BalanceMissing(InsufficientBalance):
    """The partner holds no balance with us in that currency (never topped up)."""

    code = "no-balance"
    title = _("No balance in this currency")


class FundingMethodRefused(PaymentsError):
    """A funding method this caller cannot use (a prefunded balance for a transfer of no partner)."""

    status = 400
    code = "funding-method-refused"
    title = _("This funding method is not available")


class BalanceReferenceUsed(PaymentsError):
    """A top-up or withdrawal whose bank reference is already recorded for this partner (a form sent twice)."""

    status = 409
    code = "balance-reference-used"
    title = _("This bank reference is already recorded")


class BalanceInputInvalid(PaymentsError):
    """A top-up or withdrawal with no usable currency, amount or bank reference."""

    status = 400
    code = "balance-input-invalid"
    title = _("Invalid top-up or withdrawal")


class TransferNotCancellable(PaymentsError):
    """Settlement has started (or the card payment is being processed right now): the cancel is refused, nothing
    changes."""

    status = 409
    code = "transfer-not-cancellable"
    title = _("This transfer can no longer be cancelled")


class RateSourceError(PaymentsError):
    """A rate source could not be read or sent something that is not a rate file (payments/providers/nbkr.py).
    Never shown to a sender: the refresh keeps the last good rate and alerts operators."""

    status = 502
    code = "rate-source-error"
    title = "The rate source failed"


class QuoteRequestInvalid(PaymentsError):
    """A quote asked for with both amounts or neither (the API's serializer refuses it first, as a 400)."""

    status = 400
    code = "quote-request-invalid"
    title = _("Give exactly one of the two amounts")


class UnknownLedgerAccount(LedgerImbalance):
    """A posting to an account code the chart of accounts (payments.services.ledger.ACCOUNTS) does not list, or a
    partner's own account for a code that has none (or a house account for one that is per partner)."""

    code = "ledger-unknown-account"
    title = "Unknown ledger account"


class SanctionsListInvalid(PaymentsError):
    """A sanctions list file that cannot be loaded (unknown format, missing, malformed, truncated, empty, wrong
    encoding): nothing is stored and the previous version stays in force (payments/sanctions/load.py)."""

    status = 400
    code = "sanctions-list-invalid"
    title = "The sanctions list file cannot be loaded"


class LimitExceeded(PaymentsError):
    """Over a hard limit (the corridor's highest KYC tier) per transfer, per day or per 30 days for one of the
    sender's identities: nothing was created (payments/services/limits.py)."""

    code = "limit-exceeded"
    title = _("Over the sending limit")


class KycIncomplete(PaymentsError):
    """An operator's KYC step that cannot apply yet (nothing recorded to verify, an expired document)."""

    status = 409
    code = "kyc-incomplete"
    title = "KYC step not possible"


class TravelRuleIncomplete(PaymentsError):
    """A transfer at or above the travel-rule threshold without the originator's or beneficiary's data: `errors`
    maps each missing field (dotted, inside `travel_rule`) to its message. Nothing was created."""

    status = 422  # the body fits the schema; the amount makes these fields required (a business rule)
    code = "travel-rule-required"
    title = _("Originator and beneficiary details are required for this amount")

    def __init__(self, detail=None, *, errors, field=None):
        super().__init__(detail, field=field)
        self.errors = errors


class ManualRateRefused(PaymentsError):
    """A manual rate outside what may be typed (payments/services/rates.py, manual_rate_check)."""

    code = "manual-rate-refused"
    title = _("Manual rate refused")


class ReferenceAlreadyUsed(PaymentsError):
    """The partner's `reference` already names another of its transfers (docs/api.md "References")."""

    status = 409
    code = "reference-already-used"
    title = _("Reference already used by another transfer")


class IdempotencyKeyInvalid(PaymentsError):
    """An Idempotency-Key header that is empty, longer than 255 characters, or missing where it is required."""

    status = 400
    code = "idempotency-key-invalid"
    title = _("Invalid Idempotency-Key header")


class IdempotencyInFlight(PaymentsError):
    """The first request with this Idempotency-Key is still being processed: retry after `retry_after` seconds."""

    status = 409
    code = "idempotency-key-in-use"
    title = _("A request with this Idempotency-Key is still in progress")

    def __init__(self, detail=None, *, retry_after, field=None):
        super().__init__(detail, field=field)
        self.retry_after = retry_after


class BulkRequestInvalid(PaymentsError):
    """A bulk request with no items, or items repeating an idempotency key: nothing was created."""

    status = 400
    code = "bulk-invalid"
    title = _("Invalid bulk request")


class BulkTooLarge(PaymentsError):
    """A bulk request with more items than one request may carry: nothing was created."""

    status = 413
    code = "bulk-too-large"
    title = _("Too many items in one bulk request")
