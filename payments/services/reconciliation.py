"""Reconciliation: our ledger against the outside records of the same money. Three jobs, each run by beat
(payments.tasks), each turning a difference into a ReconciliationItem that an operator resolves with a reason:

- `card_reconcile`: card_clearing against Stripe. One listing each of PaymentIntents, refunds and disputes created
  in the window (auto-paginated, `created` filter), matched both ways against the ledger's card_clearing postings.
  Only the exceptions (a ledger entry whose Stripe object the listing did not show) are fetched one by one.
- `partner_statements_reconcile`: a partner's closing balance typed in from its statement against the ledger's
  balance of that partner's `partner_balance` account at the same moment.
- `treasury_reconcile`: each float (`kgst_float`, `usdkg_float`) against what its chain holds
  (onchain.api.treasury_position), allowing for batches that moved tokens but are not final yet (their `payout`
  entries come at finality). A shortfall halts payouts (onchain.api.payouts_halt) until every such item is resolved.

Figures on items are major units of their currency: `expected` is what our ledger says, `actual` what Stripe, the
partner or the chain says. docs/ledger.md ("Reconciliation") and docs/runbook.md say what each item means.
"""

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from common.money import from_units
from onchain.api import operator_alert_raise, payouts_halt, payouts_resume, treasury_position
from payments.assets import ASSETS, asset_for
from payments.models import (
    MINOR_DIGITS,
    CardDispute,
    JournalEntry,
    PartnerStatement,
    Posting,
    ReconciliationItem,
    Transfer,
    to_minor,
)
from payments.providers import stripe_rail
from payments.services.ledger import account_balance, float_account, ledger_post
from staff.services import ReasonRequired

log = logging.getLogger(__name__)
Kind = ReconciliationItem.Kind

# Entry kinds that move card_clearing, by the Stripe object that stands behind them.
CARD_IN = ("funding", "refused_capture", "unmatched_capture")
CARD_REFUND = ("refund", "refused_refund", "unmatched_refund")
CARD_DISPUTE = ("dispute", "refused_chargeback", "unmatched_chargeback")
TREASURY_HALT_KEY = "payments.treasury-reconciliation"
TREASURY_FUNDING = "treasury_funding"


def _major(minor, currency):
    # Stripe's side may name a currency we do not price (a refund made elsewhere): shown, never a crash.
    return from_units(minor, MINOR_DIGITS.get((currency or "").upper(), 2))


def _text(amount):
    """A Decimal as people write it: no exponent, no trailing zeros beyond the point."""
    return f"{amount.normalize():f}"


# Items -------------------------------------------------------------------------------------------

def difference_record(*, kind, subject, currency, expected, actual, detail, halts_payouts=False):
    """One open item per (kind, subject): a job seeing the same subject again updates its figures. A resolved item
    with the very same figures for the same Stripe object or statement is an accepted difference and is not raised
    again; the treasury is one ongoing subject, so a difference that is still there after resolution is raised anew.
    Returns the open item, or None when accepted."""
    now = timezone.now()
    fields = {"currency": currency, "expected": expected, "actual": actual, "detail": detail[:500]}
    item = ReconciliationItem.objects.open().filter(kind=kind, subject=subject).first()
    if item is not None:
        ReconciliationItem.objects.filter(pk=item.pk).update(
            **fields, halts_payouts=item.halts_payouts or halts_payouts, last_seen_at=now)
        item.refresh_from_db()
        return item
    if kind != Kind.TREASURY and ReconciliationItem.objects.filter(
            kind=kind, subject=subject, status=ReconciliationItem.Status.RESOLVED, expected=expected,
            actual=actual).exists():
        return None
    try:
        with transaction.atomic():
            item = ReconciliationItem.objects.create(kind=kind, subject=subject, halts_payouts=halts_payouts, **fields)
    except IntegrityError:  # another run of the job raised it a moment ago
        return ReconciliationItem.objects.open().get(kind=kind, subject=subject)
    log.error("reconciliation_difference kind=%s subject=%s currency=%s expected=%s actual=%s detail=%s", kind,
              subject, currency, expected, actual, detail)
    return item


