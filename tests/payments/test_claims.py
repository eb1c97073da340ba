"""Recipient claim (issue 11): a transfer sent to a phone only is paid and screened, waits in `awaiting_claim`, and
moves on once the recipient proves the phone with a one-time code and names a wallet or a payout partner. Codes are
hashed, single-use, expire, lock after wrong tries and are rate-limited; two racing claims leave one destination;
unclaimed transfers get reminders, then a full refund. Real PostgreSQL and Redis; anvil where a wallet is checked."""

import re
import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from common import sms
from payments import pipeline, pipeline_cancel, pipeline_refunds, pipeline_rescreen
from payments.models import ClaimCode, ClaimReminder, PartnerPayout, PayoutPartner, Transfer
from payments.services import balances, claims
from payments.services.payout_partners import PayoutPartnerRefused
from payments.services.setup import partner_create
from tests.conftest import QUOTE_BODY, new_recipient
from tests.payments.test_review import listing  # noqa: F401 (fixture: a new sample list version)

pytestmark = pytest.mark.django_db
S = Transfer.Status
SENDER = {"name": "Aibek Usenov", "phone": "+79161234567", "email": "aibek@example.com"}
PHONE = "+996555123456"


@pytest.fixture(autouse=True)
def sms_outbox(settings):
    settings.SMS_BACKEND = "common.sms.LocmemBackend"
    sms.outbox.clear()
    yield sms.outbox
    sms.outbox.clear()


def create_unclaimed(api, partner, key="claim-1"):
    """Through the API: only the recipient's name and phone, funded from the partner's balance."""
    balances.balance_topup(partner=partner, currency="RUB", amount=Decimal("20000.00"), reference=f"bank-{key}")
    quote = api.post("/api/v1/quotes", QUOTE_BODY, format="json").json()
    return api.post("/api/v1/transfers", {
        "quote_id": quote["id"], "sender": SENDER, "recipient": {"name": "Gulnara Usenova", "phone": PHONE},
        "funding": {"method": "balance"}}, format="json", HTTP_IDEMPOTENCY_KEY=key)


@pytest.fixture
def waiting(api, partner, pricing):
    response = create_unclaimed(api, partner)
    assert response.status_code == 201, response.content
    transfer = pipeline.transfer_advance(transfer_id=response.json()["id"])
    assert transfer.status == S.AWAITING_CLAIM
    return transfer


def last_code(outbox):
    return re.search(r"\b(\d{6})\b", outbox[-1].body).group(1)


def send(transfer, ip="198.51.100.7"):
    claims.claim_code_send(transfer_id=transfer.pk, ip=ip)
    return last_code(sms.outbox)


def test_api_creates_a_transfer_with_only_the_recipients_phone_that_waits_for_the_claim(api, partner, pricing):
    """No wallet, no payout partner: 201 with an empty wallet; once funded and screened it waits in awaiting_claim
    (nothing queued for payout) and the API says so."""
    response = create_unclaimed(api, partner)
    assert response.status_code == 201, response.content
    assert response.json()["recipient"]["wallet_address"] == ""
    transfer = pipeline.transfer_advance(transfer_id=response.json()["id"])
    assert transfer.status == S.AWAITING_CLAIM and transfer.payout_reference == ""
    assert api.get(f"/api/v1/transfers/{transfer.pk}").json()["status"] == "awaiting_claim"


def test_an_account_without_a_payout_partner_is_still_refused(api, partner, pricing):
    """Leaving out the wallet is the claim flow; an `account` with no partner is a mistake, refused beside it."""
    quote = api.post("/api/v1/quotes", QUOTE_BODY, format="json").json()
    response = api.post("/api/v1/transfers", {
        "quote_id": quote["id"], "sender": SENDER,
        "recipient": {"name": "Gulnara Usenova", "phone": PHONE, "account": "123"}}, format="json",
        HTTP_IDEMPOTENCY_KEY="k-account")
    assert response.status_code == 400 and "recipient.account" in str(response.json())
    assert not Transfer.objects.exists()


