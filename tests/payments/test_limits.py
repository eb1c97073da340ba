"""Limits and KYC tiers (payments/services/limits.py): per transfer, per day and per 30 days by each of a sender's
identities, refused at creation over the hard maximum; above the sender's tier, held at screening saying what is
needed, released after an operator verifies it; reservations released when a transfer ends unpaid; no overrun
under 50 concurrent creations."""

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone

from payments import pipeline, pipeline_cancel
from payments.errors import LimitExceeded
from payments.guarded_limits import VERIFY_FUNDS, VERIFY_ID
from payments.models import LimitReservation, LimitTier, Partner, SenderProfile, Transfer
from payments.services.limits import (
    limits_check,
    limits_reserve_card,
    sender_document_record,
    sender_funds_record,
    sender_profile_get,
)
from payments.services.quotes import quote_create
from payments.services.setup import partner_create
from payments.services.transfers import request_fingerprint, transfer_create
from staff.models import AuditEntry
from staff.services import action_perform
from tests.conftest import new_recipient
from tests.helpers import force_status
from tests.security.factories import staff_user

pytestmark = pytest.mark.django_db
S = Transfer.Status
SENDER = {"name": "Aibek Usenov", "phone": "+79161234567", "email": "aibek@example.com"}


def set_limits(currency, per_transfer, per_day, per_30_days):
    """Every tier of the corridor the same (so the hard maximum is exactly these)."""
    for tier in LimitTier.Tier.values:
        LimitTier.objects.update_or_create(source_currency=currency, tier=tier, defaults={
            "per_transfer": Decimal(per_transfer), "per_day": Decimal(per_day), "per_30_days": Decimal(per_30_days)})


def send(amount, *, sender=None, currency="RUB", partner=None, travel_rule=None):
    """transfer_create as the API calls it: a partner's card transfer (its PaymentIntent made at localstripe)."""
    partner = partner or Partner.objects.get_or_create(name="acme")[0]
    quote = quote_create(partner=partner, source_currency=currency, source_amount=Decimal(amount))
    body = {"quote_id": str(quote.id), "sender": sender or SENDER,
            "recipient": {"name": "Gulnara Usenova", "phone": "+996555123456", "wallet_address": new_recipient()}}
    transfer, _ = transfer_create(partner=partner, idempotency_key=str(quote.id), fingerprint=request_fingerprint(body),
                                  quote_id=quote.id, sender=body["sender"], recipient=body["recipient"],
                                  travel_rule=travel_rule)
    return transfer


def funded(transfer):
    transfer = Transfer.objects.get(pk=transfer.pk)
    transfer.mark_funded(timezone.now())
    transfer.save()
    return transfer


# The hard maximum at creation, by each identity -------------------------------------------------------------------

def test_over_the_per_transfer_maximum_is_refused_and_creates_nothing(pricing, stripe_server):
    """A transfer one kopeck over the per-transfer maximum is refused (422 limit-exceeded) and nothing is created;
    exactly the maximum is accepted."""
    set_limits("RUB", "20000.00", "100000.00", "200000.00")
    with pytest.raises(LimitExceeded) as refused:
        send("20000.01")
    assert refused.value.status == 422 and refused.value.field == "amount"
    assert "20,000.00 RUB" in refused.value.detail
    assert not Transfer.objects.exists() and not LimitReservation.objects.exists()
    assert send("20000.00").status == S.AWAITING_FUNDING


@pytest.mark.parametrize("identity", ["phone", "email", "document"])
def test_daily_and_30_day_limits_count_by_each_identity(pricing, stripe_server, identity):
    """Two senders sharing only a phone, only an email (written differently: case and a +tag), or only an ID
    document count together: with 10,000 per transfer, 20,000 per day and 30,000 per 30 days, the third 10,000 of a
    day is refused; a day later one more fits, then the fourth is refused by the 30-day limit; after 30 days they
    fit again."""
    set_limits("RUB", "10000.00", "20000.00", "30000.00")
    first = {"name": "Aibek Usenov", "phone": "+79161234567", "email": "aibek@example.com"}
    second = {"phone": {"name": "Aibek Usenov", "phone": "+79161234567", "email": "other@example.com"},
              "email": {"name": "Aibek Usenov", "phone": "+79160000000", "email": "AIBEK+kg@Example.com"},
              "document": {"name": "Aibek Usenov", "phone": "+79160000000", "email": "other@example.com"}}[identity]
    if identity == "document":
        for who in (first, second):
            sender_document_record(profile=sender_profile_get(phone=who["phone"], email=who["email"]),
                                   id_type="passport", country="kg", number="AN 123-4567", expiry=None, by="ops")
    send("10000.00", sender=first)
    send("10000.00", sender=second)
    with pytest.raises(LimitExceeded) as refused:
        send("10000.00", sender=first)
    assert "per day" in refused.value.detail and "0.00 RUB more today" in refused.value.detail
    LimitReservation.objects.update(created_at=timezone.now() - timedelta(days=1, seconds=1))
    send("10000.00", sender=second)
    with pytest.raises(LimitExceeded) as refused:
        send("10000.00", sender=first)
    assert "per 30 days" in refused.value.detail
    LimitReservation.objects.update(created_at=timezone.now() - timedelta(days=30, seconds=1))
    assert send("10000.00", sender=first).status == S.AWAITING_FUNDING


