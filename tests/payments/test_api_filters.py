"""GET /api/v1/transfers filters (docs/api.md "Listing and filtering"): status (one or several), created range,
corridor / source currency, reference, each with cursor pagination; bad values are 400 problems; one partner never
sees another's transfers; the queries per page do not grow with the page size."""

import uuid
from datetime import UTC, timedelta
from decimal import Decimal
from urllib.parse import quote as urlquote

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from payments.models import Quote, Transfer
from payments.services.setup import partner_create
from tests.conftest import new_recipient
from tests.payments.test_api import assert_problem

pytestmark = pytest.mark.django_db
S = Transfer.Status


def make_transfer(partner, *, status=S.AWAITING_FUNDING, currency="RUB", reference="", created_at=None):
    """A transfer row as transfer_create leaves it (no Stripe or chain needed for reading lists)."""
    now = timezone.now()
    quote = Quote.objects.create(
        partner=partner, source_currency=currency, source_amount=Decimal("1000.00"), target_currency="KGS",
        target_amount=Decimal("1000.00"), official_rate=Decimal("1.07850000"), rate=Decimal("1.06"),
        fee=Decimal("50.00"), expires_at=now + timedelta(minutes=10))
    transfer = Transfer.objects.create(
        partner=partner, quote=quote, idempotency_key=f"k-{uuid.uuid4()}", request_fingerprint="0" * 64,
        status=status, sender_name="Aibek Usenov", sender_phone="+79161234567", sender_email="a@example.com",
        recipient_name="Gulnara Usenova", recipient_phone="+996555123456", recipient_wallet=new_recipient(),
        reference=reference)
    if created_at is not None:
        Transfer.objects.filter(pk=transfer.pk).update(created_at=created_at)
    return transfer


def list_ids(api, query=""):
    """Every transfer id the list gives for `query`, following `next` links (which must keep the filters)."""
    seen, url = [], f"/api/v1/transfers?{query}&limit=2" if query else "/api/v1/transfers?limit=2"
    while url:
        response = api.get(url)
        assert response.status_code == 200, response.content
        seen += [t["id"] for t in response.json()["results"]]
        url = response.json()["next"]
    assert len(seen) == len(set(seen))
    return seen


@pytest.fixture
def mixed(partner):
    """The caller's transfers across statuses, currencies, days and references, and a second partner's look-alikes."""
    now = timezone.now()
    other, _ = partner_create(name="globex")
    mine = {
        "old_rub": make_transfer(partner, status=S.COMPLETED, created_at=now - timedelta(days=3), reference="inv-1"),
        "rub_funded": make_transfer(partner, status=S.FUNDED, created_at=now - timedelta(days=2)),
        "usd_held": make_transfer(partner, status=S.HELD, currency="USD", created_at=now - timedelta(days=1),
                                  reference="inv-2"),
        "usd_funded": make_transfer(partner, status=S.FUNDED, currency="USD", created_at=now - timedelta(hours=1)),
        "rub_new": make_transfer(partner, created_at=now - timedelta(minutes=1), reference="inv-3"),
    }
    theirs = [make_transfer(other, status=s, currency=c, reference=r)
              for s, c, r in ((S.FUNDED, "RUB", "inv-1"), (S.HELD, "USD", "inv-2"), (S.COMPLETED, "RUB", ""))]
    return {"mine": mine, "theirs": theirs, "now": now}


def ids(*transfers):
    return sorted(str(t.pk) for t in transfers)


def test_unfiltered_list_is_the_callers_newest_first(api, mixed):
    m = mixed["mine"]
    assert list_ids(api) == [str(m[k].pk) for k in ("rub_new", "usd_funded", "usd_held", "rub_funded", "old_rub")]


