"""Creating transfers idempotently and starting their funding: a card (Stripe PaymentIntent), or at once from the
partner's prefunded balance (services/balances.py)."""

import logging

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Value
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from onchain.api import recipient_check
from onchain.errors import ChainUnavailable, RecipientRefused
from payments.assets import asset_for
from payments.errors import (
    FundingMethodRefused,
    FundingPending,
    FundingUnavailable,
    IdempotencyMismatch,
    QuoteAlreadyUsed,
    ReferenceAlreadyUsed,
    TransferRefused,
    WalletCheckUnavailable,
    WalletRefused,
)
from payments.models import Quote, Transfer
from payments.providers import stripe_rail
from payments.services.balances import balance_fund, balance_funding_check
from payments.services.fraud import (
    frozen_detail,
    frozen_exists,
    identities_frozen,
    is_settlement_address,
    settlement_address_exists,
)
from payments.services.idempotency import request_fingerprint  # noqa: F401 (its home before the record layer)
from payments.services.limits import limits_reserve
from payments.services.payout_partners import PARTNER_FIELD, partner_payout_create, payout_partner_resolve
from payments.services.quotes import quote_get_usable
from payments.services.sandbox import sandbox_magic_apply
from payments.services.screening import wallet_is_denied, wallet_listed
from payments.services.travel_rule import travel_rule_store, travel_rule_validate, usd_rate_annotations
from payments.services.webhooks import endpoints_read_once

log = logging.getLogger(__name__)
WALLET_FIELD = "recipient.wallet_address"
WALLET_CHECK_RETRY = gettext_lazy("We could not check this wallet address on the blockchain just now. Nothing was "
                                  "saved: please try again in a minute.")


def _replay(*, partner, idempotency_key, fingerprint, livemode=True):
    existing = Transfer.objects.select_related("quote").filter(partner=partner, livemode=livemode,
                                                               idempotency_key=idempotency_key).first()
    if existing and existing.request_fingerprint != fingerprint:
        raise IdempotencyMismatch(_("This Idempotency-Key was used with a different request body."))
    return existing


def _checks(*, sender, recipient):
    """What the refusals before the transaction ask the database, as expressions for the quote's first read: whether
    the wallet is a payout partner's settlement address (`_route`), whether the sender or the wallet is frozen
    (`_refuse_frozen`), whether a sanctions list names the wallet (`_destination_check`). A wallet reached through a
    payout partner is the partner's, checked by those steps themselves."""
    wallet = "" if recipient.get("payout_partner") else recipient.get("wallet_address") or ""
    checks = {"check_frozen": frozen_exists(_frozen_pairs(sender, wallet))}
    if wallet:
        checks.update(check_settlement=settlement_address_exists(wallet), check_listed=wallet_listed(wallet))
    return checks


def _replay_and_target(*, partner, idempotency_key, fingerprint, quote_id, livemode=True, checks=None):
    """(the transfer under this key or None, what `quote_id` pays in: KGS or USD, the answers to `checks`) in one read
    for a new key: the quote's row carries whether a transfer holds the key (the full transfer is read only then). A
    quote that does not exist pays KGS (it is refused under its lock later) and answers no check ({}: each step then
    asks for itself)."""
    checks = checks or {}
    held = Transfer.objects.filter(partner=partner, livemode=livemode, idempotency_key=idempotency_key)
    row = (Quote.objects.filter(pk=quote_id).annotate(replayed=Exists(held), **checks)
           .values_list("target_currency", "replayed", *checks).first())
    target, replayed, *answers = row if row is not None else ("KGS", None)
    known = {name.removeprefix("check_"): answer for name, answer in zip(checks, answers, strict=False)}
    if replayed is False:
        return None, target, known
    return (_replay(partner=partner, idempotency_key=idempotency_key, fingerprint=fingerprint, livemode=livemode),
            target, known)


def _conflict(*, partner, idempotency_key, fingerprint, livemode, quote_id, reference):
    """What a transfer already holding this key, this quote or this reference means for a new one: the transfer under
    this key (answered as a replay; IdempotencyMismatch for another body), else QuoteAlreadyUsed or
    ReferenceAlreadyUsed; None when none holds them (a conflict elsewhere)."""
    existing = _replay(partner=partner, idempotency_key=idempotency_key, fingerprint=fingerprint, livemode=livemode)
    if existing is not None:
        return existing
    if Transfer.objects.filter(quote_id=quote_id).exists():
        raise QuoteAlreadyUsed(_("This quote already backs another transfer: ask for a new one."), field="quote_id")
    if _reference_taken(partner=partner, livemode=livemode, reference=reference):
        raise _reference_refused()
    return None