def test_card_limits_count_across_senders_and_refuse_the_card(pricing, stripe_server):
    """Two senders paying with the same card count together: the card that would go over its daily limit is refused
    beside the card field; trying the transfer again with the same card does not count it twice."""
    set_limits("RUB", "10000.00", "20000.00", "30000.00")
    a = send("10000.00", sender=SENDER)
    b = send("10000.00", sender={"name": "Bakyt Osmonov", "phone": "+79160000001", "email": "bakyt@example.com"})
    c = send("5000.00", sender={"name": "Chynara Alieva", "phone": "+79160000002", "email": "chynara@example.com"})
    limits_reserve_card(transfer=a, card_fingerprint="fp_card_1")
    limits_reserve_card(transfer=a, card_fingerprint="fp_card_1")
    limits_reserve_card(transfer=b, card_fingerprint="fp_card_1")
    with pytest.raises(LimitExceeded) as refused:
        limits_reserve_card(transfer=c, card_fingerprint="fp_card_1")
    assert refused.value.field == "card"
    limits_reserve_card(transfer=c, card_fingerprint="fp_card_2")
    assert LimitReservation.objects.filter(kind="card").count() == 3


# Reservations released ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("status", "released"), [(S.CANCELLED, True), (S.EXPIRED, True), (S.REFUNDED, True),
                                                  (S.CHARGED_BACK, True), (S.REJECTED, False), (S.REFUNDING, False),
                                                  (S.COMPLETED, False)])
def test_a_transfer_that_ends_unpaid_releases_its_reservation(pricing, stripe_server, status, released):
    """With room for two transfers a day, a third fits again once one of the two is cancelled, expired, refunded or
    charged back; a rejected or refunding one (money still owed back) and a completed one keep counting."""
    set_limits("RUB", "10000.00", "20000.00", "30000.00")
    first = send("10000.00")
    send("10000.00")
    force_status(Transfer.objects.filter(pk=first.pk), status)
    if released:
        assert send("10000.00").status == S.AWAITING_FUNDING
    else:
        with pytest.raises(LimitExceeded):
            send("10000.00")


def test_cancel_through_the_pipeline_releases_the_reservation(pricing, stripe_server):
    """The sender cancels an unpaid transfer (its PaymentIntent cancelled at localstripe): the day's room is back."""
    set_limits("RUB", "10000.00", "10000.00", "30000.00")
    first = send("10000.00")
    with pytest.raises(LimitExceeded):
        send("10000.00")
    assert pipeline_cancel.transfer_cancel(transfer_id=first.pk, reason="cancelled by the sender").status == S.CANCELLED
    assert send("10000.00").status == S.AWAITING_FUNDING


def test_expiry_through_the_pipeline_releases_the_reservation(pricing, stripe_server):
    """An unpaid transfer that expires (transfer_expire) gives its room back."""
    set_limits("RUB", "10000.00", "10000.00", "30000.00")
    first = send("10000.00")
    assert pipeline.transfer_expire(transfer_id=first.pk).status == S.EXPIRED
    assert send("10000.00").status == S.AWAITING_FUNDING


# KYC tiers at screening -----------------------------------------------------------------------------------------

