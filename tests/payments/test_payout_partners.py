"""Payout partners (issue 10): a transfer names a bank or wallet provider instead of a wallet; its KGST goes to the
partner's settlement address, the transfer waits in `awaiting_payout_confirmation`, and the partner confirms (→
`completed`) or fails (→ `payout_failed`, operators alerted) through `/api/v1/payouts`. Late confirmations raise one
operator alert each. Real PostgreSQL, anvil and (last test) a real Celery worker and beat."""

import re
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from onchain.models import OperatorAlert
from payments import pipeline, pipeline_refunds
from payments.models import JournalEntry, PartnerPayout, PayoutPartner, Transfer, to_minor
from payments.services import balances
from payments.services.ledger import account_balance
from payments.services.payout_partners import payouts_escalate
from payments.services.setup import partner_create
from tests.conftest import QUOTE_BODY, new_recipient, token_balance, wait_for

pytestmark = pytest.mark.django_db
S = Transfer.Status
SENDER = {"name": "Aibek Usenov", "phone": "+79161234567", "email": "aibek@example.com"}
TX = "0x" + "ab" * 32


def client_for(partner_key):
    api_client = APIClient()
    api_client.credentials(HTTP_AUTHORIZATION=f"Api-Key {partner_key}")
    return api_client


def make_bank(code="demir-bank", name="Demir Bank", active=True):
    operator, key = partner_create(name=f"{code}-ops", scopes=["payouts:confirm"])
    bank = PayoutPartner.objects.create(code=code, name=name, kind=PayoutPartner.Kind.BANK, operator=operator,
                                        settlement_address=new_recipient(), is_active=active)
    return bank, client_for(key)


@pytest.fixture
def bank(db, chain):
    return make_bank()


def body(quote_id, *, payout_partner="demir-bank", account="KG12 3456 7890", wallet=None):
    recipient = {"name": "Gulnara Usenova", "phone": "+996555123456"}
    if payout_partner is not None:
        recipient["payout_partner"] = payout_partner
    if account is not None:
        recipient["account"] = account
    if wallet is not None:
        recipient["wallet_address"] = wallet
    return {"quote_id": str(quote_id), "sender": SENDER, "recipient": recipient, "funding": {"method": "balance"}}


