"""Quote arithmetic, pure: no database, no settings. docs/ledger.md "Rounding" states these rules.

Every amount is a Decimal in major units with two decimals (RUB, USD and KGS all have two minor digits).
- Official rate of a corridor: the NBKR rate of the source currency (som per unit) into KGS; into USD, the cross
  rate (source/KGS ÷ USD/KGS), rounded UP to 8 decimals (the recipient's side: our rate derived from it is never
  lower than the exact cross gives, and the total cost shown against it is never lower than it is); USD into USD is
  exactly 1 (no conversion: the fee alone).
- Our rate: official × (1 − margin), rounded down to 8 decimals, and disclosed as such.
- Fee: fixed + percent of the amount, kept within [min_fee, max_fee], then rounded down to the minor unit: the
  sender never pays more than the published formula says.
- Som: (amount − fee) × our rate, rounded up to the tyiyn: the recipient never gets less than the disclosed rate
  gives for what is left after the disclosed fee. Rounding never keeps anything for us.
- Receive-fixed: the smallest amount (in minor units) whose send-fixed price gives at least the som asked for; the
  recipient gets exactly the som asked for. What the sender's last minor unit buys beyond it (less than one
  kopeck or cent) is inside the disclosed total cost. (The corridor's limits are applied by the quote service: the
  som may range from what the minimum amount gives to what the maximum gives, and the amount is never below the
  minimum.)
- Total cost to the sender: 1 − som received ÷ (amount × official rate), in percent, rounded up to 0.01 %: never
  shown lower than it is.
"""

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_UP, Decimal, localcontext

CENT = Decimal("0.01")
RATE_PLACES = Decimal("0.00000001")
BPS = Decimal(10000)
HUNDRED = Decimal(100)


@dataclass(frozen=True)
class Terms:
    """A corridor's prices (payments.models.Corridor)."""

    margin_bps: int
    fixed_fee: Decimal
    percent_fee_bps: int
    min_fee: Decimal = Decimal(0)
    max_fee: Decimal | None = None


ONE = Decimal("1.00000000")


def official_cross(*, source_currency, target_currency, source_kgs, target_kgs):
    """The official rate of source → target from the NBKR rates of each against the som (None for KGS itself):
    KGS target: the source's own rate; same currency: exactly 1; otherwise source/KGS ÷ target/KGS, rounded up."""
    if source_currency == target_currency:
        return ONE
    if target_currency == "KGS":
        return source_kgs
    with localcontext() as ctx:
        ctx.rounding = ROUND_CEILING  # the division's own last digit rounds up too: the result is the true ceiling
        quotient = source_kgs / target_kgs
    return quotient.quantize(RATE_PLACES, ROUND_UP)


def our_rate(*, official, margin_bps):
    return (official * (BPS - margin_bps) / BPS).quantize(RATE_PLACES, ROUND_DOWN)


def fee_for(*, amount, terms):
    raw = terms.fixed_fee + amount * terms.percent_fee_bps / BPS
    raw = max(raw, terms.min_fee)
    if terms.max_fee is not None:
        raw = min(raw, terms.max_fee)
    return raw.quantize(CENT, ROUND_DOWN)


def target_for(*, amount, fee, rate):
    """Som for `amount` after `fee` at `rate`, rounded up to the tyiyn; zero when the fee takes it all."""
    if fee >= amount:
        return Decimal("0.00")
    return ((amount - fee) * rate).quantize(CENT, ROUND_UP)


def send_fixed(*, amount, rate, terms):
    """(fee, som received) for a sender who pays `amount`."""
    fee = fee_for(amount=amount, terms=terms)
    return fee, target_for(amount=amount, fee=fee, rate=rate)


def receive_fixed(*, target, rate, terms):
    """(amount, fee): the smallest amount whose send-fixed price gives at least `target` som, and its fee.

    Som received never fall as the amount rises by one minor unit (the fee rises by at most the percent of it, and
    the percent is below 100 %), so the smallest such amount is found from an estimate by stepping."""
    net = target / rate  # what must be left after the fee
    p = Decimal(terms.percent_fee_bps) / BPS
    estimate = (net + terms.fixed_fee) / (1 - p)
    fee_raw = terms.fixed_fee + estimate * p
    if fee_raw < terms.min_fee:
        estimate = net + terms.min_fee
    elif terms.max_fee is not None and fee_raw > terms.max_fee:
        estimate = net + terms.max_fee
    amount = max(estimate.quantize(CENT, ROUND_CEILING), CENT)

    def gives(a):
        return send_fixed(amount=a, rate=rate, terms=terms)[1] >= target

    for _ in range(10000):
        if not gives(amount):
            amount += CENT
        elif amount > CENT and gives(amount - CENT):
            amount -= CENT
        else:
            return amount, fee_for(amount=amount, terms=terms)
    raise ArithmeticError(f"no amount found for {target} at {rate}")  # unreachable: the estimate is within cents


def cost_percent(*, source_amount, target_amount, official_rate):
    """Fee plus spread against the official rate, as a percentage of what the sender pays, rounded up."""
    at_official = source_amount * official_rate
    if at_official <= 0:
        return Decimal("100.00")
    return ((1 - target_amount / at_official) * HUNDRED).quantize(CENT, ROUND_CEILING)
