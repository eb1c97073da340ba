"""Partner prefunded balances (issue 8): top-ups and withdrawals recorded in admin with a reason and a bank reference,
transfers funded at once from the balance, refunds back to it, the balance and its statement in the API and admin,
and every refusal leaving nothing behind. The 200-request race is in test_balances_concurrency.py."""

import json
from collections import defaultdict
from decimal import Decimal

import pytest
import redis
from django.conf import settings
from django.test import Client

from payments import pipeline, pipeline_refunds
from payments.errors import BalanceMissing, BalanceReferenceUsed, FundingMethodRefused, InsufficientBalance
from payments.models import JournalEntry, Posting, Quote, Transfer, to_minor
from payments.services import balances
from payments.services.ledger import account_balance, funding_lines
from payments.services.quotes import quote_create
from payments.services.setup import partner_create
from payments.services.transfers import transfer_create
from staff.models import AuditEntry
from tests.conftest import QUOTE_BODY, new_recipient, stripe_requests, token_balance, wait_for
from tests.helpers import staff_login
from tests.security.factories import staff_user

pytestmark = pytest.mark.django_db
S = Transfer.Status
SENDER = {"name": "Aibek Usenov", "phone": "+79161234567", "email": "aibek@example.com"}


def topup(partner, amount, currency="RUB", reference=None):
    return balances.balance_topup(partner=partner, currency=currency, amount=Decimal(amount),
                                  reference=reference or f"bank-{JournalEntry.objects.count() + 1}")


def body(quote_id, method="balance", wallet=None):
    data = {"quote_id": str(quote_id), "sender": SENDER,
            "recipient": {"name": "Gulnara Usenova", "phone": "+996555123456", "wallet_address": wallet or new_recipient()}}
    if method:
        data["funding"] = {"method": method}
    return data


def quote_for(api, amount="15000.00", currency="RUB"):
    response = api.post("/api/v1/quotes", {**QUOTE_BODY, "source_amount": amount, "source_currency": currency},
                        format="json")
    assert response.status_code == 201, response.content
    return response.json()


def owed(partner, currency="RUB"):
    return balances.balance_get(partner=partner, currency=currency)


def ledger_sums():
    """Sum of every posting per currency: zero when every entry balances."""
    sums = defaultdict(int)
    for currency, amount in Posting.objects.values_list("account__currency", "amount_minor"):
        sums[currency] += amount
    return dict(sums)


# Top-ups and withdrawals -------------------------------------------------------------------------------------------

def test_topup_and_withdrawal_move_the_derived_balance_through_balanced_entries(partner):
    """A top-up credits the partner's own balance account and debits our bank account; a withdrawal reverses that.
    The balance is the account's postings, nothing else, and every entry balances."""
    first = topup(partner, "100000.00", reference="SBER-001")
    assert owed(partner) == 10_000_000
    assert {(p.account.code, p.account.partner_id, p.amount_minor) for p in first.postings.select_related("account")} == {
        ("partner_settlement_bank", None, 10_000_000), ("partner_balance", partner.pk, -10_000_000)}
    assert first.reference == f"topup:{partner.pk}:SBER-001"
    out = balances.balance_withdraw(partner=partner, currency="RUB", amount=Decimal("30000.50"), reference="OUT-1")
    assert owed(partner) == 10_000_000 - 3_000_050
    assert out.kind == "withdrawal"
    assert account_balance("partner_settlement_bank", "RUB") == 10_000_000 - 3_000_050
    assert account_balance("partner_balance", "RUB", partner) == -(10_000_000 - 3_000_050)
    assert ledger_sums() == {"RUB": 0}
    assert [(b.currency, b.amount) for b in balances.balances_list(partner=partner)] == [("RUB", Decimal("69999.50"))]


def test_a_bank_reference_is_recorded_once_per_partner(partner):
    """The same bank reference sent twice (a double-submitted form) posts once and the second is refused by name;
    another partner's transfer with the same bank reference is its own top-up."""
    topup(partner, "500.00", reference="REF-7")
    with pytest.raises(BalanceReferenceUsed, match="REF-7"):
        topup(partner, "500.00", reference="REF-7")
    assert owed(partner) == 50_000
    other, _ = partner_create(name="other")
    topup(other, "200.00", reference="REF-7")
    assert (owed(partner), owed(other)) == (50_000, 20_000)
    assert JournalEntry.objects.filter(kind="topup").count() == 2