def quote(api):
    response = api.post("/api/v1/quotes", QUOTE_BODY, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def create(api, partner, key="order-1", **kwargs):
    balances.balance_topup(partner=partner, currency="RUB", amount=Decimal("20000.00"), reference=f"bank-{key}")
    response = api.post("/api/v1/transfers", body(quote(api)["id"], **kwargs), format="json",
                        HTTP_IDEMPOTENCY_KEY=key)
    return response


def awaiting(api, partner, key="order-1"):
    """A payout-partner transfer funded from the balance, screened, its payout reported final by onchain."""
    response = create(api, partner, key=key)
    assert response.status_code == 201, response.content
    transfer_id = response.json()["id"]
    assert pipeline.transfer_advance(transfer_id=transfer_id).status == S.SETTLING
    pipeline.TransferPayoutListener().payouts_final(references=[transfer_id], tx_hash=TX)
    transfer = Transfer.objects.get(pk=transfer_id)
    assert transfer.status == S.AWAITING_PAYOUT_CONFIRMATION
    return transfer


def kinds(transfer):
    return set(JournalEntry.objects.filter(transfer=transfer).values_list("kind", flat=True))


# Creating ----------------------------------------------------------------------------------------------------------

def test_a_transfer_naming_a_payout_partner_pays_its_settlement_address_with_a_reference(api, partner, pricing, bank):
    """`recipient.payout_partner` (by code or id) with `recipient.account`: 201; the payout goes to the partner's
    settlement address, and a short reference the partner sees is stored with the recipient's account."""
    payout_partner, _ = bank
    response = create(api, partner, payout_partner=str(payout_partner.pk))
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["recipient"]["payout_partner"] == "demir-bank"
    assert data["recipient"]["account"] == "KG12 3456 7890"
    assert data["recipient"]["wallet_address"] == payout_partner.settlement_address
    payout = PartnerPayout.objects.get(transfer_id=data["id"])
    assert payout.reference == data["recipient"]["payout_reference"]
    assert payout.reference.startswith("TP") and len(payout.reference) == 12
    assert payout.status == PartnerPayout.Status.PENDING


def test_a_replay_answers_the_first_transfer_after_its_partner_was_deactivated(api, partner, pricing, bank):
    """The same Idempotency-Key and body replay the first answer (201, byte for byte) even once its payout partner
    stopped taking new transfers; a new key is refused beside `recipient.payout_partner`."""
    payout_partner, _ = bank
    balances.balance_topup(partner=partner, currency="RUB", amount=Decimal("20000.00"), reference="bank-replay")
    data = body(quote(api)["id"])
    first = api.post("/api/v1/transfers", data, format="json", HTTP_IDEMPOTENCY_KEY="replay-1")
    assert first.status_code == 201, first.content
    PayoutPartner.objects.filter(pk=payout_partner.pk).update(is_active=False)
    again = api.post("/api/v1/transfers", data, format="json", HTTP_IDEMPOTENCY_KEY="replay-1")
    assert again.status_code == 201 and again.content == first.content
    assert again.headers["Idempotent-Replayed"] == "true"
    refused = api.post("/api/v1/transfers", body(quote(api)["id"]), format="json", HTTP_IDEMPOTENCY_KEY="replay-2")
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "recipient.payout_partner"


def test_a_partners_settlement_address_is_never_one_recipients_identity(api, partner, pricing, bank):
    """A dispute freezes a transfer's sender, card and wallet; for a payout-partner transfer the "wallet" is the
    partner's settlement address, which pays many people: it is left out of the identities that are frozen and counted
    (velocity), so one dispute cannot stop every payout of that partner."""
    from payments.services import fraud

    response = create(api, partner)
    transfer = Transfer.objects.get(pk=response.json()["id"])
    kinds_ = {kind for kind, _value in fraud.transfer_identities(transfer, card_fingerprint="fp_1")}
    assert kinds_ == {"email", "phone", "card"}


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"wallet": "0x" + "11" * 20}, "recipient.payout_partner"),  # both a wallet and a partner
    ({"payout_partner": None}, "recipient.account"),  # an account with neither (neither alone: a recipient claim)
    ({"account": None}, "recipient.account"),  # a partner without the recipient's account there
    ({"payout_partner": None, "wallet": "0x" + "11" * 20}, "recipient.account"),  # an account beside a wallet
    ({"payout_partner": "no-such-bank"}, "recipient.payout_partner"),
    ({"payout_partner": "999999"}, "recipient.payout_partner"),
    ({"payout_partner": "closed-bank"}, "recipient.payout_partner"),  # inactive
])
def test_bad_routing_is_a_problem_naming_the_field_and_stores_nothing(api, partner, pricing, bank, kwargs, field):
    """At most one of wallet_address and payout_partner (with account); an unknown or inactive partner is refused
    beside `recipient.payout_partner`. Nothing is stored, nothing is taken from the balance."""
    make_bank(code="closed-bank", name="Closed Bank", active=False)
    response = create(api, partner, **kwargs)
    assert response.status_code in (400, 422), response.content
    problem = response.json()
    assert response["Content-Type"] == "application/problem+json"
    assert field in [e["field"] for e in problem["errors"]], problem
    assert not Transfer.objects.exists()
    assert not PartnerPayout.objects.exists()
    assert balances.balance_get(partner=partner, currency="RUB") == 2_000_000


# Confirming and failing --------------------------------------------------------------------------------------------