def test_status_filter_one_or_several(api, mixed):
    """`status=funded` gives the funded ones; `status=funded,held` (spaces tolerated) the union; never another
    partner's, though it has transfers in both."""
    m = mixed["mine"]
    assert sorted(list_ids(api, "status=funded")) == ids(m["rub_funded"], m["usd_funded"])
    assert sorted(list_ids(api, "status=funded,%20held")) == ids(m["rub_funded"], m["usd_funded"], m["usd_held"])
    assert list_ids(api, "status=refunded") == []


def test_created_range_is_at_or_after_and_strictly_before(api, mixed):
    """`created_after` includes its instant, `created_before` excludes it, so back-to-back windows neither overlap
    nor miss; naive times are UTC and a date alone is its midnight UTC; an unencoded `+` offset still reads."""
    m, now = mixed["mine"], mixed["now"]
    usd_held_at = Transfer.objects.get(pk=m["usd_held"].pk).created_at
    at = usd_held_at.isoformat()
    assert sorted(list_ids(api, f"created_after={urlquote(at)}")) == ids(m["usd_held"], m["usd_funded"], m["rub_new"])
    assert sorted(list_ids(api, f"created_before={urlquote(at)}")) == ids(m["old_rub"], m["rub_funded"])
    window = f"created_after={urlquote((now - timedelta(days=2, hours=1)).isoformat())}&created_before={urlquote(at)}"
    assert list_ids(api, window) == [str(m["rub_funded"].pk)]
    # The same instant with its offset's `+` left unencoded (a space once decoded), and in UTC with a Z.
    plus = usd_held_at.astimezone(timezone.get_fixed_timezone(300)).isoformat()
    assert "+05:00" in plus
    assert sorted(list_ids(api, f"created_after={plus}")) == ids(m["usd_held"], m["usd_funded"], m["rub_new"])
    zulu = usd_held_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert len(list_ids(api, f"created_after={zulu}")) == 3
    tomorrow = (now + timedelta(days=1)).date().isoformat()
    assert len(list_ids(api, f"created_before={tomorrow}")) == 5


def test_corridor_and_source_currency_filters(api, mixed):
    m = mixed["mine"]
    usd = ids(m["usd_held"], m["usd_funded"])
    assert sorted(list_ids(api, "corridor=USD-KGS")) == usd
    assert sorted(list_ids(api, "corridor=usd-kgs")) == usd
    assert sorted(list_ids(api, "source_currency=USD")) == usd
    assert sorted(list_ids(api, "source_currency=RUB")) == ids(m["old_rub"], m["rub_funded"], m["rub_new"])
    assert sorted(list_ids(api, "corridor=USD-KGS&source_currency=USD")) == usd


def test_reference_filter_is_exact_and_per_partner(api, mixed):
    """`reference=inv-2` finds the caller's one transfer, not the other partner's with the same reference."""
    m = mixed["mine"]
    assert list_ids(api, "reference=inv-2") == [str(m["usd_held"].pk)]
    assert list_ids(api, "reference=inv") == []
    assert list_ids(api, "reference=INV-2") == []


def test_filters_combine_with_and(api, mixed):
    m, now = mixed["mine"], mixed["now"]
    after = urlquote((now - timedelta(days=2, hours=12)).isoformat())
    assert list_ids(api, f"status=funded,held&corridor=USD-KGS&created_after={after}") == \
        [str(m["usd_funded"].pk), str(m["usd_held"].pk)]
    assert list_ids(api, "status=held&reference=inv-2&source_currency=USD") == [str(m["usd_held"].pk)]
    assert list_ids(api, "status=funded&reference=inv-2") == []


def test_a_filtered_list_pages_through_every_match_with_its_cursor(api, partner):
    """Seven funded among fourteen, two per page: four pages, each `next` keeps the filter, every match once."""
    funded = [make_transfer(partner, status=S.FUNDED) for _ in range(7)]
    for _ in range(7):
        make_transfer(partner, status=S.HELD)
    first = api.get("/api/v1/transfers?status=funded&limit=2").json()
    assert "status=funded" in first["next"]
    assert sorted(list_ids(api, "status=funded")) == ids(*funded)