def test_a_withdrawal_over_the_balance_or_without_one_is_refused_and_posts_nothing(partner):
    """A withdrawal larger than the balance, or from a currency the partner holds nothing in, is refused with the
    balance in the message; nothing is posted."""
    with pytest.raises(BalanceMissing):
        balances.balance_withdraw(partner=partner, currency="USD", amount=Decimal("1.00"), reference="W-0")
    topup(partner, "1000.00")
    entries = JournalEntry.objects.count()
    with pytest.raises(InsufficientBalance, match="1,000.00 RUB"):
        balances.balance_withdraw(partner=partner, currency="RUB", amount=Decimal("1000.01"), reference="W-1")
    assert JournalEntry.objects.count() == entries
    assert owed(partner) == 100_000
    balances.balance_withdraw(partner=partner, currency="RUB", amount=Decimal("1000.00"), reference="W-2")
    assert owed(partner) == 0


# Funding transfers from the balance --------------------------------------------------------------------------------

def _queued_advance(transfer_id):
    """The advance task message for this transfer in the queue it is routed to (the settlement queue), taken out of
    it, or None."""
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    queue = settings.CELERY_TASK_ROUTES["payments.transfer_advance"]["queue"]
    for raw in client.lrange(queue, 0, -1):
        headers = json.loads(raw).get("headers", {})
        if headers.get("task") == "payments.transfer_advance" and transfer_id in headers.get("argsrepr", ""):
            client.lrem(queue, 1, raw)
            return headers
    return None


def test_a_balance_funded_transfer_is_funded_at_creation_without_a_payment_intent(
        api, partner, pricing, stripe_server, django_capture_on_commit_callbacks):
    """`funding: {"method": "balance"}` funds the transfer in the creating request: 201 `funded`, no PaymentIntent
    (Stripe is never called), the balance falls by exactly the quoted amount, the funding entry is the card funding's
    with partner_balance in card_clearing's place, and the advance step is queued after commit."""
    topup(partner, "20000.00")
    quote = quote_for(api)
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/v1/transfers", body(quote["id"]), format="json", HTTP_IDEMPOTENCY_KEY="bal-1")
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["status"] == "funded" and data["funded_at"]
    assert data["funding"]["method"] == "balance"
    assert data["funding"]["payment_intent_id"] is None and data["funding"]["client_secret"] is None
    assert stripe_requests("/v1/payment_intents") == []
    transfer = Transfer.objects.select_related("quote").get(pk=data["id"])
    assert transfer.funding_method == "balance" and transfer.release_after is None
    assert owed(partner) == 2_000_000 - to_minor(Decimal(quote["source_amount"]), "RUB")

    entry = JournalEntry.objects.get(transfer=transfer, kind="funding")
    posted = sorted((p.account.code, p.account.currency, p.amount_minor, p.account.partner_id)
                    for p in entry.postings.select_related("account"))
    card = funding_lines(transfer)
    expected = [("partner_balance", card[0][1], card[0][2], partner.pk)] + [(*line, None) for line in card[1:]]
    assert posted == sorted(expected)
    assert ledger_sums() == {"RUB": 0, "KGS": 0}
    assert _queued_advance(str(transfer.id)) is not None


def test_a_balance_that_does_not_cover_the_transfer_is_refused_and_the_quote_stays_usable(api, partner, pricing):
    """A balance short of the quoted amount (fee included) gets a 409 insufficient-balance problem naming the
    balance; no transfer exists and nothing is posted. After a top-up, the same request (key and body) goes through
    with the same quote."""
    topup(partner, "14999.99")
    quote = quote_for(api)
    request = body(quote["id"])
    entries = JournalEntry.objects.count()
    refused = api.post("/api/v1/transfers", request, format="json", HTTP_IDEMPOTENCY_KEY="short-1")
    assert refused.status_code == 409, refused.content
    problem = refused.json()
    assert problem["type"].endswith("/insufficient-balance")
    assert "14,999.99 RUB" in problem["detail"] and "15,000.00 RUB" in problem["detail"]
    assert not Transfer.objects.exists()
    assert JournalEntry.objects.count() == entries
    assert owed(partner) == 1_499_999

    topup(partner, "0.01")
    accepted = api.post("/api/v1/transfers", request, format="json", HTTP_IDEMPOTENCY_KEY="short-1")
    assert accepted.status_code == 201, accepted.content
    assert accepted.json()["status"] == "funded" and accepted.json()["quote"]["id"] == quote["id"]
    assert owed(partner) == 0