def test_confirmation_completes_the_transfer_and_settles_the_ledger_once(api, partner, pricing, bank):
    """A final payout to the partner waits for it (`partner_payout` entry: the KGST is the partner's to pay out, the
    som still owed to the recipient). The partner's list shows it; its confirmation completes the transfer with the
    `payout` entry; confirming again answers the same and posts nothing more; failing it afterwards is a 409."""
    payout_partner, bank_api = bank
    transfer = awaiting(api, partner)
    som = to_minor(transfer.quote.target_amount, "KGS")
    operator = payout_partner.operator
    assert kinds(transfer) == {"funding", "partner_payout"}
    assert account_balance("recipient_payable", "KGS") == -som
    assert account_balance("payout_partner_clearing", "KGS", operator) == som

    listed = bank_api.get("/api/v1/payouts")
    assert listed.status_code == 200, listed.content
    (item,) = listed.json()["results"]
    assert item["id"] == str(transfer.pk)
    assert item["reference"] == transfer.partner_payout.reference
    assert item["amount"] == str(transfer.quote.target_amount) and item["currency"] == "KGS"
    assert item["tx_hash"] == TX
    assert item["recipient"] == {"name": "Gulnara Usenova", "phone": "+996555123456", "account": "KG12 3456 7890"}

    first = bank_api.post(f"/api/v1/payouts/{transfer.pk}/confirm")
    assert first.status_code == 200, first.content
    assert first.json()["status"] == "confirmed"
    after = Transfer.objects.get(pk=transfer.pk)
    assert after.status == S.COMPLETED and after.completed_at is not None
    again = bank_api.post(f"/api/v1/payouts/{transfer.pk}/confirm")
    assert again.status_code == 200 and again.json() == first.json()
    assert kinds(transfer) == {"funding", "partner_payout", "payout"}
    assert JournalEntry.objects.filter(transfer=transfer, kind="payout").count() == 1
    assert account_balance("recipient_payable", "KGS") == 0
    assert account_balance("payout_partner_clearing", "KGS", operator) == 0
    assert bank_api.get("/api/v1/payouts").json()["results"] == []

    late_fail = bank_api.post(f"/api/v1/payouts/{transfer.pk}/fail", {"reason": "oops"}, format="json")
    assert late_fail.status_code == 409
    assert late_fail.json()["type"].endswith("/payout-already-decided")
    assert Transfer.objects.get(pk=transfer.pk).status == S.COMPLETED


def test_a_failed_payout_waits_for_operators_and_cannot_be_confirmed(api, partner, pricing, bank):
    """The partner fails a payout with a reason: `payout_failed`, an operator alert, the KGST still booked as held by
    the partner; failing again answers the same; a confirmation afterwards is a 409 and changes nothing. The sender's
    cancel is refused (the money left us)."""
    payout_partner, bank_api = bank
    transfer = awaiting(api, partner)
    failed = bank_api.post(f"/api/v1/payouts/{transfer.pk}/fail", {"reason": "account closed"}, format="json")
    assert failed.status_code == 200, failed.content
    assert failed.json()["status"] == "failed" and failed.json()["failure_reason"] == "account closed"
    after = Transfer.objects.get(pk=transfer.pk)
    assert after.status == S.PAYOUT_FAILED
    assert "account closed" in after.failure_reason
    assert OperatorAlert.objects.filter(kind="payout_partner", message__contains=str(transfer.pk)).count() == 1
    assert bank_api.post(f"/api/v1/payouts/{transfer.pk}/fail", {"reason": "account closed"},
                         format="json").json() == failed.json()

    confirm = bank_api.post(f"/api/v1/payouts/{transfer.pk}/confirm")
    assert confirm.status_code == 409
    assert confirm.json()["type"].endswith("/payout-already-decided")
    assert Transfer.objects.get(pk=transfer.pk).status == S.PAYOUT_FAILED
    assert kinds(transfer) == {"funding", "partner_payout"}
    som = to_minor(transfer.quote.target_amount, "KGS")
    assert account_balance("payout_partner_clearing", "KGS", payout_partner.operator) == som

    cancel = api.post(f"/api/v1/transfers/{transfer.pk}/cancel")
    assert cancel.status_code == 409


