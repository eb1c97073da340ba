"""The US remittance rule (CFPB Regulation E subpart B, 12 CFR 1005.30-36) for senders paying in USD.

What it asks of us, and where it is done (docs/compliance.md, "US remittance rule"):
- a disclosure before payment and a receipt after it (1005.31): `disclosure()` gives both the web pages and the API
  the same fields;
- the sender may cancel within 30 minutes of paying, for a full refund (1005.34): `cancel_window_start` records the
  end of that window on the transfer when it is funded, and holds its payout until then (`release_after`, which the
  pipeline and the sweeper already obey); `cancel_window_closed` is checked under the transfer's row lock by
  `pipeline_cancel.transfer_cancel`.
The rule has no waiver of the cancellation right (docs/compliance.md says why), so none is offered.

Scope: transfers paid by card in USD, the consumer's own payment to us (web flow and API card funding). A transfer
funded from a partner's balance is the partner's remittance to its customer: the partner is the provider there.
"""

from dataclasses import dataclass
from datetime import UTC, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _

USD = "USD"
BISHKEK = ZoneInfo("Asia/Bishkek")
# The regulator the rule tells the sender to contact (1005.31(b)(2)(vi)); fixed by the rule, not configuration.
REGULATOR = {"name": "Consumer Financial Protection Bureau", "website": "https://www.consumerfinance.gov",
             "phone": "1-855-411-2372"}


def applies_to_quote(quote):
    return quote.source_currency == USD


def applies(transfer):
    """A USD card transfer: the consumer pays us, so we are the remittance transfer provider."""
    return applies_to_quote(transfer.quote) and transfer.funding_method == transfer.FundingMethod.CARD


def window_seconds():
    return settings.US_CANCEL_WINDOW_SECONDS


def cancel_window_start(transfer, *, funded_at):
    """At funding (under the transfer's row lock, before its save): the sender may cancel until
    funded_at + US_CANCEL_WINDOW_SECONDS, and no payout happens before that moment (a payout delay already later
    stays). Stored, so a later change of the setting does not move a window already promised."""
    if not applies(transfer) or window_seconds() <= 0:  # 0: no window (the test suite's default; never production)
        return
    ends = funded_at + timedelta(seconds=window_seconds())
    transfer.cancel_window_ends_at = ends
    held_until = ends + PAYOUT_MARGIN
    transfer.release_after = max(transfer.release_after or held_until, held_until)


# The payout waits this much past the promised end: the sender's cancel is judged by a web host's clock and the
# payout by a worker's, and a worker's clock running ahead must not pay out before the receipt's "cancel until".
PAYOUT_MARGIN = timedelta(seconds=60)


def cancel_window_open(transfer, *, now=None):
    """True while no payout may start: until the window's end plus PAYOUT_MARGIN."""
    return bool(transfer.cancel_window_ends_at
                and (now or timezone.now()) < transfer.cancel_window_ends_at + PAYOUT_MARGIN)


def cancel_window_closed(transfer, *, now=None):
    """True once a USD sender's 30 minutes are over: the sender's own cancel is refused from then on."""
    return bool(transfer.cancel_window_ends_at and (now or timezone.now()) >= transfer.cancel_window_ends_at)


def window_closed_message():
    return _("This transfer can no longer be cancelled: the 30 minutes to cancel after payment have passed. If "
             "something is wrong with it, contact us: you have 180 days to report an error.")


def payout_held_message():
    return _("The payout waits until the time to cancel has passed.")


@dataclass(frozen=True)
class Disclosure:
    """What 1005.31 asks to show, in the quote's currencies. `cancel_until` is None before payment (the window
    starts when the sender pays); `available_on` is a date in Bishkek, where the money is received."""

    source_currency: str
    transfer_amount: Decimal  # sent, before our fee
    fee: Decimal
    taxes: Decimal
    total: Decimal
    rate: Decimal
    target_currency: str
    other_fees: Decimal
    other_taxes: Decimal
    amount_received: Decimal
    available_on: object
    cancel_minutes: int
    cancel_until: object
    provider_email: str
    provider_phone: str
    regulator: dict

    def as_dict(self):
        return {
            "transfer_amount": str(self.transfer_amount), "fee": str(self.fee), "taxes": str(self.taxes),
            "total": str(self.total), "currency": self.source_currency, "exchange_rate": str(self.rate),
            "other_fees": str(self.other_fees), "other_taxes": str(self.other_taxes),
            "amount_received": str(self.amount_received), "received_currency": self.target_currency,
            "date_available": self.available_on.isoformat(), "cancel_minutes": self.cancel_minutes,
            # UTC with a Z, like every other time in the API (DRF's DateTimeField)
            "cancel_until": (self.cancel_until.astimezone(UTC).isoformat().replace("+00:00", "Z")
                             if self.cancel_until else None),
            "provider_contact": {"email": self.provider_email, "phone": self.provider_phone},
            "regulator": dict(self.regulator),
        }


def disclosure(*, quote, transfer=None, now=None):
    """The disclosure (before payment) or receipt (after) for a USD quote or its transfer. The date available is
    the Bishkek date of the payout (done), or of the moment it may happen (release time once funded; before
    payment, now plus the cancellation window)."""
    now = now or timezone.now()
    if transfer is not None and transfer.completed_at:
        available = transfer.completed_at
    elif transfer is not None and transfer.release_after:
        available = max(transfer.release_after, now)
    else:
        available = now + timedelta(seconds=window_seconds())
    fee = quote.fee
    return Disclosure(
        source_currency=quote.source_currency, transfer_amount=quote.source_amount - fee, fee=fee,
        taxes=Decimal("0.00"), total=quote.source_amount, rate=quote.rate, target_currency=quote.target_currency,
        other_fees=Decimal("0.00"), other_taxes=Decimal("0.00"), amount_received=quote.target_amount,
        available_on=timezone.localtime(available, BISHKEK).date(), cancel_minutes=window_seconds() // 60,
        cancel_until=transfer.cancel_window_ends_at if transfer is not None else None,
        provider_email=settings.SUPPORT_EMAIL, provider_phone=settings.SUPPORT_PHONE, regulator=REGULATOR)