def test_above_tier_0_is_held_asking_for_an_id_document_then_released_after_verification(pricing, chain, stripe_server):
    """Default limits: 80,000 RUB is above tier 0's 75,000 per transfer (within the hard maximum): created, then held
    at screening with exactly "ID document required above 75,000.00 RUB per transfer (sender is at tier 0)". Once an
    operator records the passport and verifies it (audit entry with the reason), the sender is at tier 1, the tier
    check clears and the release action pays it out."""
    transfer = pipeline.transfer_advance(transfer_id=funded(send("80000.00")).pk)
    assert transfer.status == S.HELD
    assert transfer.failure_reason == "ID document required above 75,000.00 RUB per transfer (sender is at tier 0)"
    profile = sender_profile_get(phone=SENDER["phone"], email=SENDER["email"])
    sender_document_record(profile=profile, id_type="passport", country="KG", number="AN1234567",
                           expiry=timezone.localdate() + timedelta(days=365), by="ops")
    assert (profile.tier, len(profile.id_number_hash), profile.id_number_last4) == (0, 64, "4567")
    officer = staff_user("compliance officer")
    [outcome] = action_perform(action=VERIFY_ID, actor=officer, ids=[profile.pk], reason="passport scan checked")
    assert outcome.outcome == AuditEntry.Outcome.DONE
    assert SenderProfile.objects.get(pk=profile.pk).tier == 1
    assert AuditEntry.objects.filter(action="payments.verify_sender_id", reason="passport scan checked",
                                     actor_username=officer.get_username()).exists()
    assert limits_check(transfer=transfer).decision == "clear"
    assert pipeline.transfer_release(transfer_id=transfer.pk).status == S.SETTLING


def test_above_tier_1_asks_for_both_and_proof_of_funds_needs_a_valid_id_first(pricing, stripe_server):
    """A tier-0 sender over tier 1's daily 600,000 is asked for both the ID document and proof of funds; verifying
    proof of funds before an ID document is refused (nothing changes); with both verified the transfer clears."""
    set_limits("RUB", "500000.00", "1000000.00", "5000000.00")
    LimitTier.objects.filter(source_currency="RUB", tier=0).update(
        per_transfer=Decimal("75000"), per_day=Decimal("75000"), per_30_days=Decimal("150000"))
    LimitTier.objects.filter(source_currency="RUB", tier=1).update(
        per_transfer=Decimal("300000"), per_day=Decimal("600000"), per_30_days=Decimal("1500000"))
    travel = {"originator": {"address": "Moscow, Tverskaya 1", "id_number": "AN1234567"},
              "beneficiary": {"country": "KG"}}
    for _ in range(2):
        send("300000.00", travel_rule=travel)
    third = funded(send("300000.00", travel_rule=travel))
    assert limits_check(transfer=third).reason == ("ID document and proof of funds required above 75,000.00 RUB per "
                                                   "transfer (sender is at tier 0)")
    profile = sender_profile_get(phone=SENDER["phone"], email=SENDER["email"])
    sender_funds_record(profile=profile, reference="bank statement 2026-11, case 77", by="ops")
    officer = staff_user("compliance officer")
    [refused] = action_perform(action=VERIFY_FUNDS, actor=officer, ids=[profile.pk], reason="statement checked")
    assert refused.outcome == AuditEntry.Outcome.REFUSED and SenderProfile.objects.get(pk=profile.pk).tier == 0
    sender_document_record(profile=profile, id_type="passport", country="RU", number="4510 123456", expiry=None,
                           by="ops")
    action_perform(action=VERIFY_ID, actor=officer, ids=[profile.pk], reason="passport checked")
    assert limits_check(transfer=third).reason == ("Proof of funds required above 600,000.00 RUB per day (sender is "
                                                   "at tier 1)")
    action_perform(action=VERIFY_FUNDS, actor=officer, ids=[profile.pk], reason="statement checked")
    assert SenderProfile.objects.get(pk=profile.pk).tier == 2
    assert limits_check(transfer=third).decision == "clear"


def test_an_expired_document_does_not_count_for_tier_1(pricing, stripe_server):
    """A verified passport past its expiry date puts the sender back at tier 0."""
    profile = sender_profile_get(phone=SENDER["phone"], email=SENDER["email"])
    sender_document_record(profile=profile, id_type="passport", country="KG", number="AN1", by="ops",
                           expiry=timezone.localdate() + timedelta(days=1))
    action_perform(action=VERIFY_ID, actor=staff_user("compliance officer"), ids=[profile.pk], reason="ok")
    assert SenderProfile.objects.get(pk=profile.pk).tier == 1
    SenderProfile.objects.filter(pk=profile.pk).update(id_expiry=timezone.localdate() - timedelta(days=1))
    assert SenderProfile.objects.get(pk=profile.pk).tier == 0