def test_an_operator_refunds_a_failed_payout_back_to_the_balance(api, partner, pricing, bank):
    """From `payout_failed` the one refund path applies (here back to the partner's balance) once treasury has
    recorded the KGST back from the partner: before that the refund changes nothing (a partner that in fact paid
    would be paid for twice); after it, `refunded`, the funding unwound, nothing held at the partner."""
    from payments.services.payout_partners import payout_return_record

    payout_partner, bank_api = bank
    transfer = awaiting(api, partner)
    bank_api.post(f"/api/v1/payouts/{transfer.pk}/fail", {"reason": "name mismatch"}, format="json")
    assert pipeline_refunds.transfer_refund(transfer_id=transfer.pk).status == S.PAYOUT_FAILED
    som = to_minor(transfer.quote.target_amount, "KGS")
    assert account_balance("payout_partner_clearing", "KGS", payout_partner.operator) == som
    assert not JournalEntry.objects.filter(transfer=transfer, kind="refund").exists()
    payout_return_record(payout_id=PartnerPayout.objects.get(transfer=transfer).pk, note="returned, tx 0xabc")
    refunded = pipeline_refunds.transfer_refund(transfer_id=transfer.pk)
    assert refunded.status == S.REFUNDED
    assert balances.balance_get(partner=partner, currency="RUB") == 2_000_000
    assert account_balance("recipient_payable", "KGS") == 0
    assert account_balance("payout_partner_clearing", "KGS", payout_partner.operator) == 0


def test_treasury_records_a_failed_payouts_kgst_returned_once(client, api, partner, pricing, bank):
    """Once the partner sent a failed payout's KGST back, treasury records it in admin (with a reason): the
    `partner_payout_returned` entry clears the partner's holding and puts the KGST back in the float; recording it
    again is refused and posts nothing; an operator without the permission is refused."""
    from staff.models import AuditEntry
    from tests.helpers import staff_login
    from tests.security.factories import staff_user

    payout_partner, bank_api = bank
    transfer = awaiting(api, partner)
    bank_api.post(f"/api/v1/payouts/{transfer.pk}/fail", {"reason": "account closed"}, format="json")
    payout = PartnerPayout.objects.get(transfer=transfer)
    form = {"action": "record_return", "_selected_action": [payout.pk], "post": "yes",
            "reason": "Demir Bank returned it, tx 0xabc"}

    staff_login(client, staff_user("operator"))
    assert client.post("/admin/payments/partnerpayout/", form).status_code == 403
    staff_login(client, staff_user("treasury"))
    client.post("/admin/payments/partnerpayout/", form)
    payout.refresh_from_db()
    assert payout.returned_at is not None
    assert account_balance("payout_partner_clearing", "KGS", payout_partner.operator) == 0
    assert account_balance("kgst_float", "KGS") == 0
    client.post("/admin/payments/partnerpayout/", form)
    assert JournalEntry.objects.filter(transfer=transfer, kind="partner_payout_returned").count() == 1
    assert AuditEntry.objects.filter(action="payments.record_payout_return", outcome="done").count() == 1


def test_another_payout_partners_payout_is_not_found(api, partner, pricing, bank):
    """A payout partner sees, confirms and fails only its own payouts: another's is a 404 problem and nothing
    changes; the origination partner's own key (without the payouts scope) is refused as well."""
    transfer = awaiting(api, partner)
    _, other_api = make_bank(code="other-bank", name="Other Bank")
    assert other_api.get("/api/v1/payouts").json()["results"] == []
    for path in ("confirm", "fail"):
        response = other_api.post(f"/api/v1/payouts/{transfer.pk}/{path}", {"reason": "x"}, format="json")
        assert response.status_code == 404, response.content
        assert response.json()["type"].endswith("/payout-not-found")
    assert api.post(f"/api/v1/payouts/{transfer.pk}/confirm").status_code == 403
    assert Transfer.objects.get(pk=transfer.pk).status == S.AWAITING_PAYOUT_CONFIRMATION


def test_a_key_without_the_payouts_scope_cannot_see_or_decide_payouts(api, partner, pricing, bank):
    """The payout partner's operator with a key lacking `payouts:confirm` (a default key) is refused with a 403
    naming the scope, on the list and on both decisions; nothing changes."""
    payout_partner, _ = bank
    _, default_key = partner_create(name=payout_partner.operator.name)
    plain = client_for(default_key)
    for response in (plain.get("/api/v1/payouts"), plain.post(f"/api/v1/payouts/{uuid.uuid4()}/confirm"),
                     plain.post(f"/api/v1/payouts/{uuid.uuid4()}/fail", {"reason": "x"}, format="json")):
        assert response.status_code == 403 and "payouts:confirm" in response.content.decode()