def test_a_code_is_six_digits_sent_by_sms_and_stored_only_hashed(waiting, sms_outbox):
    """The SMS goes to the recipient's phone; the database holds an HMAC, not the digits."""
    code = send(waiting)
    assert sms_outbox[-1].to == PHONE and len(code) == 6
    row = ClaimCode.objects.get(transfer=waiting)
    assert code not in row.code_hash and len(row.code_hash) == 64
    assert abs((row.expires_at - row.created_at) - timedelta(seconds=600)) < timedelta(seconds=1)


def test_the_right_code_claims_to_a_wallet_once_and_the_transfer_moves_to_settlement(waiting, chain):
    """A right code with a wallet: the destination is set, the transfer goes back to the pipeline and pays out; the
    same code again is refused (single-use) and the second claim changes nothing."""
    code = send(waiting)
    wallet = new_recipient()
    claims.claim_submit(transfer_id=waiting.pk, code=code, destination=claims.claim_destination(wallet_address=wallet))
    transfer = Transfer.objects.get(pk=waiting.pk)
    assert transfer.status == S.FUNDED and transfer.recipient_wallet == wallet
    assert pipeline.transfer_advance(transfer_id=waiting.pk).status == S.SETTLING
    with pytest.raises(claims.ClaimRefused, match="already been claimed"):
        claims.claim_submit(transfer_id=waiting.pk, code=code,
                            destination=claims.claim_destination(wallet_address=new_recipient()))
    assert Transfer.objects.get(pk=waiting.pk).recipient_wallet == wallet


def test_a_claim_to_an_active_payout_partner_creates_its_payout(waiting, chain):
    """Picking a payout partner routes the transfer to its settlement address with a PartnerPayout for the account;
    an inactive partner is refused beside the field."""
    operator, _key = partner_create(name="bank-ops", scopes=["payouts:confirm"])
    bank = PayoutPartner.objects.create(code="demir-bank", name="Demir Bank", kind=PayoutPartner.Kind.BANK,
                                        operator=operator, settlement_address=new_recipient())
    PayoutPartner.objects.create(code="old-bank", name="Old Bank", kind=PayoutPartner.Kind.BANK, operator=operator,
                                 settlement_address=new_recipient(), is_active=False)
    with pytest.raises(PayoutPartnerRefused, match="does not take new transfers"):
        claims.claim_destination(payout_partner="old-bank", account="KG1")
    code = send(waiting)
    claims.claim_submit(transfer_id=waiting.pk, code=code,
                        destination=claims.claim_destination(payout_partner="demir-bank", account=" KG12 34 "))
    transfer = Transfer.objects.get(pk=waiting.pk)
    assert transfer.status == S.FUNDED and transfer.recipient_wallet == bank.settlement_address
    assert PartnerPayout.objects.get(transfer=transfer).recipient_account == "KG12 34"


def test_a_wrong_code_changes_nothing_and_five_wrong_tries_lock_the_code(waiting, settings):
    """Each wrong try counts; the fifth locks the code, after which even the right code is refused."""
    code = send(waiting)
    wrong = f"{(int(code) + 1) % 10 ** 6:06d}"
    for attempt in range(1, 6):
        with pytest.raises(claims.ClaimCodeRefused) as refused:
            claims.claim_submit(transfer_id=waiting.pk, code=wrong, destination=claims.Destination(new_recipient()))
        assert refused.value.field == "code"
        assert ClaimCode.objects.get(transfer=waiting).failed_attempts == attempt
    assert "Too many wrong codes" in refused.value.detail
    with pytest.raises(claims.ClaimCodeRefused, match="Too many wrong codes"):
        claims.claim_submit(transfer_id=waiting.pk, code=code, destination=claims.Destination(new_recipient()))
    transfer = Transfer.objects.get(pk=waiting.pk)
    assert transfer.status == S.AWAITING_CLAIM and transfer.recipient_wallet == ""


def test_an_expired_code_is_refused_in_the_persons_language(waiting):
    """Past its lifetime a right code is refused with a message in Russian for a Russian page; nothing changes."""
    from django.utils import translation

    code = send(waiting)
    ClaimCode.objects.filter(transfer=waiting).update(expires_at=timezone.now() - timedelta(seconds=1))
    with translation.override("ru"), pytest.raises(claims.ClaimCodeRefused) as refused:
        claims.claim_submit(transfer_id=waiting.pk, code=code, destination=claims.Destination(new_recipient()))
    assert refused.value.detail == "Срок действия кода истёк. Запросите новый."
    assert Transfer.objects.get(pk=waiting.pk).status == S.AWAITING_CLAIM


