"""The transfer state machine: guarded transitions, idempotent pipeline steps, screening outcomes, quote math."""

from decimal import ROUND_DOWN, ROUND_UP, Decimal

import pytest
from django.utils import timezone
from django_fsm import TransitionNotAllowed

from onchain.models import Payout
from payments import pipeline
from payments.errors import AmountOutOfRange, CorridorUnavailable, TransferNotPayable
from payments.models import JournalEntry, Transfer
from payments.providers import stripe_rail
from payments.services.quotes import quote_price
from payments.services.setup import SEED_RATES, partner_create
from payments.services.transfers import request_fingerprint, transfer_create, transfer_funding_prepare
from tests.conftest import new_recipient, pay_on_stripe

pytestmark = pytest.mark.django_db
S = Transfer.Status


def make_transfer(*, recipient_name="Gulnara Usenova", sender_name="Aibek Usenov", wallet=None, key="order-1"):
    from payments.services.quotes import quote_create

    partner, _ = partner_create(name="acme")
    quote = quote_create(partner=partner, source_currency="RUB", source_amount=Decimal("15000.00"))
    transfer, _ = transfer_create(
        partner=partner, idempotency_key=key, fingerprint=request_fingerprint({"key": key}), quote_id=quote.id,
        sender={"name": sender_name, "phone": "+79161234567", "email": "aibek@example.com"},
        recipient={"name": recipient_name, "phone": "+996555123456", "wallet_address": wallet or new_recipient()})
    return transfer


def funded(transfer):
    transfer.mark_funded(timezone.now())
    transfer.save()
    return transfer


def fresh(transfer):
    return Transfer.objects.get(pk=transfer.pk)


# Guarded transitions -----------------------------------------------------------------------------

@pytest.mark.parametrize(("method", "args"), [
    ("mark_settling", ("ref",)),
    ("mark_held", ("reason",)),
    ("mark_rejected", ("reason",)),
    ("mark_refunded", ("re_1",)),
    ("mark_settlement_failed", ("reason",)),
])
def test_transitions_out_of_awaiting_funding_are_guarded(pricing, method, args):
    """From awaiting_funding only funding or expiry are allowed; any other transition raises and saves nothing."""
    transfer = make_transfer()
    with pytest.raises(TransitionNotAllowed):
        getattr(transfer, method)(*args)
    assert transfer.status == S.AWAITING_FUNDING
    assert fresh(transfer).status == S.AWAITING_FUNDING


def test_mark_funded_twice_raises(pricing):
    """A transfer is funded once: a second mark_funded raises and keeps the first funding time."""
    transfer = funded(make_transfer())
    funded_at = transfer.funded_at
    with pytest.raises(TransitionNotAllowed):
        transfer.mark_funded(timezone.now())
    assert transfer.status == S.FUNDED
    assert fresh(transfer).funded_at == funded_at


def test_expired_transfer_cannot_be_funded(pricing):
    """An expired transfer cannot later become funded."""
    transfer = make_transfer()
    transfer.mark_expired()
    transfer.save()
    with pytest.raises(TransitionNotAllowed):
        transfer.mark_funded(timezone.now())
    assert fresh(transfer).status == S.EXPIRED


def test_funded_transfer_cannot_complete_or_refund_directly(pricing):
    """A funded transfer goes through screening: completing or refunding it directly raises."""
    transfer = funded(make_transfer())
    assert Transfer.objects.filter(pk=transfer.pk).mark_completed(timezone.now()) == 0
    with pytest.raises(TransitionNotAllowed):
        transfer.mark_refunded("re_1")
    assert fresh(transfer).status == S.FUNDED


def test_completed_by_keys_moves_only_settling_transfers_and_tells_the_listeners(pricing):
    """mark_completed_ids (a block's transfers at once, one statement): settling transfers complete, any other status
    is left alone, the count says how many moved, and the status listeners hear exactly those, with the status each
    left (a partner transfer's webhook event)."""
    from payments.models import WebhookEvent

    settling = funded(make_transfer(key="ids-1"))
    settling.mark_settling("ref-1")
    settling.save()
    other = funded(make_transfer(key="ids-2"))
    before = set(WebhookEvent.objects.values_list("pk", flat=True))
    at = timezone.now()
    assert Transfer.objects.mark_completed_ids([settling.pk, other.pk], at) == 1
    assert fresh(settling).status == S.COMPLETED and fresh(settling).completed_at == at
    assert fresh(other).status == S.FUNDED
    events = list(WebhookEvent.objects.exclude(pk__in=before).values_list("type", "subject", "payload"))
    assert [(t, subject, p["previous_status"]) for t, subject, p in events] == [
        ("transfer.completed", f"transfer:{settling.pk}", "settling")]
    assert Transfer.objects.mark_completed_ids([settling.pk, other.pk], at) == 0  # not twice
    assert Transfer.objects.mark_completed_ids([], at) == 0