@pytest.mark.parametrize(("query", "field"), [
    ("status=pending", "status"),
    ("status=funded,bogus", "status"),
    ("status=", "status"),
    ("status=,", "status"),
    ("created_after=yesterday", "created_after"),
    ("created_after=2026-13-01", "created_after"),
    ("created_before=2026-11-29T25:00:00Z", "created_before"),
    ("created_after=2026-11-29&created_before=2026-11-28", "created_before"),
    ("created_after=2026-11-29&created_before=2026-11-29", "created_before"),
    ("corridor=EUR-KGS", "corridor"),
    ("corridor=RUB", "corridor"),
    ("corridor=RUB-EUR", "corridor"),
    ("source_currency=EUR", "source_currency"),
    ("corridor=RUB-KGS&source_currency=USD", "source_currency"),
    ("reference=", "reference"),
    ("reference=" + "x" * 65, "reference"),
    ("limit=0", "limit"),
    ("limit=101", "limit"),
    ("limit=ten", "limit"),
    ("limit=%C2%B2", "limit"),  # "²" is a digit to str.isdigit()
    ("limit=" + "9" * 5000, "limit"),
    ("reference=a%00b", "reference"),  # PostgreSQL text cannot hold a NUL: a 500 before
    ("status=bogus&status=funded", "status"),  # the last value alone would have been used
    ("created_after=0001-01-01T00:00:00%2B05:00", "created_after"),  # no UTC moment
])
def test_a_bad_filter_is_a_400_problem_naming_it_and_reads_nothing(api, mixed, query, field):
    """Never an ignored filter (every transfer back) or a 500: a 400 validation problem naming the parameter, before
    any transfer is read; nothing is changed."""
    before = list(Transfer.objects.order_by("pk").values_list("pk", "status", "updated_at"))
    with CaptureQueriesContext(connection) as queries:
        response = api.get(f"/api/v1/transfers?{query}")
    assert_problem(response, 400, "validation-error", field)
    assert not [q for q in queries.captured_queries if "payments_transfer" in q["sql"]]
    assert list(Transfer.objects.order_by("pk").values_list("pk", "status", "updated_at")) == before


def test_another_partner_never_sees_the_callers_transfers_whatever_the_filter(mixed, other_api):
    """The second partner's list, filtered by the caller's reference, status or corridor, holds only its own."""
    theirs = {str(t.pk) for t in mixed["theirs"]}
    mine = {str(t.pk) for t in mixed["mine"].values()}
    for query in ("", "reference=inv-3", "reference=inv-1", "status=funded,held,completed,awaiting_funding",
                  "corridor=RUB-KGS", "source_currency=USD"):
        seen = set(list_ids(other_api, query))
        assert not seen & mine, query
        assert seen <= theirs, query


@pytest.fixture
def other_api(db):
    from rest_framework.test import APIClient

    _, key = partner_create(name="globex")  # the `mixed` fixture's second partner (get or create)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    return client


@pytest.mark.parametrize("query", ["", "status=funded,held&corridor=RUB-KGS", "reference=ref-3"])
def test_queries_per_list_request_do_not_grow_with_the_page_size(api, partner, query):
    """A page of 2 and a page of 20 (filtered or not) cost the same number of queries."""
    for i in range(24):
        make_transfer(partner, status=S.FUNDED if i % 2 else S.HELD, reference=f"ref-{i}")
    counts = []
    api.get("/api/v1/transfers?limit=1")  # the key's last use is written once a minute: not in the counts below
    for limit in (2, 20):
        with CaptureQueriesContext(connection) as queries:
            response = api.get(f"/api/v1/transfers?{query}&limit={limit}")
        assert response.status_code == 200, response.content
        assert len(response.json()["results"]) == (1 if "reference" in query else limit)
        counts.append(len(queries.captured_queries))
    assert counts[0] == counts[1], counts