def reconciliation_item_resolve(*, item_id, by, reason):
    """An operator explains a difference (a correcting entry posted, a timing difference, Stripe's error...). Resolving
    the last open item that halts payouts resumes them. Runs inside the guarded action's transaction."""
    reason = (reason or "").strip()
    if not reason:
        raise ReasonRequired(field="reason")
    item = ReconciliationItem.objects.select_for_update().get(pk=item_id)
    item.mark_resolved(by=by, reason=reason, at=timezone.now())
    item.save()
    if item.halts_payouts and not ReconciliationItem.objects.open().filter(halts_payouts=True).exists():
        payouts_resume(key=TREASURY_HALT_KEY)
        log.warning("reconciliation_payouts_resumed item=%s by=%s", item.pk, by)
    log.info("reconciliation_resolved item=%s kind=%s subject=%s by=%s", item.pk, item.kind, item.subject, by)
    return item


# Card clearing against Stripe --------------------------------------------------------------------

def _window(now):
    end = now - timedelta(seconds=settings.RECONCILIATION_LAG_SECONDS)
    return end - timedelta(hours=settings.RECONCILIATION_WINDOW_HOURS), end


def _card_clearing(*, kinds, transfer_ids=None, created=None):
    """{transfer id: {currency: amount}} of the card_clearing postings of these entry kinds (debit +), for these
    transfers or for the entries created in `created` (start, end)."""
    postings = Posting.objects.filter(account__code="card_clearing", account__partner__isnull=True,
                                      entry__kind__in=kinds, entry__transfer__isnull=False, entry__posted=True)
    if transfer_ids is not None:
        postings = postings.filter(entry__transfer_id__in=transfer_ids)
    if created is not None:
        postings = postings.filter(entry__created_at__gte=created[0], entry__created_at__lt=created[1])
    booked = defaultdict(lambda: defaultdict(int))
    for transfer_id, currency, amount in postings.values_list("entry__transfer_id", "account__currency",
                                                              "amount_minor"):
        booked[transfer_id][currency] += amount
    return booked


def _booked(booked, transfer_id, currency, sign=1):
    return sign * booked.get(transfer_id, {}).get(currency, 0)


@dataclass(frozen=True)
class CardReport:
    payment_intents: int
    refunds: int
    disputes: int
    items: list


def card_reconcile(*, now=None):
    """Match card_clearing against Stripe over the window [now − LAG − WINDOW, now − LAG): the lag leaves payments
    whose webhook or refund task is still under way to the next run."""
    start, end = _window(now or timezone.now())
    span = {"created_gte": int(start.timestamp()), "created_lt": int(end.timestamp())}
    intents = stripe_rail.payment_intents_succeeded(**span)
    refunds = stripe_rail.refunds_succeeded(**span)
    disputes = stripe_rail.disputes_listed(**span)
    items = [*_payments_check(intents, (start, end)), *_refunds_check(refunds, (start, end)),
             *_disputes_check(disputes, (start, end))]
    items = [i for i in items if i is not None]
    log.info("card_reconciled window=%s..%s payment_intents=%s refunds=%s disputes=%s items=%s", start.isoformat(),
             end.isoformat(), len(intents), len(refunds), len(disputes), len(items))
    return CardReport(len(intents), len(refunds), len(disputes), items)