def test_limit_tiers_are_validated_as_operators_edit_them(pricing):
    """Admin's validation: per day not below per transfer, 30 days not below per day, and a tier not below the one
    under it nor above the one over it; each message next to its field."""
    tier1 = LimitTier.objects.get(source_currency="RUB", tier=1)
    tier1.per_day = tier1.per_transfer - 1
    with pytest.raises(ValidationError) as bad:
        tier1.full_clean()
    assert "per_day" in bad.value.message_dict
    tier1.refresh_from_db()
    tier1.per_30_days = Decimal("100.00")
    with pytest.raises(ValidationError) as bad:
        tier1.full_clean()
    assert "per_30_days" in bad.value.message_dict
    tier1.refresh_from_db()
    tier1.per_transfer = Decimal("600000.00")  # above tier 2's 500,000
    with pytest.raises(ValidationError) as bad:
        tier1.full_clean()
    assert "per_transfer" in bad.value.message_dict


# The race --------------------------------------------------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_50_concurrent_transfers_racing_a_daily_limit_never_overrun_it(pricing, stripe_server, settings):
    """50 threads (50 PostgreSQL connections) create transfers of 3,000 RUB for one sender at once against a daily
    limit of 100,000: exactly 33 are accepted (99,000), 17 refused with limit-exceeded, and the accepted sum never
    exceeds the limit."""
    settings.QUOTE_TTL_SECONDS = 3600
    set_limits("RUB", "3000.00", "100000.00", "1000000.00")
    partner, _ = partner_create(name="acme")
    quotes = [quote_create(partner=partner, source_currency="RUB", source_amount=Decimal("3000.00"))
              for _ in range(50)]
    recipient = {"name": "Gulnara Usenova", "phone": "+996555123456", "wallet_address": new_recipient()}
    start, results = threading.Barrier(50), []

    def create(quote):
        try:
            start.wait()
            transfer_create(partner=partner, idempotency_key=str(quote.id), fingerprint=str(quote.id),
                            quote_id=quote.id, sender=SENDER, recipient=recipient)
            results.append("accepted")
        except LimitExceeded:
            results.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=create, args=(q,)) for q in quotes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert sorted(results) == ["accepted"] * 33 + ["refused"] * 17
    assert Transfer.objects.count() == 33
    total = sum(t.quote.source_amount for t in Transfer.objects.select_related("quote"))
    assert total == Decimal("99000.00") <= Decimal("100000.00")
    assert LimitReservation.objects.filter(kind="phone").count() == 33


# Admin -----------------------------------------------------------------------------------------------------------

def test_operators_record_a_document_in_admin_kept_only_as_a_hash(client, pricing):
    """The sender's profile page records an ID document: the hash and the last four characters are kept, never the
    number; the profile stays at tier 0 until the verify action runs. A tier's limit below the tier under it is
    refused beside the field and nothing is saved."""
    from django.contrib.auth import get_user_model

    from tests.helpers import staff_login

    profile = sender_profile_get(phone=SENDER["phone"], email=SENDER["email"])
    ops = staff_login(client, get_user_model().objects.create_superuser("ops", "ops@example.com",
                                                                        "a-long-password-123"))
    response = ops.post(f"/admin/payments/senderprofile/{profile.pk}/change/", {
        "id_type": "passport", "id_country": "KG", "id_number": "AN 9081726", "id_expiry": "2030-01-31",
        "funds_reference": ""})
    assert response.status_code == 302, response.content.decode()[:3000]
    profile.refresh_from_db()
    assert (profile.id_number_last4, profile.id_recorded_by, profile.tier) == ("1726", "ops", 0)
    assert "9081726" not in str(SenderProfile.objects.filter(pk=profile.pk).values().get())
    tier1 = LimitTier.objects.get(source_currency="RUB", tier=1)
    response = ops.post(f"/admin/payments/limittier/{tier1.pk}/change/", {
        "source_currency": "RUB", "tier": 1, "per_transfer": "1000.00", "per_day": "600000.00",
        "per_30_days": "1500000.00", "change_reason": "tier review"})
    assert response.status_code == 200 and "Cannot be below tier 0" in response.content.decode()
    assert LimitTier.objects.get(pk=tier1.pk).per_transfer == Decimal("300000.00")
