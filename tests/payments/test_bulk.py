"""`POST /api/v1/transfers/bulk` (payments/api/bulk.py): up to 100 transfers per request, each with its own
idempotency key, answered per item; items independent; a retried bulk request never duplicates; a request over the
limit, empty or with a repeated key is refused whole with nothing stored."""

from datetime import timedelta

import pytest
from django.utils import timezone

from payments.api.bulk import TransferBulkApi
from payments.models import IdempotencyRecord, Quote, Transfer
from tests.payments.test_api import assert_problem, new_quote, transfer_body

pytestmark = pytest.mark.django_db

URL = "/api/v1/transfers/bulk"


def item(key, quote_id, **kwargs):
    return {"idempotency_key": key, **transfer_body(quote_id, **kwargs)}


def post_bulk(api, items, **headers):
    return api.post(URL, {"items": items}, format="json", **headers)


def test_items_are_answered_one_by_one_and_a_refused_item_does_not_undo_the_others(api, pricing, stripe_server):
    """Four items: two valid (201 with the transfer), one malformed (400 problem naming the field inside the item),
    one with an expired quote (422): two transfers made, in item order, each with its own key."""
    expired = new_quote(api)
    Quote.objects.filter(pk=expired["id"]).update(expires_at=timezone.now() - timedelta(seconds=1))
    first, last = new_quote(api), new_quote(api)
    bad = item("b-2", first["id"])
    del bad["sender"]
    response = post_bulk(api, [item("b-1", first["id"]), bad, item("b-3", expired["id"]), item("b-4", last["id"])])
    assert response.status_code == 200, response.content
    results = response.json()["results"]
    assert [(r["index"], r["idempotency_key"], r["status"]) for r in results] == [
        (0, "b-1", 201), (1, "b-2", 400), (2, "b-3", 422), (3, "b-4", 201)]
    assert results[1]["problem"]["type"].endswith("/validation-error")
    assert "sender" in {e["field"] for e in results[1]["problem"]["errors"]}
    assert results[2]["problem"]["type"].endswith("/quote-expired") and results[2]["problem"]["status"] == 422
    made = {t.idempotency_key: str(t.pk) for t in Transfer.objects.all()}
    assert made == {"b-1": results[0]["transfer"]["id"], "b-4": results[3]["transfer"]["id"]}
    assert results[0]["transfer"]["funding"]["payment_intent_id"].startswith("pi_")


def test_a_retried_bulk_request_replays_the_items_made_and_never_duplicates(api, pricing, stripe_server):
    """The same bulk body again: the items already made answer 200 with the same transfers, nothing new is created;
    an item key first used by a single transfer replays it, and with another body is a 422 for that item only."""
    quotes = [new_quote(api) for _ in range(3)]
    single = transfer_body(quotes[2]["id"])
    assert api.post("/api/v1/transfers", single, format="json", HTTP_IDEMPOTENCY_KEY="s-1").status_code == 201
    items = [item("r-1", quotes[0]["id"]), item("r-2", quotes[1]["id"]), {"idempotency_key": "s-1", **single}]
    first = post_bulk(api, items).json()["results"]
    again = post_bulk(api, items).json()["results"]
    assert [r["status"] for r in first] == [201, 201, 200]
    assert [r["status"] for r in again] == [200, 200, 200]
    assert [r["transfer"]["id"] for r in again] == [r["transfer"]["id"] for r in first]
    assert Transfer.objects.count() == 3
    changed = {**items[0], "sender": {**items[0]["sender"], "name": "Someone Else"}}
    results = post_bulk(api, [changed, items[1]]).json()["results"]
    assert [r["status"] for r in results] == [422, 200]
    assert results[0]["problem"]["type"].endswith("/idempotency-key-reused")
    assert Transfer.objects.count() == 3


def test_a_request_level_key_replays_the_whole_bulk_answer(api, pricing, stripe_server):
    """An Idempotency-Key header on the bulk request itself: the same body replays the first answer byte for byte."""
    items = [item("h-1", new_quote(api)["id"])]
    first = post_bulk(api, items, HTTP_IDEMPOTENCY_KEY="bulk-1")
    again = post_bulk(api, items, HTTP_IDEMPOTENCY_KEY="bulk-1")
    assert again.content == first.content and again["Idempotent-Replayed"] == "true"
    assert [r["status"] for r in again.json()["results"]] == [201]


@pytest.mark.parametrize(("payload", "status", "field"), [
    ({"items": []}, 400, "items"),
    ({}, 400, "items"),
    ({"items": "x"}, 400, "items"),
    ([], 400, "items"),
    ({"items": [1]}, 400, "items.0"),
    ({"items": [{"quote_id": "q"}]}, 400, "items.0.idempotency_key"),
    ({"items": [{"idempotency_key": ""}]}, 400, "items.0.idempotency_key"),
    ({"items": [{"idempotency_key": "x" * 256}]}, 400, "items.0.idempotency_key"),
], ids=["empty", "no-items", "not-a-list", "not-an-object", "item-not-object", "no-key", "empty-key", "long-key"])
def test_a_malformed_bulk_request_is_refused_whole(api, pricing, payload, status, field):
    """No items, items that are not objects, an item without a usable key: one 400 problem naming where, nothing
    stored (no transfer, no idempotency record)."""
    assert_problem(api.post(URL, payload, format="json"), status, "bulk-invalid", field)
    assert not Transfer.objects.exists() and not IdempotencyRecord.objects.exists()


def test_a_repeated_item_key_refuses_the_whole_request(api, pricing, stripe_server):
    """Two items with one key: 400 naming the second, and neither item is created."""
    quote = new_quote(api)
    body = assert_problem(post_bulk(api, [item("dup", quote["id"]), item("dup", new_quote(api)["id"])]), 400,
                          "bulk-invalid", "items.1.idempotency_key")
    assert "Items 0 and 1" in body["detail"]
    assert not Transfer.objects.exists()


def test_over_100_items_is_413_and_nothing_is_created(api, pricing, stripe_server):
    """101 valid-looking items: 413 `bulk-too-large`, no transfer made; 100 is accepted (the limit, not less)."""
    quote = new_quote(api)
    too_many = [item(f"k-{n}", quote["id"]) for n in range(101)]
    body = assert_problem(post_bulk(api, too_many), 413, "bulk-too-large", "items")
    assert "at most 100" in body["detail"]
    assert not Transfer.objects.exists() and not IdempotencyRecord.objects.exists()
    results = post_bulk(api, too_many[:100]).json()["results"]
    assert len(results) == 100 and [r["status"] for r in results].count(201) == 1
    assert {r["problem"]["type"].rsplit("/", 1)[-1] for r in results[1:]} == {"quote-already-used"}
    assert Transfer.objects.count() == 1


def test_the_bulk_view_declares_the_transfers_create_scope():
    """The scope another part of issue 10 enforces: creating transfers in bulk needs `transfers:create`."""
    assert TransferBulkApi.required_scopes == ["transfers:create"]
