"""What one card transfer creation costs in round trips (make bench-api --profile found each of these): the
idempotency key is looked up once before the insert (riding on the read of the quote's target currency) and once
under the quote's lock, never a third time; the stored PaymentIntent is not read back; the recipient check asks the
node once: its code and the simulated transfer in one JSON-RPC batch (it was four requests, then two). A balance-funded
create costs a fixed number of statements (it was 40, against 23 for a card): its funding writes only what the
transition changed, reads its ledger accounts in one query, posts without a savepoint, and its three outbox events
share one read of the partner's endpoints."""

from decimal import Decimal

import pytest
import requests
from django.db import connection
from django.test.utils import CaptureQueriesContext

from onchain.rpc import web3 as rpc_web3
from payments.models import Transfer, WebhookDelivery, WebhookEndpoint, WebhookEvent
from payments.services.balances import balance_get, balance_topup
from tests.payments.test_api import new_quote, transfer_body

pytestmark = pytest.mark.django_db


@pytest.fixture
def node_posts(monkeypatch):
    """The JSON-RPC methods of every HTTP request web3 sends (observed: each request still goes to the real node)."""
    sent, post = [], requests.Session.post

    def observe(self, url, *args, **kwargs):
        body = kwargs.get("data") or b""
        sent.append(body.decode() if isinstance(body, bytes) else str(body))
        return post(self, url, *args, **kwargs)

    monkeypatch.setattr(requests.Session, "post", observe)
    return sent


def create(api, key):
    response = api.post("/api/v1/transfers", transfer_body(new_quote(api)["id"]), format="json",
                        HTTP_IDEMPOTENCY_KEY=key)
    assert response.status_code == 201, response.content
    return response.json()