def test_a_payout_not_final_yet_cannot_be_confirmed(api, partner, pricing, bank):
    """Before its KGST is final at the partner (settling), a confirmation is a 409 and changes nothing."""
    _, bank_api = bank
    transfer_id = create(api, partner).json()["id"]
    pipeline.transfer_advance(transfer_id=transfer_id)
    response = bank_api.post(f"/api/v1/payouts/{transfer_id}/confirm")
    assert response.status_code == 409
    assert Transfer.objects.get(pk=transfer_id).status == S.SETTLING


# Escalation --------------------------------------------------------------------------------------------------------

def test_unconfirmed_payouts_escalate_once_past_the_deadline(api, partner, pricing, bank, settings):
    """A payout awaiting confirmation longer than PAYOUT_CONFIRM_ESCALATE_MINUTES raises one operator alert; later
    runs raise none for it; a younger one, or one confirmed meanwhile, raises none."""
    settings.PAYOUT_CONFIRM_ESCALATE_MINUTES = 60
    _, bank_api = bank
    old = awaiting(api, partner, key="old")
    young = awaiting(api, partner, key="young")
    done = awaiting(api, partner, key="done")
    bank_api.post(f"/api/v1/payouts/{done.pk}/confirm")
    long_ago = timezone.now() - timedelta(minutes=61)
    PartnerPayout.objects.filter(transfer__in=[old, done]).update(sent_at=long_ago)

    assert payouts_escalate() == 1
    assert payouts_escalate() == 0
    assert payouts_escalate(now=timezone.now() + timedelta(hours=5)) == 1  # the young one, once it is late too
    alerts = OperatorAlert.objects.filter(kind="payout_partner")
    assert alerts.count() == 2
    assert alerts.filter(message__contains=str(old.pk)).count() == 1
    assert alerts.filter(message__contains=str(young.pk)).count() == 1
    assert not alerts.filter(message__contains=str(done.pk)).exists()


# Status pages and admin ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("code", "sender_says", "recipient_says"), [
    ("en", "Paid to Demir Bank, awaiting confirmation", "Paid to Demir Bank, awaiting confirmation"),
    ("ru", "Выплачено через Demir Bank, ждём подтверждения", "Выплачено через Demir Bank, ждём подтверждения"),
    ("ky", "Demir Bank аркылуу төлөндү, ырастоо күтүлүүдө", "Demir Bank аркылуу төлөндү, ырастоо күтүлүүдө"),
])
def test_status_pages_say_paid_to_the_partner_awaiting_confirmation(client, api, partner, pricing, bank, code,
                                                                    sender_says, recipient_says):
    """While the partner has not confirmed, the sender's and the recipient's pages name the partner ("paid to
    <partner>, awaiting confirmation") in the chosen language, with the payout reference; the recipient sees the
    account at the partner, not the partner's settlement address."""
    transfer = awaiting(api, partner)
    client.get(f"/language/{code}", {"next": "/"})
    sender_page = client.get(f"/t/{transfer.sender_token}").content.decode()
    recipient_page = client.get(f"/r/{transfer.recipient_token}").content.decode()
    assert sender_says in sender_page
    assert recipient_says in recipient_page
    reference = transfer.partner_payout.reference
    assert reference in sender_page and reference in recipient_page
    assert "KG12 3456 7890" in recipient_page
    assert 'id="payout-partner"' in recipient_page


def test_a_failed_partner_payout_reads_as_a_payout_problem(client, api, partner, pricing, bank):
    """After the partner fails it, the sender reads that the partner could not pay and what happens next."""
    _, bank_api = bank
    transfer = awaiting(api, partner)
    bank_api.post(f"/api/v1/payouts/{transfer.pk}/fail", {"reason": "account closed"}, format="json")
    page = client.get(f"/t/{transfer.sender_token}").content.decode()
    assert "Demir Bank could not pay the recipient" in page


