"""The travel rule (docs/compliance.md, "Travel rule"): a transfer of USD 1,000 or more, or the equivalent, carries
its originator's and beneficiary's data, given at creation (API `travel_rule`, the web form's extra fields) and kept
in a TravelRuleRecord beside the transfer. Personal data: only what the rule asks for, and never logged.

The comparison is in som: the amount (`source_amount`, what the sender pays) at the quote's official rate, against
USD 1,000 at the USD official rate in effect (for a USD transfer that is the quote's own rate, so USD 1,000.00 exactly
is the threshold). A transfer paid out in dollars (USDKG) compares both at the NBKR rates in effect, as its own rate is
not in som. Without a usable USD rate, the data is required (never skipped by accident).
"""

import logging
import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.db.models import Subquery
from django.utils import timezone
from django.utils.translation import gettext as _

from payments.errors import RateUnavailable, TravelRuleIncomplete
from payments.models import Quote, TravelRuleRecord
from payments.services.rates import kgs_equivalent, rate_current, rate_ensure_usable, rates_in_effect

log = logging.getLogger(__name__)
THRESHOLD_USD = Decimal("1000.00")
COUNTRY = re.compile(r"^[A-Z]{2}$")


@dataclass(frozen=True)
class Threshold:
    amount_kgs: Decimal
    threshold_kgs: Decimal | None  # None: no usable USD rate (the data is then required)

    @property
    def applies(self):
        return self.threshold_kgs is None or self.amount_kgs >= self.threshold_kgs


def usd_rate_annotations(*, now):
    """The USD rate in effect at `now` and its value date, as annotations for the quote's read
    (travel_rule_validate's `usd`): the threshold then asks no statement of its own."""
    latest = rates_in_effect(source_currency="USD", now=now)
    return {"usd_rate": Subquery(latest.values("rate")[:1]), "usd_value_date": Subquery(latest.values("value_date")[:1])}


def _usd_rate(usd):
    """The USD rate in effect: `usd` (rate, value date) as read with the quote, else read now; RateUnavailable when
    there is none or it is stale, as rate_current."""
    if usd is None:
        return rate_current(source_currency="USD").rate
    rate, value_date = usd
    rate_ensure_usable(source_currency="USD", value_date=value_date, now=timezone.now())
    return rate


def travel_rule_threshold(*, quote, usd=None):
    """The quote's amount and USD 1,000 in som, unrounded (see the module's note on the method). `usd`: the USD
    rate in effect and its value date, read with the quote (usd_rate_annotations)."""
    if quote.target_currency != "KGS":
        # Into dollars the quote's rate is a cross (or 1), not som: both sides at the NBKR rates in effect.
        try:
            return Threshold(kgs_equivalent(amount=quote.source_amount, currency=quote.source_currency),
                             kgs_equivalent(amount=THRESHOLD_USD, currency="USD"))
        except RateUnavailable:
            return Threshold(Decimal(0), None)
    amount_kgs = quote.source_amount * quote.official_rate
    if quote.source_currency == "USD":
        return Threshold(amount_kgs, THRESHOLD_USD * quote.official_rate)
    try:
        rate = _usd_rate(usd)
    except RateUnavailable:
        return Threshold(amount_kgs, None)
    return Threshold(amount_kgs, THRESHOLD_USD * rate)


def travel_rule_applies(*, quote):
    return travel_rule_threshold(quote=quote).applies


def travel_rule_required(*, quote_id, partner=None):
    """Whether a transfer on this quote needs the travel rule's data (False for a quote that does not exist: the
    page says that instead)."""
    quote = Quote.objects.filter(pk=quote_id, partner=partner).first()
    return quote is not None and travel_rule_applies(quote=quote)


SENDER_MIN_AGE, SENDER_MAX_AGE = 14, 120  # Kyrgyz and Russian ID documents are issued from 14


def _plausible_birth_date(born):
    """A date of birth that could be a living sender's (a future date or 1900-01-01 typed in a hurry is not). A
    service caller may pass the ISO text; anything that is not a date is not plausible."""
    if isinstance(born, str):
        try:
            born = date.fromisoformat(born)
        except ValueError:
            return False
    today = timezone.localdate()
    try:
        youngest = today.replace(year=today.year - SENDER_MIN_AGE)
        oldest = today.replace(year=today.year - SENDER_MAX_AGE)
    except ValueError:  # 29 February
        youngest = today.replace(year=today.year - SENDER_MIN_AGE, day=28)
        oldest = today.replace(year=today.year - SENDER_MAX_AGE, day=28)
    return oldest <= born <= youngest


def _text(value):
    return (value or "").strip() if isinstance(value, str) else ""


def travel_rule_validate(*, quote, sender, recipient, travel_rule, usd=None):
    """The record's fields when the quote is at or above the threshold (None below it: anything given is ignored).
    Names default to the sender's and recipient's, the wallet is the payout address, the account reference to the
    transfer's id (set when stored). Missing data raises TravelRuleIncomplete with a message per field. `usd`: as
    travel_rule_threshold's."""
    threshold = travel_rule_threshold(quote=quote, usd=usd)
    if not threshold.applies:
        return None
    originator = (travel_rule or {}).get("originator") or {}
    beneficiary = (travel_rule or {}).get("beneficiary") or {}
    errors = {}
    if not _text(originator.get("address")):
        errors["travel_rule.originator.address"] = [_("Enter the sender's address (street, city, country).")]
    born = originator.get("date_of_birth")
    if not born and not _text(originator.get("id_number")):
        errors["travel_rule.originator.date_of_birth"] = [_("Enter the sender's date of birth or ID document "
                                                            "number.")]
    elif born and not _plausible_birth_date(born):
        errors["travel_rule.originator.date_of_birth"] = [_("Enter a real date of birth: the sender must be between "
                                                            "%(min)s and %(max)s years old.")
                                                          % {"min": SENDER_MIN_AGE, "max": SENDER_MAX_AGE}]
    country = _text(beneficiary.get("country")).upper()
    if not country:
        errors["travel_rule.beneficiary.country"] = [_("Enter the recipient's country.")]
    elif not COUNTRY.match(country):
        errors["travel_rule.beneficiary.country"] = [_("Enter the country as a two-letter code, for example KG.")]
    if errors:
        raise TravelRuleIncomplete(_("This amount needs the sender's and the recipient's details (the travel rule): "
                                     "see the fields listed."), errors=errors)
    return {
        "originator_name": _text(originator.get("name")) or sender["name"],
        "originator_address": _text(originator["address"])[:300],
        "originator_date_of_birth": originator.get("date_of_birth") or None,
        "originator_id_number": _text(originator.get("id_number"))[:40],
        "originator_account": _text(originator.get("account"))[:100],
        "beneficiary_name": _text(beneficiary.get("name")) or recipient["name"],
        "beneficiary_wallet": recipient["wallet_address"],
        "beneficiary_country": country,
        "amount_kgs": threshold.amount_kgs.quantize(Decimal("0.01")),
        "threshold_kgs": (threshold.threshold_kgs or Decimal(0)).quantize(Decimal("0.01")),
    }


def travel_rule_store(*, transfer, data):
    """Kept in the creating transaction, one record per transfer."""
    record = TravelRuleRecord.objects.create(
        transfer=transfer, **{**data, "originator_account": data["originator_account"] or f"transfer:{transfer.id}"})
    log.info("travel_rule_recorded transfer_id=%s", transfer.id)
    return record