def _payments_check(intents, window):
    transfers = dict(Transfer.objects.filter(payment_intent_id__in=[i.state.id for i in intents])
                     .values_list("payment_intent_id", "id"))
    booked = _card_clearing(kinds=CARD_IN, transfer_ids=list(transfers.values()))
    for listed in intents:
        intent = listed.state
        transfer_id = transfers.get(intent.id)
        if transfer_id is None and not listed.transfer_id:
            continue  # not a PaymentIntent of ours (another integration on the same Stripe account)
        currency = intent.currency.upper()
        ledger = _booked(booked, transfer_id, currency)
        if ledger != intent.amount:
            what = ("no transfer of ours has it" if transfer_id is None else
                    f"transfer {transfer_id} has no funding or capture entry for it" if not ledger else
                    f"transfer {transfer_id}'s entry books {_major(ledger, currency)} {currency}")
            yield difference_record(kind=Kind.CARD_PAYMENT, subject=intent.id, currency=currency,
                                    expected=_major(ledger, currency), actual=_major(intent.amount, currency),
                                    detail=f"PaymentIntent {intent.id} succeeded in Stripe for "
                                           f"{_major(intent.amount, currency)} {currency}; {what}")
    listed = {i.state.id for i in intents}
    entries = _card_clearing(kinds=CARD_IN, created=window)
    for transfer in Transfer.objects.filter(pk__in=list(entries)).exclude(payment_intent_id__in=listed):
        for currency, ledger in entries[transfer.pk].items():
            intent = stripe_rail.payment_intent_find(transfer.payment_intent_id) if transfer.payment_intent_id else None
            if intent and intent.status == "succeeded" and (intent.currency.upper(), intent.amount) == (currency, ledger):
                continue  # created before the window; it matches
            stripe = intent.amount if intent and intent.status == "succeeded" and intent.currency.upper() == currency else 0
            yield difference_record(
                kind=Kind.CARD_PAYMENT, subject=transfer.payment_intent_id or f"transfer {transfer.pk}",
                currency=currency, expected=_major(ledger, currency), actual=_major(stripe, currency),
                detail=f"transfer {transfer.pk} books {_major(ledger, currency)} {currency} captured, but Stripe "
                       f"reports its PaymentIntent {transfer.payment_intent_id or '(none)'} as "
                       f"{intent.status if intent else 'unknown'}"
                       + (f" for {_major(intent.amount, intent.currency.upper())} {intent.currency.upper()}"
                          if intent else ""))


def _refunds_check(refunds, window):
    by_refund = dict(Transfer.objects.filter(refund_id__in=[r.id for r in refunds]).values_list("refund_id", "id"))
    by_intent = dict(Transfer.objects.filter(payment_intent_id__in=[r.payment_intent for r in refunds if r.payment_intent])
                     .values_list("payment_intent_id", "id"))
    booked = _card_clearing(kinds=CARD_REFUND, transfer_ids=[*by_refund.values(), *by_intent.values()])
    for refund in refunds:
        transfer_id = by_refund.get(refund.id) or by_intent.get(refund.payment_intent)
        if transfer_id is None:
            continue  # a refund of a payment that is not ours
        ledger = _booked(booked, transfer_id, refund.currency, sign=-1) if refund.id in by_refund else 0
        if ledger != refund.amount:
            what = (f"transfer {transfer_id}'s entry books {_major(ledger, refund.currency)} {refund.currency}" if ledger
                    else f"transfer {transfer_id} has no refund entry for it")
            yield difference_record(kind=Kind.CARD_REFUND, subject=refund.id, currency=refund.currency,
                                    expected=_major(ledger, refund.currency),
                                    actual=_major(refund.amount, refund.currency),
                                    detail=f"refund {refund.id} succeeded in Stripe for "
                                           f"{_major(refund.amount, refund.currency)} {refund.currency}; {what}")
    listed = {r.id for r in refunds}
    entries = _card_clearing(kinds=CARD_REFUND, created=window)
    for transfer in Transfer.objects.filter(pk__in=list(entries)).exclude(refund_id__in=listed):
        for currency, amount in entries[transfer.pk].items():
            ledger = -amount
            refund = stripe_rail.refund_find(transfer.refund_id) if transfer.refund_id else None
            if refund and refund.status == "succeeded" and (refund.currency, refund.amount) == (currency, ledger):
                continue
            stripe = refund.amount if refund and refund.status == "succeeded" and refund.currency == currency else 0
            yield difference_record(
                kind=Kind.CARD_REFUND, subject=transfer.refund_id or f"transfer {transfer.pk}", currency=currency,
                expected=_major(ledger, currency), actual=_major(stripe, currency),
                detail=f"transfer {transfer.pk} books a refund of {_major(ledger, currency)} {currency}, but Stripe "
                       + (f"reports refund {refund.id} as {refund.status}" if refund else
                          f"has no refund {transfer.refund_id or '(no refund id)'}"))


