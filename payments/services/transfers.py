"""Creating transfers idempotently and starting their funding: a card (Stripe PaymentIntent), or at once from the
partner's prefunded balance (services/balances.py)."""

import logging

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from onchain.api import recipient_check
from onchain.errors import ChainUnavailable, RecipientRefused
from payments.errors import (
    FundingMethodRefused,
    FundingPending,
    FundingUnavailable,
    IdempotencyMismatch,
    QuoteAlreadyUsed,
    TransferRefused,
    WalletCheckUnavailable,
    WalletRefused,
)
from payments.models import Transfer
from payments.providers import stripe_rail
from payments.services.balances import balance_fund, balance_funding_check
from payments.services.fraud import frozen_detail, identities_frozen
from payments.services.idempotency import request_fingerprint  # noqa: F401 (its home before the record layer)
from payments.services.limits import limits_reserve
from payments.services.quotes import quote_get_usable
from payments.services.screening import wallet_is_denied
from payments.services.travel_rule import travel_rule_store, travel_rule_validate

log = logging.getLogger(__name__)
WALLET_FIELD = "recipient.wallet_address"
WALLET_CHECK_RETRY = gettext_lazy("We could not check this wallet address on the blockchain just now. Nothing was "
                                  "saved: please try again in a minute.")


def _replay(*, partner, idempotency_key, fingerprint):
    existing = Transfer.objects.select_related("quote").filter(partner=partner, idempotency_key=idempotency_key).first()
    if existing and existing.request_fingerprint != fingerprint:
        raise IdempotencyMismatch(_("This Idempotency-Key was used with a different request body."))
    return existing


def transfer_create(*, partner, idempotency_key, fingerprint, quote_id, sender, recipient, funding=None,
                    travel_rule=None):
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
    beneficiary's data (services/travel_rule.py), stored with the transfer."""
    method = (funding or {}).get("method") or Transfer.FundingMethod.CARD
    if method not in Transfer.FundingMethod.values:
        raise FundingMethodRefused(_("Unknown funding method: use card or balance."), field="funding.method")
    if method == Transfer.FundingMethod.BALANCE:
        balance_funding_check(partner=partner)
    if not _replay(partner=partner, idempotency_key=idempotency_key, fingerprint=fingerprint):
        _refuse_frozen(sender=sender, recipient=recipient)
    transfer, created = _transfer_insert(partner=partner, idempotency_key=idempotency_key, fingerprint=fingerprint,
                                         quote_id=quote_id, sender=sender, recipient=recipient, method=method,
                                         travel_rule=travel_rule)
    try:
        return transfer_funding_prepare(transfer=transfer), created
    except FundingUnavailable as exc:
        raise FundingPending(exc.detail, transfer=transfer) from exc


def _refuse_frozen(*, sender, recipient):
    frozen = identities_frozen([("email", sender["email"]), ("phone", sender["phone"]),
                                ("wallet", recipient["wallet_address"])])
    if frozen:
        log.warning("transfer_refused frozen=%s", frozen_detail(frozen))
        raise TransferRefused(_("We cannot accept a transfer with these details. Please contact support."))


def _transfer_insert(*, partner, idempotency_key, fingerprint, quote_id, sender, recipient, method, travel_rule):
    existing = _replay(partner=partner, idempotency_key=idempotency_key, fingerprint=fingerprint)
    if existing:
        return existing, False
    if wallet_is_denied(recipient["wallet_address"]):
        raise WalletRefused(_("Payouts to this wallet address are not allowed."), field=WALLET_FIELD)
    _wallet_check(recipient["wallet_address"])
    try:
        with transaction.atomic():
            quote = quote_get_usable(quote_id=quote_id, partner=partner, lock=True)
            # A concurrent duplicate may have committed while we waited for the quote's lock.
            existing = _replay(partner=partner, idempotency_key=idempotency_key, fingerprint=fingerprint)
            if existing:
                return existing, False
            if Transfer.objects.filter(quote=quote).exists():
                raise QuoteAlreadyUsed(_("This quote already backs another transfer: ask for a new one."), field="quote_id")
            travel = travel_rule_validate(quote=quote, sender=sender, recipient=recipient, travel_rule=travel_rule)
            transfer = Transfer.objects.create(
                partner=partner, quote=quote, idempotency_key=idempotency_key, request_fingerprint=fingerprint,
                sender_name=sender["name"], sender_phone=sender["phone"], sender_email=sender["email"],
                recipient_name=recipient["name"], recipient_phone=recipient["phone"],
                recipient_wallet=recipient["wallet_address"], funding_method=method,
            )
            limits_reserve(transfer=transfer)
            if travel:
                travel_rule_store(transfer=transfer, data=travel)
            if method == Transfer.FundingMethod.BALANCE:
                balance_fund(transfer=transfer)
    except IntegrityError:
        # A concurrent request with the same key won the insert: answer as a replay of it.
        existing = _replay(partner=partner, idempotency_key=idempotency_key, fingerprint=fingerprint)
        if existing:
            return existing, False
        raise
    log.info("transfer_created transfer_id=%s partner=%s", transfer.id, partner)
    return transfer, True


def _wallet_check(address):
    """onchain's recipient check, before any transaction (it asks the node): an address no payout may go to is
    refused beside the wallet field; a node that does not answer is a 503 asking to retry, never an accept."""
    try:
        recipient_check(address)
    except RecipientRefused as exc:
        log.info("transfer_wallet_refused kind=%s address=%s", exc.kind, address)
        raise WalletRefused(exc.detail, field=WALLET_FIELD) from exc
    except ChainUnavailable as exc:
        raise WalletCheckUnavailable(WALLET_CHECK_RETRY, field=WALLET_FIELD) from exc


def transfer_funding_prepare(*, transfer):
    """Make sure the transfer has its PaymentIntent. Runs after the transfer row is committed, so a crash
    between the two leaves a transfer that a retry (or the sweeper) completes with the same idempotency key."""
    if (transfer.payment_intent_id or transfer.status != Transfer.Status.AWAITING_FUNDING
            or transfer.funding_method != Transfer.FundingMethod.CARD):
        return transfer
    intent = stripe_rail.payment_intent_create(
        transfer_id=transfer.id, amount_minor=transfer.source_minor, currency=transfer.quote.source_currency)
    stored = Transfer.objects.filter(pk=transfer.pk, payment_intent_id="", status=Transfer.Status.AWAITING_FUNDING
                                     ).update(payment_intent_id=intent.id, payment_client_secret=intent.client_secret)
    transfer.refresh_from_db()
    if not stored and transfer.payment_intent_id != intent.id:
        # Cancelled (or expired) while we asked Stripe: this PaymentIntent must never be paid.
        stripe_rail.payment_intent_cancel(transfer_id=transfer.id, payment_intent_id=intent.id)
        return transfer
    log.info("payment_intent_created transfer_id=%s payment_intent=%s", transfer.id, transfer.payment_intent_id)
    return transfer