def test_completed_transfer_is_final(pricing):
    """A completed transfer accepts no further transition."""
    transfer = funded(make_transfer())
    transfer.mark_settling("ref")
    transfer.save()
    assert Transfer.objects.filter(pk=transfer.pk).mark_completed(timezone.now()) == 1
    transfer.refresh_from_db()
    for method, args in (("mark_settlement_failed", ("x",)), ("mark_refunded", ("re",)), ("mark_rejected", ("x",)),
                         ("mark_settling", ("ref2",))):
        with pytest.raises(TransitionNotAllowed):
            getattr(transfer, method)(*args)
    assert fresh(transfer).status == S.COMPLETED


def test_payout_partner_states_are_guarded(pricing):
    """Only a settling transfer waits for a payout partner (compare-and-set); from there only the partner's confirmation
    (→ completed) or failure (→ payout_failed) moves it, and payout_failed moves only to refunding (an operator's
    refund): a confirmation after a failure, or completing it directly, is refused."""
    transfer = funded(make_transfer())
    assert Transfer.objects.filter(pk=transfer.pk).mark_paid_to_partner() == 0  # funded, not settling
    with pytest.raises(TransitionNotAllowed):
        transfer.mark_payout_confirmed(timezone.now())
    transfer.mark_settling("ref")
    transfer.save()
    assert Transfer.objects.filter(pk=transfer.pk).mark_paid_to_partner() == 1
    assert Transfer.objects.filter(pk=transfer.pk).mark_paid_to_partner() == 0
    transfer.refresh_from_db()
    assert transfer.status == S.AWAITING_PAYOUT_CONFIRMATION
    assert Transfer.objects.filter(pk=transfer.pk).mark_completed(timezone.now()) == 0  # not by the chain again
    for method, args in (("mark_settlement_failed", ("x",)), ("mark_refunding", ("x",)), ("mark_settling", ("r",))):
        with pytest.raises(TransitionNotAllowed):
            getattr(transfer, method)(*args)
    transfer.mark_payout_failed("account closed")
    transfer.save()
    with pytest.raises(TransitionNotAllowed):
        transfer.mark_payout_confirmed(timezone.now())
    assert fresh(transfer).status == S.PAYOUT_FAILED
    transfer.mark_refunding("refunded by an operator")
    assert transfer.status == S.REFUNDING


# Idempotent pipeline steps -----------------------------------------------------------------------

def test_transfer_mark_funded_is_idempotent(pricing, stripe_server):
    """Applying the same succeeded PaymentIntent twice funds the transfer once, with one funding entry."""
    transfer = transfer_funding_prepare(transfer=make_transfer())
    assert pay_on_stripe(transfer.payment_intent_id)["status"] == "succeeded"
    intent = stripe_rail.payment_intent_retrieve(transfer.payment_intent_id)

    first = pipeline.transfer_mark_funded(payment_intent=intent)
    assert first.status == S.FUNDED
    funded_at = fresh(transfer).funded_at
    second = pipeline.transfer_mark_funded(payment_intent=intent)
    assert second.pk == transfer.pk
    assert second.status == S.FUNDED
    assert fresh(transfer).funded_at == funded_at
    assert JournalEntry.objects.filter(transfer=transfer).count() == 1


def test_transfer_mark_funded_ignores_unpaid_intent(pricing, stripe_server):
    """A PaymentIntent that has not succeeded does not fund its transfer."""
    transfer = transfer_funding_prepare(transfer=make_transfer())
    intent = stripe_rail.payment_intent_retrieve(transfer.payment_intent_id)
    assert intent.status != "succeeded"
    assert pipeline.transfer_mark_funded(payment_intent=intent) is None
    assert fresh(transfer).status == S.AWAITING_FUNDING
    assert not JournalEntry.objects.exists()


