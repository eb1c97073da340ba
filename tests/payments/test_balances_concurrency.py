"""A partner can never spend more than its balance, even under concurrent requests (issue 8): 200 balance-funded
transfers race through gunicorn with several worker processes against a balance that covers exactly 100 of them.
The balance account's row lock (services/balances.py) is what makes exactly 100 succeed."""

import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import httpx
import pytest

from payments.models import JournalEntry, LedgerAccount, Posting, Quote, Transfer
from payments.services import balances
from payments.services.quotes import quote_create
from tests.conftest import new_recipient
from tests.gunicorn import gunicorn_server

pytestmark = pytest.mark.django_db(transaction=True)

REQUESTS, COVERED, WORKERS, CLIENT_THREADS = 200, 100, 4, 32
AMOUNT = Decimal("1000.00")


@pytest.fixture
def gunicorn_url(transactional_db):
    """gunicorn (sync workers, as the Dockerfile runs it) against the test database (tests/gunicorn.py)."""
    with gunicorn_server("balances", workers=WORKERS) as (url, _proc):
        yield url


def test_200_concurrent_balance_fundings_against_a_balance_for_100_fund_exactly_100(
        pricing, partner, gunicorn_url, settings):
    """200 concurrent `POST /api/v1/transfers` with balance funding, each with its own quote of 1,000 RUB, against a
    balance of exactly 100,000 RUB, through gunicorn with 4 processes: exactly 100 get 201 `funded` and 100 the
    insufficient-balance problem; the balance ends at exactly zero and was never negative after any posting; each
    refused request left no transfer and its quote unused; every currency's postings sum to zero."""
    settings.QUOTE_TTL_SECONDS = 3600
    quotes = [quote_create(partner=partner, source_currency="RUB", source_amount=AMOUNT) for _ in range(REQUESTS)]
    balances.balance_topup(partner=partner, currency="RUB", amount=AMOUNT * COVERED, reference="PREFUND-1")
    headers = {"Authorization": f"Api-Key {partner.raw_key}"}
    bodies = [{"quote_id": str(q.id), "funding": {"method": "balance"},
               "sender": {"name": "Aibek Usenov", "phone": "+79161234567", "email": "aibek@example.com"},
               "recipient": {"name": "Gulnara Usenova", "phone": "+996555123456", "wallet_address": new_recipient()}}
              for q in quotes]

    with httpx.Client(base_url=gunicorn_url, timeout=120, limits=httpx.Limits(max_connections=CLIENT_THREADS)) as http:
        def send(i):
            return http.post("/api/v1/transfers", json=bodies[i], headers={**headers, "Idempotency-Key": f"race-{i}"})

        started = time.monotonic()
        with ThreadPoolExecutor(CLIENT_THREADS) as pool:
            responses = list(pool.map(send, range(REQUESTS)))
        elapsed = time.monotonic() - started
    print(f"balances.concurrent_requests={REQUESTS} workers={WORKERS} seconds={elapsed:.2f} "
          f"requests_per_second={REQUESTS / elapsed:.1f}")

    assert Counter(r.status_code for r in responses) == {201: COVERED, 409: REQUESTS - COVERED}, \
        [r.text[:300] for r in responses if r.status_code not in (201, 409)][:3]
    refused = [r.json() for r in responses if r.status_code == 409]
    assert {p["type"].rsplit("/", 1)[-1] for p in refused} == {"insufficient-balance"}
    assert all("Nothing was created" in p["detail"] for p in refused)
    assert {r.json()["status"] for r in responses if r.status_code == 201} == {"funded"}

    assert balances.balance_get(partner=partner, currency="RUB") == 0
    account = LedgerAccount.objects.get(code="partner_balance", currency="RUB", partner=partner)
    owed = 0
    for amount in Posting.objects.filter(account=account).order_by("id").values_list("amount_minor", flat=True):
        owed -= amount
        assert owed >= 0
    assert Posting.objects.filter(account=account).count() == 1 + COVERED

    funded = Transfer.objects.filter(partner=partner, funding_method="balance", status=Transfer.Status.FUNDED)
    assert funded.count() == COVERED == Transfer.objects.count()
    assert JournalEntry.objects.filter(kind="funding").count() == COVERED
    sent = {str(q.id) for q, r in zip(quotes, responses, strict=True) if r.status_code == 201}
    assert {str(t.quote_id) for t in funded} == sent
    assert Quote.objects.filter(transfer__isnull=True).count() == REQUESTS - COVERED

    sums = defaultdict(int)
    for currency, amount in Posting.objects.values_list("account__currency", "amount_minor"):
        sums[currency] += amount
    assert sums == {"RUB": 0, "KGS": 0}


def test_one_bank_reference_sent_in_two_currencies_at_once_is_recorded_once(db_partner_for_race):
    """The same bank reference recorded as a RUB and a USD top-up at the same moment (two operators, two tabs): one
    is posted, the other is refused by name, never answered with the first one's entry as if it were its own.
    Ten rounds, each pair released together by a barrier."""
    import threading

    from django.db import connection

    from payments.errors import BalanceReferenceUsed

    partner = db_partner_for_race
    for round_ in range(10):
        barrier, results = threading.Barrier(2), {}

        def top_up(currency, reference=f"RACE-{round_}", barrier=barrier, results=results):
            barrier.wait()
            try:
                entry = balances.balance_topup(partner=partner, currency=currency, amount=Decimal("10.00"),
                                               reference=reference, memo="race")
                results[currency] = Posting.objects.filter(entry=entry).values_list(
                    "account__currency", flat=True).first()
            except BalanceReferenceUsed:
                results[currency] = "refused"
            finally:
                connection.close()

        threads = [threading.Thread(target=top_up, args=(c,)) for c in ("RUB", "USD")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results.values()) in (["RUB", "refused"], ["USD", "refused"]), results
        assert JournalEntry.objects.filter(kind="topup", reference__endswith=f":RACE-{round_}").count() == 1


@pytest.fixture
def db_partner_for_race(transactional_db):
    from payments.services.setup import partner_create

    return partner_create(name="race")[0]
