"""The partner's own `reference` on a transfer (docs/api.md "References"): optional, up to 64 printable characters,
unique per partner (a partial unique constraint on non-empty values), accepted on create, returned, filterable;
reused → 409 `reference-already-used` naming the field with nothing stored, while a replay of the request that
used it still replays."""

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import IntegrityError, connection, transaction
from rest_framework.test import APIClient

from payments.models import Quote, Transfer
from tests.conftest import QUOTE_BODY
from tests.payments.test_api import assert_problem, new_quote, stripe_intents, transfer_body

pytestmark = pytest.mark.django_db


def create(client, reference=None, *, key, quote_id=None):
    body = transfer_body(quote_id or new_quote(client)["id"])
    if reference is not None:
        body["reference"] = reference
    return client.post("/api/v1/transfers", body, format="json", HTTP_IDEMPOTENCY_KEY=key), body


def test_a_reference_is_stored_returned_and_found(api, pricing, stripe_server):
    response, _ = create(api, "order-2026/11-0042", key="k1")
    assert response.status_code == 201, response.content
    transfer = response.json()
    assert transfer["reference"] == "order-2026/11-0042"
    assert Transfer.objects.get(pk=transfer["id"]).reference == "order-2026/11-0042"
    assert api.get(f"/api/v1/transfers/{transfer['id']}").json()["reference"] == "order-2026/11-0042"
    found = api.get("/api/v1/transfers?reference=order-2026/11-0042").json()["results"]
    assert [t["id"] for t in found] == [transfer["id"]]


def test_without_a_reference_it_is_empty_and_never_conflicts(api, pricing, stripe_server):
    """No reference (or a blank one) is stored empty: any number of such transfers, none refused."""
    first, _ = create(api, key="k1")
    second, _ = create(api, "", key="k2")
    third, _ = create(api, "   ", key="k3")
    assert [r.status_code for r in (first, second, third)] == [201, 201, 201]
    assert {r.json()["reference"] for r in (first, second, third)} == {""}


def test_a_reused_reference_is_a_409_naming_the_field_and_stores_nothing(api, pricing, stripe_server):
    """Another Idempotency-Key with a reference the partner used: 409 problem `reference-already-used` on the
    `reference` field; no transfer, the quote stays unused, no PaymentIntent is made."""
    assert create(api, "inv-7", key="k1")[0].status_code == 201
    intents = len(stripe_intents())
    quote = new_quote(api)
    response, _ = create(api, "inv-7", key="k2", quote_id=quote["id"])
    assert_problem(response, 409, "reference-already-used", "reference")
    assert Transfer.objects.count() == 1
    assert not Transfer.objects.filter(quote_id=quote["id"]).exists()
    assert len(stripe_intents()) == intents
    # The quote is still good for a transfer with a fresh reference.
    assert create(api, "inv-8", key="k3", quote_id=quote["id"])[0].status_code == 201


def test_a_replay_of_the_request_that_used_the_reference_still_replays(api, pricing, stripe_server):
    """Same key, same body (reference included): the first answer replayed (201, byte for byte), not a 409; same key
    with another reference is the idempotency mismatch (422), not a reference conflict."""
    first, body = create(api, "inv-9", key="k1")
    again = api.post("/api/v1/transfers", body, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    assert again.status_code == 201 and again.content == first.content, again.content
    assert again.json()["reference"] == "inv-9"
    other = api.post("/api/v1/transfers", {**body, "reference": "inv-10"}, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    assert_problem(other, 422, "idempotency-key-reused")
    assert Transfer.objects.count() == 1


def test_references_are_per_partner(api, pricing, stripe_server):
    from payments.services.setup import partner_create

    _, key = partner_create(name="globex")
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    assert create(api, "shared-1", key="k1")[0].status_code == 201
    assert create(other, "shared-1", key="k1")[0].status_code == 201
    assert Transfer.objects.filter(reference="shared-1").count() == 2


@pytest.mark.parametrize("reference", ["x" * 65, "line\nbreak", "tab\there", "bell\x07", "nul\x00x", "del\x7f"],
                         ids=["65-chars", "newline", "tab", "bell", "nul", "del"])
def test_a_bad_reference_is_a_400_and_stores_nothing(api, pricing, stripe_server, reference):
    response, _ = create(api, reference, key="k1")
    assert_problem(response, 400, "validation-error", "reference")
    assert Transfer.objects.count() == 0


def test_64_printable_characters_including_unicode_are_accepted(api, pricing, stripe_server):
    reference = ("Заказ №42 ü-" * 6)[:64]
    response, _ = create(api, reference, key="k1")
    assert response.status_code == 201, response.content
    assert response.json()["reference"] == reference


def test_the_database_refuses_a_duplicate_non_empty_reference_of_one_partner(partner, pricing):
    """transfer_reference_per_partner: the guarantee holds without the service's check; empty ones may repeat."""
    from tests.payments.test_api_filters import make_transfer

    make_transfer(partner, reference="dup")
    make_transfer(partner)
    make_transfer(partner)
    with pytest.raises(IntegrityError), transaction.atomic():
        make_transfer(partner, reference="dup")
    assert Transfer.objects.filter(partner=partner).count() == 3


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_with_one_reference_and_different_keys_create_one_transfer(partner, pricing,
                                                                                      stripe_server):
    """Ten simultaneous requests, each its own key and quote, one reference: exactly one 201, nine 409
    `reference-already-used`; one transfer, nine quotes unused."""
    def client():
        c = APIClient()
        c.credentials(HTTP_AUTHORIZATION=f"Api-Key {partner.raw_key}")
        return c

    quotes = [client().post("/api/v1/quotes", QUOTE_BODY, format="json").json()["id"] for _ in range(10)]

    def send(i):
        try:
            response = client().post("/api/v1/transfers", {**transfer_body(quotes[i]), "reference": "race"},
                                     format="json", HTTP_IDEMPOTENCY_KEY=f"key-{i}")
            return response.status_code, response.json()
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(send, range(10)))
    assert sorted(status for status, _ in results) == [201] + [409] * 9, results
    assert {body["type"].rsplit("/", 1)[-1] for status, body in results if status == 409} == {"reference-already-used"}
    assert Transfer.objects.filter(reference="race").count() == 1 == Transfer.objects.count()
    assert Quote.objects.filter(transfer__isnull=True).count() == 9
