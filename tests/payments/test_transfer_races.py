"""A twin that commits while a create waits for its quote's row lock (payments/services/transfers.py): the create's
locked read cannot see it (its snapshot is older than the commit), the unique constraints of its insert can, and the
answer is what a twin found earlier gets: the same key and body replay it, another key is refused. Nothing doubled."""

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, transaction
from rest_framework.test import APIClient

from payments.models import LimitReservation, Quote, Transfer
from payments.services.idempotency import request_fingerprint
from tests.conftest import QUOTE_BODY, wait_for
from tests.payments.test_api import new_quote, transfer_body
from tests.payments.test_travel_rule import TRAVEL


def _blocked_on_a_lock():
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")  # inside a transaction the view is otherwise read once
        # The statement's start: its text is cut at track_activity_query_size, before its FOR UPDATE.
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE %s",
                       ['SELECT "payments_quote".%'])
        return cursor.fetchone()[0] > 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("twin_key", ["same", "other"])
def test_a_twin_committed_during_the_quote_lock_wait_is_replayed_or_refused(partner, pricing, stripe_server, twin_key):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {partner.raw_key}")
    quote = new_quote(api)
    body = transfer_body(quote["id"])

    def create():
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {partner.raw_key}")
        try:
            return client.post("/api/v1/transfers", body, format="json", HTTP_IDEMPOTENCY_KEY="raced")
        finally:
            connection.close()

    with ThreadPoolExecutor(1) as pool:
        with transaction.atomic():
            locked = Quote.objects.select_for_update().get(pk=quote["id"])
            pending = pool.submit(create)
            wait_for(_blocked_on_a_lock, what="the create to wait for the quote's row lock")
            # What a concurrent request on this quote would have committed meanwhile (its own or another key).
            twin = Transfer.objects.create(
                partner=partner, quote=locked, idempotency_key="raced" if twin_key == "same" else "the-other-one",
                request_fingerprint=request_fingerprint(json.loads(json.dumps(body))),
                sender_name="Aibek Usenov", sender_phone=body["sender"]["phone"], sender_email=body["sender"]["email"],
                recipient_name="Gulnara Usenova", recipient_phone="+996555123456",
                recipient_wallet=body["recipient"]["wallet_address"])
        response = pending.result(timeout=60)
    if twin_key == "same":
        assert response.status_code == 200, response.content  # the transfer made under this key, as a replay
        assert response.json()["id"] == str(twin.pk)
    else:
        assert response.status_code == 409, response.content
        assert response.json()["type"].endswith("/quote-already-used")
    assert list(Transfer.objects.values_list("pk", flat=True)) == [twin.pk]
    assert not LimitReservation.objects.exists()  # the refused or replayed create reserved nothing


@pytest.mark.django_db
def test_a_quote_already_used_is_refused_before_the_travel_rule_asks_for_data(api, pricing, stripe_server):
    """A quote backing a transfer is named as such by the quote's own locked read (one statement), ahead of what the
    new body lacks: a second transfer on a quote over the travel-rule threshold hears `quote-already-used`."""
    quote = api.post("/api/v1/quotes", {**QUOTE_BODY, "source_amount": "150000.00"}, format="json").json()
    first = api.post("/api/v1/transfers", {**transfer_body(quote["id"]), "travel_rule": TRAVEL}, format="json",
                     HTTP_IDEMPOTENCY_KEY="first")
    assert first.status_code == 201, first.content
    second = api.post("/api/v1/transfers", transfer_body(quote["id"]), format="json", HTTP_IDEMPOTENCY_KEY="second")
    assert second.status_code == 409, second.content
    assert second.json()["type"].endswith("/quote-already-used")
    assert Transfer.objects.count() == 1