def test_admin_refuses_a_contract_as_settlement_address_and_lists_payouts_with_their_age(
        client, api, partner, pricing, bank, chain):
    """Treasury adds payout partners in admin: the token contract as settlement address is refused by onchain's
    recipient check (nothing stored), an ordinary address is accepted; the payouts list shows each awaiting
    payout's age."""
    from tests.helpers import staff_login
    from tests.security.factories import staff_user

    staff_login(client, staff_user("treasury"))
    form = {"code": "keremet-pay", "name": "Keremet Pay", "kind": "wallet_provider", "operator": partner.pk,
            "is_active": "on", "change_reason": "signed the payout agreement"}
    refused = client.post("/admin/payments/payoutpartner/add/", {**form, "settlement_address": chain["token"].address})
    assert refused.status_code == 200
    assert "token contract" in refused.content.decode(), re.findall(r"errorlist.{0,300}", refused.content.decode())
    assert not PayoutPartner.objects.filter(code="keremet-pay").exists()
    accepted = client.post("/admin/payments/payoutpartner/add/", {**form, "settlement_address": new_recipient()})
    assert accepted.status_code == 302, accepted.content.decode()[:2000]
    assert PayoutPartner.objects.filter(code="keremet-pay").exists()

    transfer = awaiting(api, partner)
    PartnerPayout.objects.filter(transfer=transfer).update(sent_at=timezone.now() - timedelta(minutes=75))
    listing = client.get("/admin/payments/partnerpayout/")
    assert listing.status_code == 200
    page = listing.content.decode()
    assert transfer.partner_payout.reference in page
    assert "1 h 15 min" in page


# End to end --------------------------------------------------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_end_to_end_on_the_real_pipeline(api, partner, pricing, bank, chain, celery_processes):
    """Through the API, a real Celery worker and beat, and anvil: a balance-funded transfer to a payout partner is
    screened and paid on chain to the partner's settlement address (exactly the quoted KGST), waits for the
    partner, and completes on its confirmation."""
    payout_partner, bank_api = bank
    response = create(api, partner)
    assert response.status_code == 201, response.content
    transfer_id = response.json()["id"]
    wait_for(lambda: Transfer.objects.get(pk=transfer_id).status == S.AWAITING_PAYOUT_CONFIRMATION, timeout=90,
             what="the payout to be final at the partner")
    transfer = Transfer.objects.get(pk=transfer_id)
    token = chain["token"]
    assert token_balance(token, payout_partner.settlement_address) == int(
        transfer.quote.target_amount.scaleb(token.decimals))
    (item,) = bank_api.get("/api/v1/payouts").json()["results"]
    receipt = chain["w3"].eth.get_transaction_receipt(item["tx_hash"])
    assert receipt["status"] == 1
    assert bank_api.post(f"/api/v1/payouts/{transfer_id}/confirm").status_code == 200
    assert Transfer.objects.get(pk=transfer_id).status == S.COMPLETED
    assert kinds(transfer) == {"funding", "partner_payout", "payout"}


def test_a_partners_settlement_address_named_as_a_plain_wallet_is_refused(api, partner, pricing, bank):
    """A transfer naming a payout partner's settlement address as `wallet_address` would complete with no payout
    reference for the partner: refused beside the wallet field, nothing created."""
    payout_partner, _ = bank
    data = body(quote(api)["id"])
    data["recipient"] = {"name": "Aida Bekova", "phone": "+996555123456",
                         "wallet_address": payout_partner.settlement_address}
    response = api.post("/api/v1/transfers", data, format="json", HTTP_IDEMPOTENCY_KEY="plain-to-partner")
    assert response.status_code == 422, response.content
    assert response.json()["errors"][0]["field"] == "recipient.wallet_address"
    assert not Transfer.objects.exists()


def test_a_partners_settlement_address_and_operator_are_not_edited_in_admin(client, bank):
    """Where the KGST goes and whose keys confirm it are set once: the change form shows them read-only."""
    from django.contrib.auth import get_user_model

    from tests.helpers import staff_login

    payout_partner, _ = bank
    user = get_user_model().objects.create_superuser("root", "r@example.com", "a-long-password-123")
    staff_login(client, user)
    form = client.get(f"/admin/payments/payoutpartner/{payout_partner.pk}/change/").context["adminform"].form
    assert not {"settlement_address", "operator", "code"} & set(form.fields)