def test_codes_are_limited_per_transfer_resend_interval_day_and_per_ip(waiting, settings):
    """A second code within the resend interval is refused; past CLAIM_CODES_PER_DAY in 24 h too; and one IP may ask
    only RATE_LIMITS["claim-send"] times an hour whatever the transfer."""
    send(waiting)
    with pytest.raises(claims.ClaimRateLimited):
        send(waiting)
    settings.CLAIM_CODE_RESEND_SECONDS = 0
    for _ in range(settings.CLAIM_CODES_PER_DAY - 1):
        send(waiting)
    with pytest.raises(claims.ClaimRateLimited):
        send(waiting)
    assert ClaimCode.objects.filter(transfer=waiting).count() == settings.CLAIM_CODES_PER_DAY
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "claim-send": (1, 3600), "claim-verify": (2, 3600)}
    settings.CLAIM_CODES_PER_DAY = 100
    send(waiting, ip="203.0.113.9")
    with pytest.raises(claims.ClaimRateLimited):
        send(waiting, ip="203.0.113.9")
    for _ in range(2):
        with pytest.raises(claims.ClaimCodeRefused):
            claims.claim_submit(transfer_id=waiting.pk, code="000000", destination=claims.Destination(new_recipient()),
                                ip="203.0.113.9")
    with pytest.raises(claims.ClaimRateLimited):
        claims.claim_submit(transfer_id=waiting.pk, code="000000", destination=claims.Destination(new_recipient()),
                            ip="203.0.113.9")


