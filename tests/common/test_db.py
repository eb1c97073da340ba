"""common.db.insert_unless_taken: one INSERT … ON CONFLICT DO NOTHING that tells the caller whether it inserted."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from common.db import insert_unless_taken
from payments.models import SenderProfile
from payments.services.limits import sender_profile_get

pytestmark = pytest.mark.django_db


def test_a_new_row_is_inserted_in_one_statement_with_its_defaults_and_key():
    profile = SenderProfile(phone="+996555000001", email="a@example.com")
    with CaptureQueriesContext(connection) as queries:
        assert insert_unless_taken(profile) is True
    assert len(queries.captured_queries) == 1 and "ON CONFLICT DO NOTHING" in queries.captured_queries[0]["sql"]
    stored = SenderProfile.objects.get(pk=profile.pk)
    assert (stored.phone, stored.email, stored.id_number_hash, stored.created_at is not None) == (
        "+996555000001", "a@example.com", "", True)
    assert not profile._state.adding


def test_a_taken_row_is_reported_and_the_callers_transaction_goes_on():
    SenderProfile.objects.create(phone="+996555000002", email="b@example.com", id_number_hash="h" * 64)
    with transaction.atomic():
        twin = SenderProfile(phone="+996555000002", email="b@example.com")
        assert insert_unless_taken(twin) is False
        assert twin.pk is None
        # No error was raised inside the transaction: it is still usable.
        assert SenderProfile.objects.filter(phone="+996555000002").count() == 1


def test_sender_profile_get_returns_the_stored_profile_when_one_exists():
    kept = SenderProfile.objects.create(phone="+996555000003", email="c@example.com", id_number_hash="d" * 64)
    assert sender_profile_get(phone="+996555000003", email="c@example.com").id_number_hash == kept.id_number_hash
    made = sender_profile_get(phone="+996555000004", email="d@example.com")
    assert made.pk and SenderProfile.objects.filter(pk=made.pk).exists()
