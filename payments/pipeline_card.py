"""Paying a transfer by card on the pay page (payments/web/views.py): the attempts a transfer allows, the card's own
checks (issuing country, frozen card, sender or wallet, the card's limits, velocity) before any charge, and the one
confirm call that carries the card and the 3-D Secure request. A payment that succeeds funds the transfer through the
one funding path (payments/pipeline.py, transfer_mark_funded), as the webhook and the poller do.
"""

import logging

from django.conf import settings
from django.db.models import F
from django.utils.translation import gettext as _

from payments.errors import CardAttemptsExhausted, CardRefused, ProcessorRequestRefused, TransferNotPayable
from payments.models import Transfer
from payments.pipeline import transfer_mark_funded
from payments.providers import stripe_rail
from payments.services import fraud, limits

log = logging.getLogger(__name__)
S = Transfer.Status


def _card_attempt_claim(transfer, token):
    """Count this token as one of the transfer's card attempts, race-free (one conditional UPDATE); True for a new
    attempt, False for a token that already passed every check (a double submit: Stripe replays its answers)."""
    claimed = (Transfer.objects.filter(pk=transfer.pk, card_attempts__lt=settings.CARD_ATTEMPTS_PER_TRANSFER)
               .exclude(last_card_token=token).update(card_attempts=F("card_attempts") + 1))
    if claimed:
        return True
    if Transfer.objects.filter(pk=transfer.pk, last_card_token=token).exists():
        return False
    raise CardAttemptsExhausted(attempts_exhausted_message())


def attempts_exhausted_message():
    return _("This transfer can no longer be paid: the card was tried too many times. It will be cancelled "
             "automatically and nothing was charged; start a new transfer to send money.")


def card_attempts_left(transfer):
    return max(settings.CARD_ATTEMPTS_PER_TRANSFER - transfer.card_attempts, 0)


def _country_refused_message():
    return _("Cards issued in Russia cannot be used for international transfers. "
             "Please pay with a card issued in another country.")


def transfer_pay_card(*, transfer, card_token, client_ip=None):
    """Web flow: the browser tokenised the card with Stripe.js. The token counts as one of the transfer's card
    attempts (CARD_ATTEMPTS_PER_TRANSFER); it becomes a PaymentMethod, whose card tells its issuing country and
    fingerprint: a refused country or a frozen card, sender or wallet is refused before any charge, and the attempt
    counts against the velocity limits (card, email, phone, wallet, client IP). Then ONE confirm call carries the card
    and the 3-D Secure request; a card that supports 3-D Secure returns `requires_action` for Stripe.js."""
    if transfer.status != S.AWAITING_FUNDING or not transfer.payment_intent_id:
        raise TransferNotPayable(_("This transfer is not waiting for a payment."))
    new_attempt = _card_attempt_claim(transfer, card_token)
    try:
        method_id, card = stripe_rail.card_payment_method(transfer_id=transfer.id, token=card_token)
    except ProcessorRequestRefused as exc:
        raise CardRefused(_("The card details could not be read: please enter them again."), field="card") from exc
    Transfer.objects.filter(pk=transfer.pk, status=S.AWAITING_FUNDING).update(
        card_fingerprint=card.fingerprint, card_country=card.country)
    if card.country in settings.CARD_COUNTRIES_REFUSED or not card.country:
        raise CardRefused(_country_refused_message(), field="card")
    identities = fraud.transfer_identities(transfer, card_fingerprint=card.fingerprint)
    frozen = fraud.identities_frozen(identities)
    if frozen:
        log.warning("card_payment_refused transfer_id=%s frozen=%s", transfer.id, fraud.frozen_detail(frozen))
        raise CardRefused(_("We cannot accept this payment. Please contact support."), field="card")
    if card.fingerprint:  # the card's own limits (payments/services/limits.py): over them, this card is refused
        limits.limits_reserve_card(transfer=transfer, card_fingerprint=card.fingerprint)
    if new_attempt:
        fraud.velocity_consume(identities + ([("ip", client_ip)] if client_ip else []))
        Transfer.objects.filter(pk=transfer.pk).update(last_card_token=card_token)
    try:
        intent = stripe_rail.payment_intent_pay(transfer_id=transfer.id, payment_intent_id=transfer.payment_intent_id,
                                                payment_method_id=method_id)
    except ProcessorRequestRefused:
        # A double submit: the first confirm already went through (or is in flight). Ask Stripe what stands.
        intent = stripe_rail.payment_intent_retrieve(transfer.payment_intent_id)
        if intent.status not in ("succeeded", "processing", "requires_action"):
            raise CardRefused(_("This payment could not be completed with this card; please try another card."),
                              field="card") from None
    if intent.status == "succeeded":
        transfer_mark_funded(payment_intent=intent)
    return intent