@pytest.mark.parametrize("state", [S.AWAITING_FUNDING, S.FUNDED, S.HELD])
def test_payouts_final_outside_settling_changes_nothing(pricing, state):
    """onchain reporting a final payout for a transfer that is not settling leaves it and the ledger untouched."""
    transfer = make_transfer()
    if state != S.AWAITING_FUNDING:
        funded(transfer)
    if state == S.HELD:
        transfer.mark_held("review")
        transfer.save()
    pipeline.TransferPayoutListener().payouts_final(references=[str(transfer.id)], tx_hash="0x" + "ab" * 32)
    after = fresh(transfer)
    assert after.status == state
    assert after.completed_at is None
    assert not JournalEntry.objects.filter(kind="payout").exists()


def test_payouts_final_completes_a_settling_transfer_once(pricing):
    """A final payout completes a settling transfer and posts the payout entry; a repeat report changes nothing."""
    transfer = funded(make_transfer())
    transfer.mark_settling(str(transfer.id))
    transfer.save()
    pipeline.TransferPayoutListener().payouts_final(references=[str(transfer.id)], tx_hash="0x" + "ab" * 32)
    after = fresh(transfer)
    assert after.status == S.COMPLETED
    assert after.completed_at is not None
    pipeline.TransferPayoutListener().payouts_final(references=[str(transfer.id)], tx_hash="0x" + "cd" * 32)
    assert fresh(transfer).completed_at == after.completed_at
    assert JournalEntry.objects.filter(transfer=transfer, kind="payout").count() == 1


def test_payouts_final_many_books_each_transfer_under_its_own_transaction(pricing):
    """Several batches of one block reported at once complete every transfer, and each payout entry names the
    transaction of its own batch."""
    transfers = []
    for i in range(3):
        transfer = funded(make_transfer(key=f"many-{i}"))
        transfer.mark_settling(str(transfer.id))
        transfer.save()
        transfers.append(transfer)
    first, second = "0x" + "ab" * 32, "0x" + "cd" * 32
    pipeline.TransferPayoutListener().payouts_final_many(
        finals=[([str(transfers[0].id), str(transfers[1].id)], first), ([str(transfers[2].id)], second)])
    assert {fresh(t).status for t in transfers} == {S.COMPLETED}
    memos = dict(JournalEntry.objects.filter(kind="payout").values_list("transfer_id", "memo"))
    assert memos == {transfers[0].id: f"tx {first}", transfers[1].id: f"tx {first}", transfers[2].id: f"tx {second}"}


def test_payouts_failed_outside_settling_changes_nothing(pricing):
    """A payout failure report for a transfer that is not settling does not move it."""
    transfer = funded(make_transfer())
    pipeline.TransferPayoutListener().payouts_failed(references=[str(transfer.id)], reason="boom")
    after = fresh(transfer)
    assert after.status == S.FUNDED
    assert after.failure_reason == ""


# Screening ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("sender", "recipient"), [
    ("Aibek Usenov", "Ivan Sanctionov"),
    ("Aibek Usenov", "  ivan   SANCTIONOV "),
    ("Aibek Usenov", "Иван Санкционов"),
    ("Ivan Sanctionov", "Gulnara Usenova"),
], ids=["recipient", "recipient-case-spaces", "recipient-cyrillic", "sender"])
def test_sanctioned_name_is_held(pricing, sender, recipient):
    """A funded transfer naming a sanctions-list person is held for review, with no payout queued."""
    transfer = funded(make_transfer(sender_name=sender, recipient_name=recipient))
    result = pipeline.transfer_advance(transfer_id=transfer.id)
    assert result.status == S.HELD
    after = fresh(transfer)
    assert after.status == S.HELD
    assert "sanctions" in after.failure_reason
    assert after.payout_reference == ""
    assert not Payout.objects.exists()


def test_clear_transfer_settles_with_a_payout(pricing, chain):
    """A funded transfer that screens clear moves to settling with one payout of exactly the quoted KGST."""
    transfer = funded(make_transfer())
    result = pipeline.transfer_advance(transfer_id=transfer.id)
    assert result.status == S.SETTLING
    after = fresh(transfer)
    assert after.status == S.SETTLING
    payout = Payout.objects.get()
    assert payout.reference == str(transfer.id) == after.payout_reference
    assert payout.to_address == transfer.recipient_wallet
    assert payout.token_id == chain["token"].pk
    assert payout.amount_base_units == int(transfer.quote.target_amount.scaleb(chain["token"].decimals))
    # A second advance (a redelivered task) does nothing more.
    assert pipeline.transfer_advance(transfer_id=transfer.id).status == S.SETTLING
    assert Payout.objects.count() == 1