def transfer_create(*, partner, idempotency_key, fingerprint, quote_id, sender, recipient, funding=None,
                    travel_rule=None, livemode=True, reference="", language=None):
    """Create the transfer (once per idempotency key) and prepare its card funding: the one entry point for the API
    and the web form. Returns (transfer, created); the same key and body return the first transfer, another body
    is refused. If the card processor does not answer, the transfer stays saved and FundingPending carries it
    (a retry, the pay page or the sweeper prepares the PaymentIntent later with the same idempotency key).
    A sender (email, phone) or wallet frozen after a dispute or a fraud warning is refused (not a replay of a
    transfer made before the freeze: that answers as before).
    `funding` {"method": "balance"} (a partner's transfer only) funds it in the inserting transaction from the
    partner's balance: a balance that does not cover it is refused and nothing is created (balances.balance_fund).
    The sender's limits are reserved in the inserting transaction (services/limits.py: over a hard limit, refused and
    nothing created); at or above the travel-rule threshold `travel_rule` must carry the originator's and
    beneficiary's data (services/travel_rule.py), stored with the transfer.
    `livemode` False (a test key): a sandbox transfer from a test quote. No card payment, no balance, no limits, no
    chain: it moves only by its magic amount or the simulate endpoint (services/sandbox.py).
    `reference` (the partner's own id, optional) must not name another of the partner's transfers in the same mode:
    refused with ReferenceAlreadyUsed and nothing created; a replay of the request that created it replays as any
    other.
    `language` (en, ru or ky; default: the request's active language) is what its notifications are written in."""
    # A replay answers with the first transfer even if its payout partner stopped taking transfers since.
    replay, target, known = _replay_and_target(partner=partner, idempotency_key=idempotency_key,
                                               fingerprint=fingerprint, quote_id=quote_id, livemode=livemode,
                                               checks=_checks(sender=sender, recipient=recipient))
    recipient, payout_partner = (recipient, None) if replay else _route(recipient, settlement=known.get("settlement"))
    method = (funding or {}).get("method") or Transfer.FundingMethod.CARD
    if method not in Transfer.FundingMethod.values:
        raise FundingMethodRefused(_("Unknown funding method: use card or balance."), field="funding.method")
    if method == Transfer.FundingMethod.BALANCE and livemode:
        balance_funding_check(partner=partner)
    if replay:
        transfer, created = replay, False
    else:
        _refuse_frozen(sender=sender, recipient=recipient, frozen=known.get("frozen"))
        transfer, created = _transfer_insert(
            partner=partner, idempotency_key=idempotency_key, fingerprint=fingerprint, quote_id=quote_id,
            sender=sender, recipient=recipient, method=method, travel_rule=travel_rule, livemode=livemode,
            payout_partner=payout_partner, reference=reference, language=language_of(language), target=target,
            listed=known.get("listed"))
    try:
        return transfer_funding_prepare(transfer=transfer), created
    except FundingUnavailable as exc:
        raise FundingPending(exc.detail, transfer=transfer) from exc


def _route(recipient, *, settlement=None):
    """A recipient paid through a payout partner (`payout_partner`, `account`) is paid at the partner's settlement
    address: the rest of creation checks that address as it checks a wallet (payments/services/payout_partners.py).
    `settlement`: whether the wallet named is a settlement address, already read (None: asked here)."""
    if not recipient.get("payout_partner"):
        if not recipient.get("wallet_address"):
            # Only the recipient's phone: the recipient claims it and names the destination (services/claims.py).
            return {**recipient, "wallet_address": ""}, None
        # A payout partner's address named as a plain wallet would complete with no payout reference for the partner
        # to pay against (and escape the freezes its address is exempt from).
        if settlement if settlement is not None else is_settlement_address(recipient["wallet_address"]):
            raise WalletRefused(_("This address belongs to a payout partner: name the partner (recipient."
                                  "payout_partner) and the recipient's account there instead."), field=WALLET_FIELD)
        return recipient, None
    payout_partner = payout_partner_resolve(recipient["payout_partner"])
    return {**recipient, "wallet_address": payout_partner.settlement_address}, payout_partner


