"""What one card transfer creation costs in round trips (make bench-api --profile found each of these): the
idempotency key is looked up once before the insert (riding on the read of the quote's target currency) and once
under the quote's lock, never a third time; the stored PaymentIntent is not read back; the recipient check asks the
node once: its code and the simulated transfer in one JSON-RPC batch (it was four requests, then two)."""

import pytest
import requests
from django.db import connection
from django.test.utils import CaptureQueriesContext

from onchain.rpc import web3 as rpc_web3
from payments.models import Transfer
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


def test_a_card_create_looks_its_key_up_twice_and_never_rereads_the_transfer(api, pricing, stripe_server):
    """Also: the key's pre-read and the quote's target currency are one statement."""
    create(api, "warm")
    quote = new_quote(api)
    with CaptureQueriesContext(connection) as queries:
        response = api.post("/api/v1/transfers", transfer_body(quote["id"]), format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert response.status_code == 201, response.content
    assert response.json()["funding"]["payment_intent_id"] and response.json()["quote"]["id"] == quote["id"]
    sql = [q["sql"] for q in queries.captured_queries]
    lookups = [s for s in sql if s.startswith("SELECT") and '"idempotency_key" =' in s]
    assert len(lookups) == 2, lookups
    assert lookups[0].startswith('SELECT "payments_quote"."target_currency"') and "EXISTS" in lookups[0], lookups[0]
    assert [s for s in sql if s.startswith('SELECT "payments_quote"') and "FOR UPDATE" not in s] == [lookups[0]], sql
    stored = next(i for i, s in enumerate(sql) if s.startswith('UPDATE "payments_transfer" SET "payment_intent_id"'))
    assert not [s for s in sql[stored + 1:] if "payments_transfer" in s or "payments_quote" in s], sql[stored + 1:]
    assert Transfer.objects.get(pk=response.json()["id"]).payment_intent_id == response.json()["funding"]["payment_intent_id"]


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