def test_no_code_is_sent_before_the_transfer_waits_for_its_claim(api, partner, pricing, sms_outbox):
    """Funded but not yet screened: not ready; nothing is sent and no code stored."""
    transfer = Transfer.objects.get(pk=create_unclaimed(api, partner).json()["id"])
    assert transfer.status == S.FUNDED
    with pytest.raises(claims.ClaimRefused, match="not ready"):
        claims.claim_code_send(transfer_id=transfer.pk, ip="198.51.100.7")
    assert sms_outbox == [] and not ClaimCode.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_two_racing_claims_end_with_one_destination(api, partner, pricing):
    """Two claims with the same right code at once: exactly one succeeds, the other is refused, one wallet stored."""
    response = create_unclaimed(api, partner, key="race")
    transfer = pipeline.transfer_advance(transfer_id=response.json()["id"])
    code = send(transfer)
    wallets = [new_recipient(), new_recipient()]
    barrier, results = threading.Barrier(2), []

    def claim(wallet):
        try:
            barrier.wait()
            claims.claim_submit(transfer_id=transfer.pk, code=code, destination=claims.Destination(wallet))
            results.append(("ok", wallet))
        except (claims.ClaimRefused, claims.ClaimCodeRefused) as exc:
            results.append(("refused", exc.detail))
        finally:
            connection.close()

    threads = [threading.Thread(target=claim, args=(w,)) for w in wallets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(kind for kind, _ in results) == ["ok", "refused"]
    winner = next(value for kind, value in results if kind == "ok")
    assert Transfer.objects.get(pk=transfer.pk).recipient_wallet == winner


def test_reminders_are_sent_once_each_then_the_transfer_is_refunded_to_the_balance(waiting, sms_outbox, settings):
    """At 24 h and 72 h one reminder each (sweeping again sends nothing more); past CLAIM_WINDOW_HOURS the transfer
    goes through the refund path (refunding, then refunded by the refund task's service)."""
    funded = waiting.funded_at
    assert claims.claims_sweep(now=funded + timedelta(hours=1)) == (0, 0)
    assert claims.claims_sweep(now=funded + timedelta(hours=25)) == (1, 0)
    assert claims.claims_sweep(now=funded + timedelta(hours=26)) == (0, 0)
    assert claims.claims_sweep(now=funded + timedelta(hours=73)) == (1, 0)
    assert [m.idempotency_key for m in sms_outbox] == [f"claim-reminder-{waiting.pk}-1", f"claim-reminder-{waiting.pk}-2"]
    assert waiting.recipient_token in sms_outbox[0].body
    assert ClaimReminder.objects.filter(transfer=waiting, sent_at__isnull=False).count() == 2
    assert claims.claims_sweep(now=funded + timedelta(hours=settings.CLAIM_WINDOW_HOURS, seconds=1)) == (0, 1)
    transfer = Transfer.objects.get(pk=waiting.pk)
    assert transfer.status == S.REFUNDING and "not claimed" in transfer.failure_reason
    assert pipeline_refunds.transfer_refund(transfer_id=waiting.pk).status == S.REFUNDED
    with pytest.raises(claims.ClaimRefused, match="no longer be claimed"):
        claims.claim_code_send(transfer_id=waiting.pk)


def test_a_reminder_stored_but_not_sent_before_a_crash_is_sent_on_the_next_sweep(waiting, sms_outbox):
    """A reminder row left without `sent_at` (a crash between storing it and the SMS) is sent by the next sweep with
    the same idempotency key, also when an earlier reminder was sent; sent ones are never sent again."""
    funded = waiting.funded_at
    ClaimReminder.objects.create(transfer=waiting, number=1, sent_at=timezone.now())
    ClaimReminder.objects.create(transfer=waiting, number=2)
    assert claims.claims_sweep(now=funded + timedelta(hours=73)) == (1, 0)
    assert [m.idempotency_key for m in sms_outbox] == [f"claim-reminder-{waiting.pk}-2"]
    assert claims.claims_sweep(now=funded + timedelta(hours=74)) == (0, 0)


def test_a_new_list_version_screens_a_waiting_transfer_again_and_can_hold_it(waiting, listing):  # noqa: F811
    """A transfer waiting days for its claim is screened against a new sanctions list version like a funded one: its
    recipient newly listed, it moves to `held`, where neither a claim nor the sender's cancel can take the money out."""
    listing(names=["Gulnara Usenova"])
    assert pipeline_rescreen.transfers_rescreen(reason="sample:claim") == {"held": 1}
    waiting.refresh_from_db()
    assert waiting.status == S.HELD
    assert not pipeline_cancel.transfer_cancellable(waiting)


def test_claims_count_against_the_wallets_velocity_limit(api, partner, pricing, settings, sms_outbox, chain):
    """Phone-only transfers claimed into one wallet count as transfers to it: over the wallet's limit the claim is
    refused beside the wallet field, nothing is claimed and the code stays usable (for another wallet)."""
    # A window far wider than the test (windows start at multiples of their length: an hour could end mid-test).
    settings.VELOCITY_LIMITS = {**settings.VELOCITY_LIMITS, "wallet": [(1, 10**9)]}
    wallet = new_recipient()
    first, second = (pipeline.transfer_advance(transfer_id=create_unclaimed(api, partner, key=k).json()["id"])
                     for k in ("claim-v1", "claim-v2"))
    claims.claim_submit(transfer_id=first.pk, code=send(first), wallet_address=wallet)
    code = send(second)
    with pytest.raises(claims.ClaimRefused) as refused:
        claims.claim_submit(transfer_id=second.pk, code=code, wallet_address=wallet)
    assert refused.value.field == "wallet_address" and "too many transfers" in str(refused.value.detail)
    second.refresh_from_db()
    assert second.status == S.AWAITING_CLAIM and second.recipient_wallet == ""
    claims.claim_submit(transfer_id=second.pk, code=code, wallet_address=new_recipient())
    second.refresh_from_db()
    assert second.status in (S.FUNDED, S.SETTLING) and second.recipient_wallet


def test_a_code_the_provider_surely_did_not_send_does_not_use_up_the_days_codes(waiting, settings):
    """A final provider refusal (nothing sent) leaves no code behind: five such failures do not lock the recipient
    out for a day."""
    settings.SMS_BACKEND = "common.sms.ConsoleBackend"
    settings.DEBUG = False  # the console backend refuses outside DEBUG: a final error
    settings.CLAIM_CODE_RESEND_SECONDS = 0
    for _ in range(settings.CLAIM_CODES_PER_DAY + 1):
        with pytest.raises(claims.ClaimRefused):
            claims.claim_code_send(transfer_id=waiting.pk, ip="198.51.100.9")
    assert not ClaimCode.objects.filter(transfer=waiting).exists()