def test_wallet_denylisted_after_creation_is_rejected(pricing):
    """A recipient wallet that is on the denylist by screening time gets the transfer rejected, not paid."""
    transfer = funded(make_transfer())
    Transfer.objects.filter(pk=transfer.pk).update(recipient_wallet="0x000000000000000000000000000000000000dEaD")
    assert pipeline.transfer_advance(transfer_id=transfer.id).status == S.REJECTED
    assert "denylist" in fresh(transfer).failure_reason
    assert not Payout.objects.exists()


def test_advance_ignores_unfunded_transfer(pricing):
    """Screening only runs on funded transfers: an unfunded one stays as it is."""
    transfer = make_transfer(recipient_name="Ivan Sanctionov")
    assert pipeline.transfer_advance(transfer_id=transfer.id).status == S.AWAITING_FUNDING
    assert fresh(transfer).status == S.AWAITING_FUNDING


def test_release_held_transfer_settles_it(pricing, chain):
    """An operator's release moves a held transfer to settling with its payout; releasing again is refused."""
    transfer = funded(make_transfer(recipient_name="Ivan Sanctionov"))
    pipeline.transfer_advance(transfer_id=transfer.id)
    assert pipeline.transfer_release(transfer_id=transfer.id).status == S.SETTLING
    assert Payout.objects.get().reference == str(transfer.id)
    with pytest.raises(TransferNotPayable):
        pipeline.transfer_release(transfer_id=transfer.id)


# Quote math --------------------------------------------------------------------------------------

def test_quote_price_rub_15000(pricing):
    """15000.00 RUB: fee 50 + 1% = 200.00, rate = 1.0785 × (1 − 1.5%) rounded down to 8 dp,
    target = (15000 − 200) × rate rounded up to 0.01 (never in our favour: docs/ledger.md "Rounding")."""
    price = quote_price(source_currency="RUB", source_amount=Decimal("15000.00"))
    rate = (Decimal("1.0785") * Decimal("0.985")).quantize(Decimal("0.00000001"), ROUND_DOWN)
    assert price.official_rate == SEED_RATES["RUB"] == Decimal("1.0785")
    assert price.fee == Decimal("200.00")
    assert price.rate == rate == Decimal("1.06232250")
    expected = ((Decimal("15000.00") - Decimal("200.00")) * rate).quantize(Decimal("0.01"), ROUND_UP)
    assert price.target_amount == expected == Decimal("15722.38")


def test_quote_price_usd_rounds_fee_down_and_target_up(pricing):
    """USD 123.47: fee 1.99 + 1% = 3.2247 rounded down to 3.22 (half-up would give 3.23), rate 87.45 × 0.99,
    target rounded up: both roundings in the sender's favour."""
    price = quote_price(source_currency="USD", source_amount=Decimal("123.47"))
    fee = (Decimal("1.99") + Decimal("123.47") * Decimal("0.01")).quantize(Decimal("0.01"), ROUND_DOWN)
    rate = (Decimal("87.45") * Decimal("0.99")).quantize(Decimal("0.00000001"), ROUND_DOWN)
    assert price.fee == fee == Decimal("3.22")
    assert price.rate == rate
    assert price.target_amount == ((Decimal("123.47") - fee) * rate).quantize(Decimal("0.01"), ROUND_UP)


@pytest.mark.parametrize("amount", ["499.99", "500000.01"])
def test_quote_price_outside_corridor_limits(pricing, amount):
    """Amounts outside the RUB corridor's 500–500000 limits are refused."""
    with pytest.raises(AmountOutOfRange):
        quote_price(source_currency="RUB", source_amount=Decimal(amount))


def test_quote_price_limits_are_inclusive(pricing):
    """The corridor's min and max themselves are accepted."""
    assert quote_price(source_currency="RUB", source_amount=Decimal("500.00")).fee == Decimal("55.00")
    assert quote_price(source_currency="RUB", source_amount=Decimal("500000.00")).target_amount > 0


def test_quote_price_unknown_corridor(pricing):
    """A currency without an active corridor is refused."""
    from payments.models import Corridor

    Corridor.objects.filter(source_currency="USD", target_currency="KGS").update(is_active=False)
    with pytest.raises(CorridorUnavailable):
        quote_price(source_currency="USD", source_amount=Decimal("100.00"))