def _disputes_check(disputes, window):
    by_intent = dict(Transfer.objects.filter(payment_intent_id__in=[d.payment_intent for d in disputes if d.payment_intent])
                     .values_list("payment_intent_id", "id"))
    by_charge = dict(Transfer.objects.filter(charge_id__in=[d.charge for d in disputes]).values_list("charge_id", "id"))
    booked = _card_clearing(kinds=CARD_DISPUTE, transfer_ids=[*by_intent.values(), *by_charge.values()])
    for dispute in disputes:
        transfer_id = by_intent.get(dispute.payment_intent) or by_charge.get(dispute.charge)
        if transfer_id is None:
            continue
        amount = dispute.amount or 0
        ledger = _booked(booked, transfer_id, dispute.currency, sign=-1)
        if ledger != amount:
            what = (f"transfer {transfer_id}'s entry books {_major(ledger, dispute.currency)} {dispute.currency}"
                    if ledger else f"transfer {transfer_id} has no dispute entry for it")
            yield difference_record(kind=Kind.CARD_DISPUTE, subject=dispute.id, currency=dispute.currency,
                                    expected=_major(ledger, dispute.currency), actual=_major(amount, dispute.currency),
                                    detail=f"dispute {dispute.id} took {_major(amount, dispute.currency)} "
                                           f"{dispute.currency} in Stripe; {what}")
    listed = {d.id for d in disputes}
    entries = _card_clearing(kinds=CARD_DISPUTE, created=window)
    recorded = defaultdict(list)
    for transfer_id, stripe_id in CardDispute.objects.filter(transfer_id__in=list(entries),
                                                             kind=CardDispute.Kind.DISPUTE).values_list("transfer_id",
                                                                                                        "stripe_id"):
        recorded[transfer_id].append(stripe_id)
    for transfer_id, by_currency in entries.items():
        ids = recorded.get(transfer_id, [])
        if any(i in listed for i in ids):
            continue
        found = [d for d in map(stripe_rail.dispute_retrieve, ids) if d is not None]
        for currency, amount in by_currency.items():
            ledger = -amount
            if any((d.currency, d.amount) == (currency, ledger) for d in found):
                continue
            yield difference_record(
                kind=Kind.CARD_DISPUTE, subject=ids[0] if ids else f"transfer {transfer_id}", currency=currency,
                expected=_major(ledger, currency), actual=_major(sum(d.amount or 0 for d in found
                                                                     if d.currency == currency), currency),
                detail=f"transfer {transfer_id} books a dispute of {_major(ledger, currency)} {currency}, but Stripe "
                       + (f"has no dispute {', '.join(ids)}" if ids else "has no dispute recorded for it"))


# Partner balances against their statements -------------------------------------------------------

def _statement_cutoff(as_of):
    """The end of the statement's day, in TIME_ZONE."""
    return timezone.make_aware(datetime.combine(as_of + timedelta(days=1), time.min))


def partner_balance_at(*, partner, currency, at):
    """What we owed the partner at `at`, in minor units. `partner_balance` is a liability (credit-normal: a top-up
    credits it), so this is the negative of its debits less credits (account_balance) counted up to `at`."""
    total = (Posting.objects.filter(account__code="partner_balance", account__currency=currency,
                                    account__partner=partner, entry__created_at__lt=at, entry__posted=True)
             .aggregate(s=Sum("amount_minor"))["s"]) or 0
    return -total