def test_the_insufficient_balance_problem_follows_the_requests_language(api, partner, pricing):
    """A partner app asking in Russian gets the refusal's detail in Russian (the catalog's entry, not the English)."""
    topup(partner, "100.00")
    quote = quote_for(api)
    response = api.post("/api/v1/transfers", body(quote["id"]), format="json", HTTP_IDEMPOTENCY_KEY="ru-1",
                        HTTP_ACCEPT_LANGUAGE="ru")
    assert response.status_code == 409
    assert response.json()["detail"].startswith("Ваш баланс в RUB составляет 100,00")


def test_a_partner_without_a_balance_in_the_quotes_currency_is_refused(api, partner, pricing):
    """A partner that holds a USD balance but none in rubles cannot fund a ruble transfer from a balance: a 409
    no-balance problem that names the currency; nothing is created or posted."""
    topup(partner, "500.00", currency="USD")
    quote = quote_for(api)
    entries = JournalEntry.objects.count()
    response = api.post("/api/v1/transfers", body(quote["id"]), format="json", HTTP_IDEMPOTENCY_KEY="none-1")
    assert response.status_code == 409, response.content
    assert response.json()["type"].endswith("/no-balance")
    assert "RUB" in response.json()["detail"]
    assert not Transfer.objects.exists() and JournalEntry.objects.count() == entries


def test_an_unknown_funding_method_is_a_validation_error(api, partner, pricing):
    """A funding method other than card or balance is a 400 on `funding.method`; nothing is created."""
    topup(partner, "20000.00")
    quote = quote_for(api)
    response = api.post("/api/v1/transfers", body(quote["id"], method="crypto"), format="json",
                        HTTP_IDEMPOTENCY_KEY="odd-1")
    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == ["funding.method"]
    assert not Transfer.objects.exists() and owed(partner) == 2_000_000


def test_a_web_transfer_cannot_be_funded_from_a_balance(pricing):
    """A transfer of no partner (the web form) asking for balance funding is refused with a 400 before anything is
    stored; an unknown method is refused the same way."""
    quote = quote_create(source_currency="RUB", source_amount=Decimal("15000.00"))
    for method in ("balance", "crypto"):
        with pytest.raises(FundingMethodRefused) as refused:
            transfer_create(partner=None, idempotency_key=f"web-{method}", fingerprint="f", quote_id=quote.id,
                            sender=SENDER, funding={"method": method},
                            recipient={"name": "Gulnara Usenova", "phone": "+996555123456",
                                       "wallet_address": new_recipient()})
        assert refused.value.status == 400
    assert not Transfer.objects.exists() and not JournalEntry.objects.exists()


def test_card_stays_the_default_funding_method(api, partner, pricing, stripe_server):
    """Without `funding`, a partner with a balance still gets a card transfer with its PaymentIntent; the balance is
    untouched."""
    topup(partner, "20000.00")
    quote = quote_for(api)
    response = api.post("/api/v1/transfers", body(quote["id"], method=None), format="json", HTTP_IDEMPOTENCY_KEY="c-1")
    assert response.status_code == 201
    assert response.json()["status"] == "awaiting_funding"
    assert response.json()["funding"]["method"] == "card"
    assert response.json()["funding"]["payment_intent_id"].startswith("pi_")
    assert owed(partner) == 2_000_000