def _frozen_pairs(sender, wallet):
    return [("email", sender["email"]), ("phone", sender["phone"])] + ([("wallet", wallet)] if wallet else [])


def _refuse_frozen(*, sender, recipient, frozen=None):
    """`frozen`: whether any of them is, already read (None: asked here); the freezes are read only for one that is."""
    wallet = "" if recipient.get("payout_partner") else recipient["wallet_address"]
    frozen = identities_frozen(_frozen_pairs(sender, wallet)) if frozen is not False else []
    if frozen:
        log.warning("transfer_refused frozen=%s", frozen_detail(frozen))
        raise TransferRefused(_("We cannot accept a transfer with these details. Please contact support."))


def _reference_refused():
    return ReferenceAlreadyUsed(_("This reference already names another of your transfers: send a new one, or the "
                                  "same Idempotency-Key and body to read back the transfer made with it."),
                                field="reference")


def _holders(*, partner, livemode, reference):
    """Annotations of the quote's locked read: `held`, a transfer is made on it; `reference_held`, one of the
    partner's transfers in this mode carries `reference` (always False without one)."""
    taken = Transfer.objects.filter(partner=partner, livemode=livemode, reference=reference) if reference else None
    return {"held": Exists(Transfer.objects.filter(quote=OuterRef("pk"))),
            "reference_held": Exists(taken) if taken is not None else Value(False)}


def _reference_taken(*, partner, livemode, reference):
    return bool(reference) and Transfer.objects.filter(partner=partner, livemode=livemode,
                                                        reference=reference).exists()


def _transfer_insert(*, partner, idempotency_key, fingerprint, quote_id, sender, recipient, method, travel_rule,
                     livemode, payout_partner=None, reference="", language="en", target="KGS", listed=None):
    """Insert the transfer, the caller having found no transfer under this key; a concurrent duplicate that commits
    meanwhile meets the unique constraints of the insert and is answered as a replay."""
    conflict = {"partner": partner, "idempotency_key": idempotency_key, "fingerprint": fingerprint,
                "livemode": livemode, "quote_id": quote_id, "reference": reference}
    field = PARTNER_FIELD if payout_partner else WALLET_FIELD
    if recipient["wallet_address"]:  # empty: the recipient names it when claiming (services/claims.py)
        # Checked on the chain of what the quote pays (a USDKG issuer's rules, not KGST's); before any lock, as it
        # asks the node. A quote that does not exist is refused below, under its lock.
        _destination_check(recipient["wallet_address"], field=field, livemode=livemode, currency=target,
                           listed=listed)
    try:
        # Its events (created; for a balance funding also funded and the balance's movement) share one endpoint read.
        with transaction.atomic(), endpoints_read_once():
            # Whether a transfer holds the quote or the reference rides on the quote's locked read. A duplicate that
            # committed while we waited for the lock is not in that read's snapshot: the insert below then fails on
            # the same unique constraints (key, quote, reference) and the except answers as here.
            # So does the USD rate in effect, which the travel rule's threshold needs.
            quote = quote_get_usable(quote_id=quote_id, partner=partner, lock=True, livemode=livemode,
                                     annotate={**_holders(partner=partner, livemode=livemode, reference=reference),
                                               **usd_rate_annotations(now=timezone.now())})
            if (quote.held or quote.reference_held) and (existing := _conflict(**conflict)) is not None:
                return existing, False
            travel = travel_rule_validate(quote=quote, sender=sender, recipient=recipient, travel_rule=travel_rule,
                                          usd=(quote.usd_rate, quote.usd_value_date))
            transfer = Transfer.objects.create(
                partner=partner, quote=quote, idempotency_key=idempotency_key, request_fingerprint=fingerprint,
                sender_name=sender["name"], sender_phone=sender["phone"], sender_email=sender["email"],
                recipient_name=recipient["name"], recipient_phone=recipient["phone"],
                recipient_wallet=recipient["wallet_address"], funding_method=method, livemode=livemode,
                reference=reference, language=language,
            )
            if not payout_partner:
                # No payout-partner payout exists for it: say so to the instance, so reading it (the response) does
                # not ask the database.
                Transfer._meta.get_field("partner_payout").set_cached_value(transfer, None)
            else:
                partner_payout_create(transfer=transfer, payout_partner=payout_partner, account=recipient["account"])
            if travel:
                travel_rule_store(transfer=transfer, data=travel)
            if not livemode:
                sandbox_magic_apply(transfer=transfer)  # no limits, no balance, no ledger: nothing real moves
            else:
                limits_reserve(transfer=transfer)
                if method == Transfer.FundingMethod.BALANCE:
                    balance_fund(transfer=transfer)
    except IntegrityError:
        # A concurrent request won the insert: with the same key, answer as a replay of it; with the same quote or
        # reference, refuse as above.
        existing = _conflict(**conflict)
        if existing is None:
            raise
        return existing, False
    log.info("transfer_created transfer_id=%s partner=%s", transfer.id, partner)
    return transfer, True