def partner_statement_record(*, partner, currency, as_of, closing_balance, reference="", recorded_by=""):
    """An operator typed in a partner's statement. Compared at once when its day is over; otherwise by the job."""
    to_minor(closing_balance, currency)  # refuses more decimals than the currency has
    statement = PartnerStatement.objects.create(partner=partner, currency=currency, as_of=as_of,
                                                closing_balance=closing_balance, reference=reference,
                                                recorded_by=recorded_by)
    if _statement_cutoff(as_of) <= timezone.now():
        partner_statement_compare(statement=statement)
    return statement


def partner_statement_compare(*, statement):
    cutoff = _statement_cutoff(statement.as_of)
    ledger = partner_balance_at(partner=statement.partner, currency=statement.currency, at=cutoff)
    ledger_major = _major(ledger, statement.currency)
    PartnerStatement.objects.filter(pk=statement.pk).update(compared_at=timezone.now(), ledger_balance=ledger_major)
    if ledger == to_minor(statement.closing_balance, statement.currency):
        return None
    return difference_record(
        kind=Kind.PARTNER_BALANCE, subject=f"statement #{statement.pk}: {statement.partner} {statement.currency} "
                                           f"{statement.as_of}",
        currency=statement.currency, expected=ledger_major, actual=statement.closing_balance,
        detail=f"{statement.partner}'s statement ({statement.reference or 'no reference'}) closes {statement.as_of} at "
               f"{statement.closing_balance} {statement.currency}; our ledger has {ledger_major} at the end of that day")


def partner_statements_reconcile(*, now=None):
    """Compare every statement not yet compared whose day is over. Returns the items raised."""
    now = now or timezone.now()
    items = []
    for statement in PartnerStatement.objects.filter(compared_at__isnull=True).select_related("partner"):
        if _statement_cutoff(statement.as_of) <= now:
            items.append(partner_statement_compare(statement=statement))
    return [i for i in items if i is not None]


# Treasury floats (KGST, USDKG) against their chains ----------------------------------------------

def treasury_funding_record(*, amount, reference, memo="", currency="KGS"):
    """Tokens the treasury put into a float (amount > 0, in the float's currency: som for KGST, dollars for USDKG) or
    took out of it (< 0) outside payouts: the opening balance, a top-up, a sweep. One entry per reference (e.g. the
    funding transaction's hash) and float."""
    account = float_account(currency)  # KeyError: a currency we never pay out
    minor = to_minor(amount, currency)
    kind = TREASURY_FUNDING if minor > 0 else "treasury_withdrawal"
    # KGST's references keep their first spelling (entries booked before USDKG existed).
    booked = f"treasury:{reference}" if currency == "KGS" else f"treasury:{currency}:{reference}"
    return ledger_post(kind=kind, reference=booked, memo=memo[:200],
                       lines=[(account, currency, minor), ("treasury_capital", currency, -minor)])


@dataclass(frozen=True)
class TreasuryReading:
    currency: str  # the float's currency (KGS: KGST, USD: USDKG)
    ledger_minor: int
    expected_base_units: int  # what the chain should hold: the ledger's float less what is moving
    position: object  # onchain.api.TreasuryPosition

    @property
    def difference_base_units(self):
        return self.position.held_base_units - self.expected_base_units

    def major(self, base_units):
        return Decimal(base_units).scaleb(-self.position.decimals)


def treasury_read(*, currency="KGS", tries=3):
    """A float's ledger balance and chain position, read so that they agree in time: the ledger is read before and
    after the chain (a batch made final in between posts its payout entries and changes it: read again). None when its
    token is not registered."""
    asset = asset_for(currency)
    for _ in range(tries):
        before = account_balance(asset.float_account, currency)
        position = treasury_position(symbol=asset.symbol)
        if position is None:
            return None
        if account_balance(asset.float_account, currency) == before:
            expected = int(Decimal(before).scaleb(position.decimals - MINOR_DIGITS[currency])) - position.moving_base_units
            return TreasuryReading(currency=currency, ledger_minor=before, expected_base_units=expected,
                                   position=position)
    log.warning("treasury_read_unsettled tries=%s", tries)
    return None