def test_a_replayed_balance_transfer_is_debited_once(api, partner, pricing):
    """The same Idempotency-Key and body replay the first answer (201) with the same funded transfer and debit nothing
    more; the same key with the card method instead is a 422."""
    topup(partner, "50000.00")
    quote = quote_for(api)
    request = body(quote["id"])
    first = api.post("/api/v1/transfers", request, format="json", HTTP_IDEMPOTENCY_KEY="once")
    again = api.post("/api/v1/transfers", request, format="json", HTTP_IDEMPOTENCY_KEY="once")
    assert (first.status_code, again.status_code, again["Idempotent-Replayed"]) == (201, 201, "true")
    assert again.json()["id"] == first.json()["id"]
    assert owed(partner) == 5_000_000 - 1_500_000
    card = api.post("/api/v1/transfers", {**request, "funding": {"method": "card"}}, format="json",
                    HTTP_IDEMPOTENCY_KEY="once")
    assert card.status_code == 422
    assert JournalEntry.objects.filter(kind="funding").count() == 1


# Refunds -------------------------------------------------------------------------------------------------------

def test_a_rejected_balance_funded_transfer_is_refunded_to_the_balance_not_to_a_card(
        api, partner, pricing, stripe_server):
    """A balance-funded transfer rejected by screening is refunded to the partner's balance in full (fee included):
    the refund entry reverses the funding entry line by line, Stripe is never asked, and a second refund changes
    nothing."""
    topup(partner, "15000.00")
    quote = quote_for(api)
    created = api.post("/api/v1/transfers", body(quote["id"]), format="json", HTTP_IDEMPOTENCY_KEY="ref-1").json()
    assert owed(partner) == 0
    pipeline.transfer_reject(transfer_id=created["id"], reason="sanctions match")
    refunded = pipeline_refunds.transfer_refund(transfer_id=created["id"])
    assert refunded.status == S.REFUNDED and refunded.refund_id.startswith("balance:")
    assert owed(partner) == 1_500_000
    assert stripe_requests("/v1/refunds") == []

    def lines(kind):
        return sorted((p.account_id, p.amount_minor) for p in Posting.objects.filter(
            entry__transfer_id=created["id"], entry__kind=kind))

    assert lines("refund") == sorted((account, -amount) for account, amount in lines("funding"))
    assert account_balance("recipient_payable", "KGS") == 0 and account_balance("fee_revenue", "RUB") == 0
    pipeline_refunds.transfer_refund(transfer_id=created["id"])
    assert owed(partner) == 1_500_000 and JournalEntry.objects.filter(kind="refund").count() == 1
    assert ledger_sums() == {"RUB": 0, "KGS": 0}


def test_a_cancelled_balance_funded_transfer_goes_back_to_the_balance_through_the_refund_rail(
        api, partner, pricing, stripe_server):
    """The partner cancels a funded, balance-paid transfer before settlement: it passes through `refunding` like a
    card refund, the balance rail books the reversal once (no Stripe call), and the balance is whole again."""
    topup(partner, "15000.00")
    quote = quote_for(api)
    created = api.post("/api/v1/transfers", body(quote["id"]), format="json", HTTP_IDEMPOTENCY_KEY="cx-1").json()
    assert owed(partner) == 0
    response = api.post(f"/api/v1/transfers/{created['id']}/cancel", format="json")
    assert response.status_code in (200, 202), response.content
    pipeline_refunds.transfer_refund(transfer_id=created["id"])
    pipeline_refunds.transfer_refund(transfer_id=created["id"])
    transfer = Transfer.objects.get(pk=created["id"])
    assert transfer.status == S.REFUNDED and transfer.refund_id == f"balance:{transfer.id}"
    assert owed(partner) == 1_500_000
    assert JournalEntry.objects.filter(transfer=transfer, kind="refund").count() == 1
    assert stripe_requests("/v1/refunds") == []
    assert ledger_sums() == {"RUB": 0, "KGS": 0}


# Balance and statement through the API -------------------------------------------------------------------------

def test_the_api_lists_the_partners_own_balances_as_decimal_strings(api, partner, pricing):
    """`GET /api/v1/balances` lists the partner's balances per currency as decimal strings; another partner's do not
    appear."""
    topup(partner, "1500.50")
    topup(partner, "20.00", currency="USD")
    other, _ = partner_create(name="other")
    topup(other, "999.00")
    response = api.get("/api/v1/balances")
    assert response.status_code == 200
    assert response.json() == {"balances": [{"currency": "RUB", "balance": "1500.50"},
                                            {"currency": "USD", "balance": "20.00"}]}