def test_a_card_create_looks_its_key_up_once_and_never_rereads_the_transfer(api, pricing, stripe_server):
    """The key's pre-read and the quote's target currency are one statement; under the quote's lock the key is not
    read again (the insert's unique constraint answers a twin: tests/payments/test_transfer_races.py)."""
    create(api, "warm")
    quote = new_quote(api)
    with CaptureQueriesContext(connection) as queries:
        response = api.post("/api/v1/transfers", transfer_body(quote["id"]), format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert response.status_code == 201, response.content
    assert response.json()["funding"]["payment_intent_id"] and response.json()["quote"]["id"] == quote["id"]
    sql = [q["sql"] for q in queries.captured_queries]
    lookups = [s for s in sql if s.startswith("SELECT") and '"idempotency_key" =' in s]
    assert len(lookups) == 1, lookups
    assert lookups[0].startswith('SELECT "payments_quote"."target_currency"') and "EXISTS" in lookups[0], lookups[0]
    assert [s for s in sql if s.startswith('SELECT "payments_quote"') and "FOR UPDATE" not in s] == [lookups[0]], sql
    stored = next(i for i, s in enumerate(sql) if s.startswith('UPDATE "payments_transfer" SET "payment_intent_id"'))
    assert not [s for s in sql[stored + 1:] if "payments_transfer" in s or "payments_quote" in s], sql[stored + 1:]
    assert Transfer.objects.get(pk=response.json()["id"]).payment_intent_id == response.json()["funding"]["payment_intent_id"]


def test_the_settlement_address_freeze_and_sanctions_checks_ride_on_the_quotes_first_read(api, pricing, stripe_server):
    """A create that none of them refuses reads no freeze, payout partner or listed address in a statement of its own
    (their refusals: test_payout_partners, security/test_card_fraud, test_screening_lists)."""
    create(api, "warm")
    with CaptureQueriesContext(connection) as queries:
        create(api, "k")
    own = [q["sql"] for q in queries.captured_queries
           if q["sql"].startswith("SELECT") and q["sql"].split(" FROM ", 1)[1].startswith(
               ('"payments_freeze"', '"payments_payoutpartner"', '"payments_sanctionsaddress"'))]
    assert own == []
    first = next(q["sql"] for q in queries.captured_queries if q["sql"].startswith('SELECT "payments_quote"'))
    assert all(table in first for table in ("payments_freeze", "payments_payoutpartner", "payments_sanctionsaddress"))


def test_a_recipient_check_asks_the_node_once_for_code_and_simulated_transfer(api, pricing, stripe_server, chain, node_posts):
    rpc_web3.cache_clear()  # a fresh provider: its first request learns the chain id
    try:
        create(api, "first")
        node_posts.clear()
        create(api, "second")
    finally:
        rpc_web3.cache_clear()
    assert len(node_posts) == 1, node_posts
    methods = sorted(m for m in ("eth_getCode", "eth_call", "eth_chainId") if f'"{m}"' in node_posts[0])
    assert methods == ["eth_call", "eth_getCode"], node_posts


def test_the_benchmarks_bare_endpoints_are_not_served_by_the_product(api, client):
    """`/bench/noop` and `/bench/bare` exist only under bench.bare.settings (make bench-api, make bench-quotes)."""
    for path in ("/bench/noop", "/bench/bare"):
        assert api.get(path).status_code == 404
        assert api.post(path, {"currency": "RUB", "amount": "1.00", "note": "x"}, format="json").status_code == 404


# The whole request as this test sees it, plus this test's own savepoints (the request runs inside the test's
# transaction), plus its hot-wallet check of the recipient, less the sender profile created by the first create. It was
# 42; 33 before the key's second read went (the insert's unique constraint answers a twin), 32 before the
# settlement-address, freeze and sanctions-list checks rode on the quote's first read, and 29 before the travel rule's
# USD rate rode on the quote's locked read.
BALANCE_CREATE_STATEMENTS = 28
# From the balance account's lock to the last event's insert: lock, sum, transition, funded event, entry, accounts,
# postings, entry posted, balance movement event (it was 20).
BALANCE_FUNDING_STATEMENTS = 9


def balance_create(api, key):
    quote = new_quote(api)
    with CaptureQueriesContext(connection) as queries:
        response = api.post("/api/v1/transfers", {**transfer_body(quote["id"]), "funding": {"method": "balance"}},
                            format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert response.status_code == 201, response.content
    assert response.json()["status"] == "funded"
    return response.json(), [q["sql"] for q in queries.captured_queries]


def test_a_balance_create_costs_a_fixed_number_of_statements(api, partner, pricing):
    """Still under the balance account's row lock and then its sum, still a guarded transition and a balanced entry
    posted in three steps; but the transition writes only its columns, the five accounts of the funding entry are one
    read, no savepoint (the transfer is new: no entry of it can exist yet), and the three events one endpoint read."""
    balance_topup(partner=partner, currency="RUB", amount=Decimal("100000.00"), reference="BANK-COST")
    balance_create(api, "warm")
    data, sql = balance_create(api, "k")
    listed = "\n".join(s[:160] for s in sql)
    assert len(sql) == BALANCE_CREATE_STATEMENTS, listed
    lock = next(i for i, s in enumerate(sql) if s.startswith('SELECT "payments_ledgeraccount"') and "FOR UPDATE" in s)
    events = [i for i, s in enumerate(sql) if s.startswith('INSERT INTO "payments_webhookevent"')]
    funding = sql[lock:events[-1] + 1]
    assert len(funding) == BALANCE_FUNDING_STATEMENTS, listed
    assert funding[1].startswith('SELECT SUM("payments_posting"."amount_minor")'), listed  # summed after the lock
    [transition] = [s for s in sql if s.startswith('UPDATE "payments_transfer"')]
    assert transition.split(" WHERE ")[0].count(" = ") == 3 and '"status" = \'funded\'' in transition, transition
    writes = [s.split('"')[1] for s in funding if s.startswith(("INSERT", "UPDATE"))]
    assert writes == ["payments_transfer", "payments_webhookevent", "payments_journalentry", "payments_posting",
                      "payments_journalentry", "payments_webhookevent"], listed
    assert funding[-2].startswith('UPDATE "payments_journalentry" SET "posted" = true'), listed
    assert len([s for s in sql if s.startswith('SELECT "payments_webhookendpoint"')]) == 1, listed
    assert len(events) == 3, listed  # each written when it happens: a rolled-back savepoint takes its events along
    assert balance_get(partner=partner, currency="RUB") == 10_000_000 - 2 * 1_500_000  # two quotes of 15,000.00 RUB
    assert Transfer.objects.get(pk=data["id"]).funded_at is not None


def test_a_balance_creates_events_go_to_each_endpoint_in_the_order_they_happened(api, partner, pricing):
    """The three events keep their order (ids), their payloads and one delivery each per subscribed
    endpoint (an endpoint for other types gets none)."""
    everything = WebhookEndpoint.objects.create(partner=partner, url="https://partner.example/hooks")
    funded_only = WebhookEndpoint.objects.create(partner=partner, url="https://partner.example/funded",
                                                 event_types=["transfer.funded"])
    balance_topup(partner=partner, currency="RUB", amount=Decimal("100000.00"), reference="BANK-ORDER")
    first = WebhookEvent.objects.order_by("-id").values_list("id", flat=True).first()
    data, _sql = balance_create(api, "ordered")
    events = list(WebhookEvent.objects.filter(id__gt=first).order_by("id"))
    assert [e.type for e in events] == ["transfer.created", "transfer.funded", "balance.movement"]
    assert [e.payload.get("status") for e in events[:2]] == ["awaiting_funding", "funded"]
    assert [e.payload.get("previous_status") for e in events[:2]] == [None, "awaiting_funding"]
    assert events[2].payload["transfer_id"] == data["id"] and events[2].payload["amount_minor"] == -1_500_000
    deliveries = sorted((d.event.type, d.endpoint_id) for d in
                        WebhookDelivery.objects.filter(event__in=events).select_related("event"))
    assert deliveries == sorted([(e.type, everything.pk) for e in events] + [("transfer.funded", funded_only.pk)])