def _destination_check(address, *, field, livemode=True, currency="KGS", listed=None):
    if wallet_is_denied(address, listed=listed):
        raise WalletRefused(_("Payouts to this wallet address are not allowed."), field=field)
    if livemode:  # the sandbox never asks the chain
        _wallet_check(address, field=field, currency=currency)


def wallet_destination_check(*, address, field=WALLET_FIELD, currency="KGS"):
    """The checks a wallet named at creation gets, for a wallet named later (a recipient's claim): not a payout
    partner's settlement address, not denied, not frozen, and accepted by onchain's recipient check. Raises
    WalletRefused / WalletCheckUnavailable / TransferRefused beside `field`; the address is already well-formed.
    `currency`: the target currency the wallet is paid in (its token's chain is asked)."""
    if is_settlement_address(address):
        raise WalletRefused(_("This address belongs to a payout partner: choose the partner instead."), field=field)
    if identities_frozen([("wallet", address)]):
        raise WalletRefused(_("Payouts to this wallet address are not allowed."), field=field)
    _destination_check(address, field=field, currency=currency)


def language_of(code=None):
    """One of LANGUAGES for `code`, or for the active language (the page's, or the API request's Accept-Language)."""
    try:
        return translation.get_supported_language_variant(code or translation.get_language() or "")
    except LookupError:
        return settings.LANGUAGE_CODE


def _wallet_check(address, field=WALLET_FIELD, currency="KGS"):
    """onchain's recipient check, before any transaction (it asks the node): an address no payout may go to is
    refused beside the wallet field; a node that does not answer is a 503 asking to retry, never an accept."""
    try:
        recipient_check(address, symbol=asset_for(currency).symbol)
    except RecipientRefused as exc:
        log.info("transfer_wallet_refused kind=%s address=%s", exc.kind, address)
        raise WalletRefused(exc.detail, field=field) from exc
    except ChainUnavailable as exc:
        raise WalletCheckUnavailable(WALLET_CHECK_RETRY, field=field) from exc


def transfer_funding_prepare(*, transfer):
    """Make sure the transfer has its PaymentIntent. Runs after the transfer row is committed, so a crash
    between the two leaves a transfer that a retry (or the sweeper) completes with the same idempotency key."""
    if (transfer.payment_intent_id or transfer.status != Transfer.Status.AWAITING_FUNDING
            or transfer.funding_method != Transfer.FundingMethod.CARD or not transfer.livemode):
        return transfer
    intent = stripe_rail.payment_intent_create(
        transfer_id=transfer.id, amount_minor=transfer.source_minor, currency=transfer.quote.source_currency,
        receipt_email=transfer.sender_email)
    stored = Transfer.objects.filter(pk=transfer.pk, payment_intent_id="", status=Transfer.Status.AWAITING_FUNDING
                                     ).update(payment_intent_id=intent.id, payment_client_secret=intent.client_secret)
    if stored:  # the row now holds exactly these two values: no re-read (it would drop the cached quote too)
        transfer.payment_intent_id, transfer.payment_client_secret = intent.id, intent.client_secret
    else:
        transfer.refresh_from_db()
    if not stored and transfer.payment_intent_id != intent.id:
        # Cancelled (or expired) while we asked Stripe: this PaymentIntent must never be paid.
        stripe_rail.payment_intent_cancel(transfer_id=transfer.id, payment_intent_id=intent.id)
        return transfer
    log.info("payment_intent_created transfer_id=%s payment_intent=%s", transfer.id, transfer.payment_intent_id)
    return transfer