def test_the_statement_lists_every_movement_with_a_running_balance_across_pages(api, partner, pricing):
    """The statement lists top-ups, withdrawals, fundings and refunds, newest first, each with its entry, kind,
    signed amount, reference or transfer and the balance after it; the running balance carries across cursor pages
    and ends at the balance. Another partner's movements and other currencies do not appear; an unknown currency is
    a 404."""
    for n in range(50):
        topup(partner, "100.00", reference=f"T-{n}")
    balances.balance_withdraw(partner=partner, currency="RUB", amount=Decimal("250.00"), reference="W-1")
    quote = quote_for(api, amount="1000.00")
    transfer = api.post("/api/v1/transfers", body(quote["id"]), format="json", HTTP_IDEMPOTENCY_KEY="st-1").json()
    pipeline.transfer_reject(transfer_id=transfer["id"], reason="test")
    pipeline_refunds.transfer_refund(transfer_id=transfer["id"])
    other, _ = partner_create(name="other")
    topup(other, "5.00", reference="T-0")
    topup(partner, "7.00", currency="USD", reference="U-1")

    first = api.get("/api/v1/balances/RUB/statement")
    assert first.status_code == 200
    page = first.json()
    assert len(page["results"]) == 50 and page["next"]
    second = api.get(page["next"]).json()
    rows = page["results"] + second["results"]
    assert len(rows) == 53 and second["next"] is None
    assert [r["kind"] for r in rows[:3]] == ["refund", "funding", "withdrawal"]
    assert {r["kind"] for r in rows[3:]} == {"topup"}
    assert rows[0]["transfer_id"] == rows[1]["transfer_id"] == transfer["id"]
    assert (rows[1]["amount"], rows[0]["amount"]) == ("-1000.00", "1000.00")
    assert (rows[2]["amount"], rows[2]["reference"], rows[-1]["reference"]) == ("-250.00", "W-1", "T-0")
    assert all(r["currency"] == "RUB" for r in rows)
    running = Decimal(0)
    for row in reversed(rows):
        running += Decimal(row["amount"])
        assert Decimal(row["balance_after"]) == running
    assert rows[0]["balance_after"] == "4750.00" == api.get("/api/v1/balances").json()["balances"][0]["balance"]
    assert JournalEntry.objects.filter(pk=rows[0]["entry_id"], kind="refund").exists()
    assert api.get("/api/v1/balances/XYZ/statement").status_code == 404
    assert api.get("/api/v1/balances/KGS/statement").status_code == 404


def test_balances_need_an_api_key_and_are_in_the_openapi_schema(client, pricing):
    """Balances and statements answer 401 without an API key; the OpenAPI schema documents both paths and the
    transfer's funding method."""
    assert client.get("/api/v1/balances").status_code == 401
    assert client.get("/api/v1/balances/RUB/statement").status_code == 401
    schema = client.get("/api/v1/schema/?format=json").json()
    assert "/api/v1/balances" in schema["paths"]
    assert "/api/v1/balances/{currency}/statement" in schema["paths"]
    components = schema["components"]["schemas"]
    method = components["FundingInputRequest"]["properties"]["method"]  # request components end in Request
    enum = components[method["allOf"][0]["$ref"].rsplit("/", 1)[-1]]["enum"] if "allOf" in method else method["enum"]
    assert set(enum) == {"card", "balance"}
    assert "funding" in components["TransferInputRequest"]["properties"]


# Admin ---------------------------------------------------------------------------------------------------------

def _admin(role="treasury"):
    return staff_login(Client(), staff_user(role))


def _record(client, partner, kind, **fields):
    data = {"currency": "RUB", "amount": "1000.00", "reference": "BANK-1", "reason": "statement line 4", **fields}
    return client.post(f"/admin/payments/partner/{partner.pk}/balance/{kind}/", data, follow=True)


