from django.utils.translation import gettext_lazy as _

from gateway.errors import ApplicationError, ConflictError, NotFoundError


class PlainDetail:
    """Titles are lazy (translated when shown); the detail is fixed as a plain str, in the language active when
    the error is raised, so it reads the same in a form, a log line or a JSON problem body."""

    def __init__(self, detail=None, *, field=None):
        super().__init__(str(detail or self.title), field=field)


class PaymentsError(PlainDetail, ApplicationError):
    code = "payments-error"


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


class QuoteNotFound(PlainDetail, NotFoundError):
    code = "quote-not-found"
    title = _("Quote not found")


class QuoteExpired(PaymentsError):
    code = "quote-expired"
    title = _("Quote expired")


class QuoteAlreadyUsed(PlainDetail, ConflictError):
    code = "quote-already-used"
    title = _("Quote already used by another transfer")


class IdempotencyMismatch(PlainDetail, ConflictError):
    code = "idempotency-key-reused"
    title = _("Idempotency-Key reused with a different request")


class CardRefused(PaymentsError):
    code = "card-refused"
    title = _("This card cannot be used")


class FundingUnavailable(PaymentsError):
    status = 503
    code = "funding-unavailable"
    title = _("The card processor could not be reached")


class TransferNotPayable(PlainDetail, ConflictError):
    code = "transfer-not-payable"
    title = _("This transfer cannot be paid now")


class FloatUnavailable(PaymentsError):
    status = 503
    code = "float-insufficient"
    title = _("We cannot deliver this amount right now")