def treasury_reconcile_all():
    """Every float whose token is registered (KGST, USDKG), each against its own chain; the items raised. A chain that
    does not answer skips its own float only (the error is raised after the others were reconciled)."""
    items, failed = [], None
    for currency in ASSETS:
        try:
            items.append(treasury_reconcile(currency=currency))
        except Exception as exc:  # noqa: BLE001 - one chain's failure must not skip another's float
            log.warning("treasury_reconcile_failed currency=%s error=%s", currency, type(exc).__name__)
            failed = failed or exc
    if failed is not None:
        raise failed
    return [item for item in items if item is not None]


def _opening_booked(currency):
    return JournalEntry.objects.filter(kind=TREASURY_FUNDING, postings__account__code=float_account(currency),
                                       postings__account__currency=currency).exists()


def treasury_reconcile(*, currency="KGS"):
    """A shortfall on chain (less than the books say) raises an item that halts payouts (all of them: a float short on
    one chain is a fault to look at before anything else moves) and alerts operators; a surplus (tokens we did not
    book: a top-up not recorded yet, or anyone's transfer to our address) raises an item and an alert without halting,
    so nobody can stop our payouts by sending us tokens. Until the float's opening balance is booked
    (treasury_funding_record) there is nothing to reconcile against: operators get an alert instead."""
    if ReconciliationItem.objects.open().filter(halts_payouts=True).exists():
        payouts_halt(key=TREASURY_HALT_KEY, reason="an open treasury reconciliation difference")
    reading = treasury_read(currency=currency)
    if reading is None:
        return None  # no settlement token registered, or the books moved under every reading: next pass
    if not _opening_booked(currency):
        operator_alert_raise(kind="reconciliation", message=f"{reading.position.symbol} treasury: no opening balance "
                             "is booked, so the float cannot be reconciled with the chain (docs/runbook.md, "
                             "Reconciliation differences)")
        return None
    if reading.difference_base_units == 0:
        return None
    diff, position = reading.difference_base_units, reading.position
    shortfall = diff < 0
    detail = (f"{position.symbol} held by our wallets and batch contract at block {position.block}: "
              f"{_text(reading.major(position.held_base_units))}; the ledger's float "
              f"{_text(_major(reading.ledger_minor, currency))} less {_text(reading.major(position.moving_base_units))} "
              f"moving in batches not yet final says {_text(reading.major(reading.expected_base_units))}: "
              f"{'short' if shortfall else 'over'} by {_text(reading.major(abs(diff)))}")
    item = difference_record(kind=Kind.TREASURY, subject=f"{position.symbol} float", currency=currency,
                             expected=reading.major(reading.expected_base_units),
                             actual=reading.major(position.held_base_units), detail=detail, halts_payouts=shortfall)
    if item.halts_payouts:
        payouts_halt(key=TREASURY_HALT_KEY, reason=f"treasury reconciliation item #{item.pk}: {detail}")
    operator_alert_raise(kind="reconciliation", message=f"treasury item #{item.pk}: {detail}"
                                                        + ("; payouts halted" if item.halts_payouts else ""))
    return item


def treasury_dev_book_opening(*, currency="KGS"):
    """`make run` only: the dev chain's float is minted at bootstrap with no entry; book what the chain holds beyond
    the ledger as treasury funding, under the block it was measured at."""
    reading = treasury_read(currency=currency)
    if reading is None or reading.difference_base_units <= 0:
        return None
    surplus = reading.difference_base_units // 10 ** (reading.position.decimals - MINOR_DIGITS[currency])
    if surplus <= 0:
        return None
    return treasury_funding_record(amount=_major(surplus, currency), currency=currency,
                                   reference=f"dev-mint-block-{reading.position.block}",
                                   memo="dev chain float minted by devsetup")