def test_treasury_records_a_top_up_once_with_its_reason_in_the_audit_trail(partner):
    """A treasury user records a top-up from the Partner page: one entry, an audit entry with the reason, a message
    naming the entry; submitting the same form again posts nothing and the refusal is audited too. The Partner page
    shows the balance and the statement."""
    client = _admin()
    page = client.get(f"/admin/payments/partner/{partner.pk}/change/")
    assert "Record a top-up" in page.content.decode() and "Record a withdrawal" in page.content.decode()
    response = _record(client, partner, "topup")
    assert response.status_code == 200
    assert "top-up of 1,000.00 RUB recorded" in response.content.decode()
    assert owed(partner) == 100_000
    again = _record(client, partner, "topup")
    assert "BANK-1 is already recorded" in again.content.decode()
    assert owed(partner) == 100_000 and JournalEntry.objects.filter(kind="topup").count() == 1
    trail = list(AuditEntry.objects.filter(action="payments.topup_partner_balance").order_by("at"))
    assert [(e.outcome, e.reason, e.target_id) for e in trail] == [
        ("done", "statement line 4", str(partner.pk)), ("refused", "statement line 4", str(partner.pk))]
    shown = client.get(f"/admin/payments/partner/{partner.pk}/change/").content.decode()
    assert "1000.00 RUB" in shown and "topup" in shown and "BANK-1" in shown


def test_a_withdrawal_over_the_balance_is_refused_in_admin_and_posts_nothing(partner):
    """A withdrawal larger than the balance is shown as an error on the form, nothing is posted, and the refusal is
    in the audit trail; a covered withdrawal goes through."""
    topup(partner, "500.00")
    client = _admin()
    refused = _record(client, partner, "withdraw", amount="500.01", reference="OUT-1")
    assert "does not cover a withdrawal of 500.01 RUB" in refused.content.decode()
    assert owed(partner) == 50_000 and not JournalEntry.objects.filter(kind="withdrawal").exists()
    assert AuditEntry.objects.get(action="payments.withdraw_partner_balance").outcome == "refused"
    _record(client, partner, "withdraw", amount="500.00", reference="OUT-2")
    assert owed(partner) == 0
    assert "<li>0.00 RUB</li>" in client.get(f"/admin/payments/partner/{partner.pk}/change/").content.decode()


def test_a_reason_is_required_and_staff_without_the_permission_get_403(partner):
    """Without a reason the form is shown again with the error and nothing posts; an operator (no balance
    permission) is not offered the forms and gets 403 on them."""
    client = _admin()
    blank = _record(client, partner, "topup", reason="")
    assert "Give a reason" in blank.content.decode() and owed(partner) == 0
    operator = _admin("operator")
    assert "Record a top-up" not in operator.get(f"/admin/payments/partner/{partner.pk}/change/").content.decode()
    assert operator.get(f"/admin/payments/partner/{partner.pk}/balance/topup/").status_code == 403
    assert _record(operator, partner, "topup").status_code == 403
    assert owed(partner) == 0 and not AuditEntry.objects.exists()


# End to end ----------------------------------------------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_a_balance_funded_ruble_transfer_completes_on_chain(api, partner, pricing, chain, celery_processes):
    """A partner tops up rubles, sends a transfer funded from the balance through the API, and the real worker
    screens it and pays the quoted som on anvil: `completed`, the recipient holds exactly the quoted KGST, and the
    partner's balance fell by exactly the quoted rubles."""
    token = chain["token"]
    topup(partner, "20000.00", reference="E2E-1")
    quote = quote_for(api)
    recipient = new_recipient()
    created = api.post("/api/v1/transfers", body(quote["id"], wallet=recipient), format="json",
                       HTTP_IDEMPOTENCY_KEY="e2e-1")
    assert created.status_code == 201, created.content
    assert created.json()["status"] == "funded"
    wait_for(lambda: Transfer.objects.get(pk=created.json()["id"]).status == S.COMPLETED, timeout=90,
             what="the balance-funded transfer to complete")
    assert token_balance(token, recipient) == int(Decimal(quote["target_amount"]).scaleb(token.decimals))
    assert owed(partner) == 2_000_000 - 1_500_000
    assert set(JournalEntry.objects.filter(transfer_id=created.json()["id"]).values_list("kind", flat=True)) == {
        "funding", "payout"}
    assert Quote.objects.get(pk=quote["id"]).transfer.funding_method == "balance"
    assert ledger_sums() == {"RUB": 0, "KGS": 0}
