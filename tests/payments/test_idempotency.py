"""Idempotency-Key on the partner API's POSTs (payments/services/idempotency.py, payments/api/idempotency.py), as the
IETF draft and Stripe do it: the first answer replayed byte for byte, another body 422, in flight 409, answers that
say nothing final released, orphaned keys taken over after the lease, records purged after their time."""

import hashlib
import os
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from django.conf import settings as django_settings
from django.db import transaction
from django.utils import timezone
from eth_account import Account
from rest_framework.response import Response
from rest_framework.test import APIClient, APIRequestFactory
from rest_framework.views import APIView

from payments import tasks
from payments.api.idempotency import Idempotent
from payments.models import IdempotencyRecord, Quote, Transfer
from payments.services.idempotency import idempotency_purge, request_fingerprint
from payments.services.quotes import quote_create
from payments.services.setup import partner_create
from tests.conftest import QUOTE_BODY, wait_for
from tests.helpers import force_status
from tests.payments.test_api import assert_problem, new_quote, transfer_body
from tests.payments.test_funding import stripe_unreachable

pytestmark = pytest.mark.django_db

# Per-request transport headers: the date, the server, the replay flag, and the id naming each request (logs).
VOLATILE = {"date", "server", "idempotent-replayed", "x-request-id"}


def post_transfer(api, body, key):
    return api.post("/api/v1/transfers", body, format="json", HTTP_IDEMPOTENCY_KEY=key)


# Replays -----------------------------------------------------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_a_replay_is_the_first_answer_byte_for_byte_over_http(live_server, partner, pricing, stripe_server):
    """Over a real HTTP server: the same key and body answer the first response's status, headers (Content-Type,
    Location, every header but the date) and raw body bytes, plus `Idempotent-Replayed: true`, even after the
    transfer has moved on (the replay is the first answer, not a new rendering); one transfer, one record."""
    quote = quote_create(partner=partner, source_currency="RUB", source_amount=Decimal("15000.00"))
    body = transfer_body(quote.id)
    headers = {"Authorization": f"Api-Key {partner.raw_key}", "Idempotency-Key": "order-77"}
    first = httpx.post(f"{live_server.url}/api/v1/transfers", json=body, headers=headers, timeout=60)
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    assert first.headers["Location"] == f"/api/v1/transfers/{first.json()['id']}"
    force_status(Transfer.objects.all(), Transfer.Status.CANCELLED)

    again = httpx.post(f"{live_server.url}/api/v1/transfers", json=body, headers=headers, timeout=60)
    assert again.status_code == 201
    assert again.content == first.content
    assert again.headers["Idempotent-Replayed"] == "true"
    assert ({k: v for k, v in again.headers.items() if k not in VOLATILE}
            == {k: v for k, v in first.headers.items() if k not in VOLATILE})
    assert again.json()["status"] == "awaiting_funding"
    assert Transfer.objects.count() == 1 and IdempotencyRecord.objects.count() == 1


def test_the_key_may_be_sent_as_a_structured_field_string(api, pricing, stripe_server):
    """The draft's `Idempotency-Key: "abc"` and Stripe's bare `abc` are the same key: the second replays the first."""
    body = transfer_body(new_quote(api)["id"])
    first = post_transfer(api, body, '"order-5"')
    again = post_transfer(api, body, "order-5")
    assert (first.status_code, again.status_code, again["Idempotent-Replayed"]) == (201, 201, "true")
    assert again.content == first.content
    assert Transfer.objects.get().idempotency_key == "order-5"


def test_an_optional_key_on_quotes_replays_the_quote_and_without_it_each_post_is_new(api, pricing):
    """Quotes take the key when sent: the same key and body give the same quote once; no key, a new quote each time."""
    first = api.post("/api/v1/quotes", QUOTE_BODY, format="json", HTTP_IDEMPOTENCY_KEY="q-1")
    again = api.post("/api/v1/quotes", QUOTE_BODY, format="json", HTTP_IDEMPOTENCY_KEY="q-1")
    assert (first.status_code, again.status_code, again["Idempotent-Replayed"]) == (201, 201, "true")
    assert again.content == first.content and Quote.objects.count() == 1
    api.post("/api/v1/quotes", QUOTE_BODY, format="json")
    api.post("/api/v1/quotes", QUOTE_BODY, format="json")
    assert Quote.objects.count() == 3
    assert_problem(api.post("/api/v1/quotes", QUOTE_BODY, format="json", HTTP_IDEMPOTENCY_KEY=" "), 400,
                   "idempotency-key-invalid", "Idempotency-Key")


# Refusals: another body, another endpoint -------------------------------------------------------------------------

def test_the_same_key_with_another_body_is_422_and_changes_nothing(api, pricing, stripe_server):
    """Another body under a used key: 422 `idempotency-key-reused` naming the header; no second transfer, the record
    still holds the first answer (which a retry of the first body still gets)."""
    body = transfer_body(new_quote(api)["id"])
    first = post_transfer(api, body, "order-1")
    assert first.status_code == 201
    other = {**body, "sender": {**body["sender"], "name": "Someone Else"}}
    assert_problem(post_transfer(api, other, "order-1"), 422, "idempotency-key-reused", "Idempotency-Key")
    assert Transfer.objects.count() == 1
    assert post_transfer(api, body, "order-1").content == first.content


def test_the_same_key_on_another_endpoint_is_422(api, pricing, stripe_server):
    """A key first used for a quote and then for a transfer is refused (422) and creates no transfer."""
    quote = api.post("/api/v1/quotes", QUOTE_BODY, format="json", HTTP_IDEMPOTENCY_KEY="shared")
    body = assert_problem(post_transfer(api, transfer_body(quote.json()["id"]), "shared"), 422,
                          "idempotency-key-reused")
    assert "another endpoint" in body["detail"]
    assert Transfer.objects.count() == 0


def test_keys_belong_to_their_partner(api, pricing):
    """Two partners may use the same key: two records, two quotes, neither replays the other's answer."""
    _, key = partner_create(name="globex")
    other_api = APIClient()
    other_api.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    mine = api.post("/api/v1/quotes", QUOTE_BODY, format="json", HTTP_IDEMPOTENCY_KEY="k")
    theirs = other_api.post("/api/v1/quotes", QUOTE_BODY, format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert mine.json()["id"] != theirs.json()["id"]
    assert not theirs.has_header("Idempotent-Replayed")
    assert IdempotencyRecord.objects.filter(key="k").count() == 2


# In flight ---------------------------------------------------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_a_retry_while_the_first_request_runs_is_409_with_retry_after(live_server, partner, pricing, stripe_server,
                                                                      settings):
    """A real first request held open (it waits for its quote's row lock, which the test holds): the same key and
    body meanwhile get 409 `idempotency-key-in-use` with Retry-After, another body 422; released, the first ends
    201 and a retry replays it. One transfer."""
    settings.IDEMPOTENCY_LEASE_SECONDS = 600  # a slow machine must not turn the held request's 409 into a takeover
    quote = quote_create(partner=partner, source_currency="RUB", source_amount=Decimal("15000.00"))
    body = transfer_body(quote.id)
    url = f"{live_server.url}/api/v1/transfers"
    headers = {"Authorization": f"Api-Key {partner.raw_key}", "Idempotency-Key": "held"}
    with ThreadPoolExecutor(1) as pool:
        with transaction.atomic():
            Quote.objects.select_for_update().get(pk=quote.pk)
            pending = pool.submit(httpx.post, url, json=body, headers=headers, timeout=60)
            wait_for(lambda: IdempotencyRecord.objects.filter(key="held", state="in_flight").exists(),
                     what="the first request to claim its key")
            busy = httpx.post(url, json=body, headers=headers, timeout=60)
            other = httpx.post(url, json={**body, "recipient": {**body["recipient"], "name": "X Y"}}, headers=headers,
                               timeout=60)
            assert not pending.done()
        first = pending.result()
    assert busy.status_code == 409 and busy.headers["Retry-After"] == "1"
    assert busy.headers["Content-Type"] == "application/problem+json"
    assert busy.json()["type"].endswith("/idempotency-key-in-use")
    assert other.status_code == 422 and other.json()["type"].endswith("/idempotency-key-reused")
    assert first.status_code == 201, first.text
    again = httpx.post(url, json=body, headers=headers, timeout=60)
    assert again.content == first.content and again.headers["Idempotent-Replayed"] == "true"
    assert Transfer.objects.count() == 1


def test_an_orphaned_in_flight_key_runs_again_once_its_lease_has_run_out(api, partner, pricing, stripe_server,
                                                                           settings):
    """A record left in flight by a process that died: refused (409) while its lease runs, then taken over by the
    next request, which runs, answers and stores its answer."""
    body = transfer_body(new_quote(api)["id"])
    now = timezone.now()
    orphan = IdempotencyRecord.objects.create(
        partner=partner, key="orphan", method="POST", path="/api/v1/transfers", fingerprint=request_fingerprint(body),
        locked_until=now + timedelta(seconds=settings.IDEMPOTENCY_LEASE_SECONDS), created_at=now,
        expires_at=now + timedelta(hours=24))
    assert_problem(post_transfer(api, body, "orphan"), 409, "idempotency-key-in-use")
    IdempotencyRecord.objects.filter(pk=orphan.pk).update(locked_until=now - timedelta(seconds=1))
    response = post_transfer(api, body, "orphan")
    assert response.status_code == 201, response.content
    record = IdempotencyRecord.objects.get()
    assert (record.pk, record.state, record.response_status) == (orphan.pk, "done", 201)
    assert record.lease_token != orphan.lease_token
    assert bytes(record.response_body) == response.content


# What is kept, what is released ------------------------------------------------------------------------------------

def test_a_5xx_releases_the_key_and_the_retry_runs_again(api, pricing, stripe_server, settings):
    """Stripe unreachable: 503, no record kept, so the retry (Stripe back) runs again and finds the transfer the first
    attempt saved (the transfer's own unique key): 200 with its PaymentIntent, stored and replayed from then on."""
    body = transfer_body(new_quote(api)["id"])
    with stripe_unreachable(settings):
        assert_problem(post_transfer(api, body, "k-503"), 503, "funding-unavailable")
    assert not IdempotencyRecord.objects.exists()
    retry = post_transfer(api, body, "k-503")
    assert retry.status_code == 200, retry.content
    assert retry.json()["funding"]["payment_intent_id"].startswith("pi_")
    assert post_transfer(api, body, "k-503").content == retry.content
    assert Transfer.objects.count() == 1


class _FailsOnce(Idempotent, APIView):
    """A view that raises an unexpected exception the first time it runs."""

    idempotency = "required"
    required_scopes = ["transfers:create"]  # a view declaring none is refused before it runs (fail closed)
    runs = 0

    def post(self, request):
        type(self).runs += 1
        if type(self).runs == 1:
            raise RuntimeError("unexpected")
        return Response({"run": type(self).runs}, status=201)


def test_an_unexpected_exception_releases_the_key(partner):
    """A view that raises (a 500): the key is released, not locked; the retry runs the view again and is stored."""
    factory = APIRequestFactory()

    def call():
        request = factory.post("/api/v1/fails-once", {"a": 1}, format="json", HTTP_IDEMPOTENCY_KEY="boom",
                               HTTP_AUTHORIZATION=f"Api-Key {partner.raw_key}")
        return _FailsOnce.as_view()(request)

    with pytest.raises(RuntimeError):
        call()
    assert not IdempotencyRecord.objects.exists()
    response = call()
    assert (response.status_code, response.data) == (201, {"run": 2})
    assert call().has_header("Idempotent-Replayed") and _FailsOnce.runs == 2


def test_a_final_4xx_is_kept_and_replayed(api, pricing, stripe_server):
    """A refusal that is the answer to this body (422 quote expired) is stored: the retry gets the same bytes without
    running again, even once the cause is gone."""
    quote = new_quote(api)
    Quote.objects.filter(pk=quote["id"]).update(expires_at=timezone.now() - timedelta(seconds=1))
    body = transfer_body(quote["id"])
    first = assert_problem(post_transfer(api, body, "late"), 422, "quote-expired")
    Quote.objects.filter(pk=quote["id"]).update(expires_at=timezone.now() + timedelta(minutes=5))
    again = post_transfer(api, body, "late")
    assert (again.status_code, again.json(), again["Idempotent-Replayed"]) == (422, first, "true")
    assert Transfer.objects.count() == 0


def test_a_400_or_409_is_not_kept_so_the_key_can_be_used_again(api, pricing, stripe_server):
    """A malformed body (400) and a conflict that may pass (409 quote already used) keep nothing: the same key then
    runs the corrected request (Stripe keeps no result for failed validation either)."""
    quote = new_quote(api)
    body = transfer_body(quote["id"])
    assert_problem(post_transfer(api, {"quote_id": quote["id"]}, "fix-me"), 400, "validation-error")
    assert not IdempotencyRecord.objects.exists()
    assert post_transfer(api, body, "fix-me").status_code == 201
    assert_problem(post_transfer(api, transfer_body(quote["id"]), "second"), 409, "quote-already-used")
    assert not IdempotencyRecord.objects.filter(key="second").exists()
    assert post_transfer(api, transfer_body(new_quote(api)["id"]), "second").status_code == 201


# Expiry ------------------------------------------------------------------------------------------------------------

def _record(partner, key, *, expires_in):
    now = timezone.now()
    return IdempotencyRecord.objects.create(partner=partner, key=key, method="POST", path="/api/v1/quotes",
                                            fingerprint="f", state="done", response_status=201, created_at=now,
                                            expires_at=now + expires_in)


def test_keys_are_kept_for_the_ttl_and_an_expired_one_is_free_again(api, partner, pricing, settings):
    """A record expires IDEMPOTENCY_KEY_TTL_HOURS (24) after its first use; past that, before the purge even runs,
    the key is free: a new request with it runs."""
    api.post("/api/v1/quotes", QUOTE_BODY, format="json", HTTP_IDEMPOTENCY_KEY="day")
    record = IdempotencyRecord.objects.get()
    assert record.expires_at - record.created_at == timedelta(hours=24) == timedelta(
        hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)
    IdempotencyRecord.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    again = api.post("/api/v1/quotes", {**QUOTE_BODY, "source_amount": "20000.00"}, format="json",
                     HTTP_IDEMPOTENCY_KEY="day")
    assert again.status_code == 201 and not again.has_header("Idempotent-Replayed")
    assert Quote.objects.count() == 2


def test_the_beat_task_purges_expired_records_and_keeps_the_rest(partner):
    """`payments.tasks.idempotency_purge`, on beat's schedule (run here through Celery in this process): expired
    records are deleted, live ones kept."""
    entry = django_settings.CELERY_BEAT_SCHEDULE["idempotency-purge"]
    assert entry["task"] == tasks.idempotency_purge.name
    for n in range(3):
        _record(partner, f"old-{n}", expires_in=-timedelta(minutes=1))
    live = _record(partner, "live", expires_in=timedelta(hours=1))
    tasks.idempotency_purge.apply().get()
    assert list(IdempotencyRecord.objects.all()) == [live]


def test_purge_deletes_in_batches(partner):
    """More expired records than one batch: all go, and the count is returned."""
    for n in range(7):
        _record(partner, f"b-{n}", expires_in=-timedelta(seconds=1))
    assert idempotency_purge(batch=3) == 7
    assert not IdempotencyRecord.objects.exists()



def test_admin_lists_records_without_their_response_bodies(client, partner):
    """Operators see a partner's keys (read-only); the stored body, which may hold a client secret, is not shown."""
    from django.contrib.auth import get_user_model

    from tests.helpers import staff_login

    record = _record(partner, "visible-key", expires_in=timedelta(hours=1))
    IdempotencyRecord.objects.filter(pk=record.pk).update(response_body=b'{"client_secret":"pi_x_secret_y"}')
    staff_login(client, get_user_model().objects.create_superuser("ops", "ops@example.com", "a-long-password-123"))
    listing = client.get("/admin/payments/idempotencyrecord/")
    page = client.get(f"/admin/payments/idempotencyrecord/{record.pk}/change/")
    assert listing.status_code == page.status_code == 200
    assert b"visible-key" in listing.content and b"visible-key" in page.content
    assert b"pi_x_secret_y" not in page.content

# Under gunicorn with several processes ------------------------------------------------------------------------------
RACE_KEYS = int(os.environ.get("IDEMPOTENCY_RACE_KEYS", "100"))
RACE_COPIES = int(os.environ.get("IDEMPOTENCY_RACE_COPIES", "20"))
RACE_CLIENT_THREADS, RACE_OTHER_BODIES = 40, 200  # a new connection per request: gthread closes idle ones
GUNICORN_ARGS = ("--worker-class", "gthread", "--threads", "4")  # 4 processes × 4 threads serve 16 requests at once


def _race_body(quote, i):
    return {"quote_id": str(quote.id), "funding": {"method": "balance"},
            "sender": {"name": "Aibek Usenov", "phone": f"+7916{i:07d}", "email": f"sender{i}@example.com"},
            "recipient": {"name": "Gulnara Usenova", "phone": "+996555123456",
                          "wallet_address": Account.from_key(hashlib.sha256(f"race-{i}".encode()).digest()).address}}


@pytest.mark.django_db(transaction=True)
def test_keys_raced_by_identical_requests_under_gunicorn_make_one_transfer_each_and_other_bodies_are_422(
        pricing, partner, settings):
    """IDEMPOTENCY_RACE_KEYS keys (100 here; 1,000 in the issue's run) × IDEMPOTENCY_RACE_COPIES (20) identical
    balance-funded requests fired at once through gunicorn with 4 processes: exactly one transfer (and one balance
    debit) per key; per key one fresh 201, every other answer its byte-identical replay or 409 in progress with
    Retry-After. Then another body under each key, and 200 other bodies at once under one key: every one 422, and
    nothing more is created."""
    from collections import Counter, defaultdict

    from payments.models import JournalEntry
    from payments.services import balances
    from tests.gunicorn import gunicorn_server

    settings.QUOTE_TTL_SECONDS = 3600
    amount = Decimal("1000.00")
    keys = [f"race-{i}" for i in range(RACE_KEYS)]
    bodies = {key: _race_body(quote_create(partner=partner, source_currency="RUB", source_amount=amount), i)
              for i, key in enumerate(keys)}
    balances.balance_topup(partner=partner, currency="RUB", amount=amount * RACE_KEYS, reference="PREFUND-RACE")
    auth = {"Authorization": f"Api-Key {partner.raw_key}"}

    # A loaded machine must not turn an in-flight 409 into a lease takeover (a 200) or a killed worker: this pins
    # the race, not the lease.
    with (gunicorn_server("idempotency", workers=4, args=(*GUNICORN_ARGS, "--timeout", "300"),
                          env={"IDEMPOTENCY_LEASE_SECONDS": "600"}) as (url, _proc),
          httpx.Client(base_url=url, timeout=120, limits=httpx.Limits(max_connections=RACE_CLIENT_THREADS,
                                                                         max_keepalive_connections=0)) as http,
          ThreadPoolExecutor(RACE_CLIENT_THREADS) as pool):
        def send(job):
            key, body = job
            return key, http.post("/api/v1/transfers", json=body, headers={**auth, "Idempotency-Key": key})

        started = time.monotonic()
        raced = list(pool.map(send, [(key, bodies[key]) for key in keys for _ in range(RACE_COPIES)]))
        race_seconds = time.monotonic() - started
        replays = list(pool.map(send, [(key, bodies[key]) for key in keys]))
        others = list(pool.map(send, [(key, {**bodies[key], "sender": {**bodies[key]["sender"], "name": "Other Name"}})
                                      for key in keys]))
        one_key = list(pool.map(send, [(keys[0], {**bodies[keys[0]], "recipient": {
            **bodies[keys[0]]["recipient"], "name": f"Other {n}"}}) for n in range(RACE_OTHER_BODIES)]))

    kinds = Counter("fresh" if r.status_code == 201 and "idempotent-replayed" not in r.headers
                    else "replayed" if r.status_code == 201 else r.status_code for _, r in raced)
    print(f"idempotency.race keys={RACE_KEYS} copies={RACE_COPIES} requests={len(raced)} seconds={race_seconds:.1f} "
          f"requests_per_second={len(raced) / race_seconds:.0f} answers={dict(kinds)} transfers="
          f"{Transfer.objects.count()} other_bodies_422={sum(r.status_code == 422 for _, r in others + one_key)}"
          f"/{len(others) + len(one_key)}")
    by_key = defaultdict(list)
    for key, response in raced:
        by_key[key].append(response)
    for key, responses in by_key.items():
        fresh = [r for r in responses if r.status_code == 201 and "idempotent-replayed" not in r.headers]
        assert len(fresh) == 1, (key, [(r.status_code, r.text[:200]) for r in responses])
        for r in responses:
            if r.status_code == 201:
                assert r.content == fresh[0].content
            else:
                assert r.status_code == 409 and r.headers["Retry-After"] == "1", r.text[:300]
                assert r.json()["type"].endswith("/idempotency-key-in-use")
    fresh_by_key = {key: next(r for r in rs if r.status_code == 201 and "idempotent-replayed" not in r.headers)
                    for key, rs in by_key.items()}
    for key, r in replays:
        assert r.headers.get("Idempotent-Replayed") == "true", (key, r.status_code, r.text[:300])
        assert r.content == fresh_by_key[key].content
    assert {r.status_code for _, r in others + one_key} == {422}
    assert {r.json()["type"].rsplit("/", 1)[-1] for _, r in others + one_key} == {"idempotency-key-reused"}

    assert Transfer.objects.count() == RACE_KEYS == len(set(Transfer.objects.values_list("idempotency_key", flat=True)))
    assert JournalEntry.objects.filter(kind="funding").count() == RACE_KEYS
    assert balances.balance_get(partner=partner, currency="RUB") == 0
    assert IdempotencyRecord.objects.filter(state="done", response_status=201).count() == RACE_KEYS


@pytest.mark.django_db(transaction=True)
def test_a_request_whose_process_is_killed_leaves_its_key_retryable_after_the_lease(partner, pricing):
    """A real crash: gunicorn's worker is SIGKILLed while its request holds the key (held open on its quote's row
    lock). The record stays in flight; retries get 409 until the lease (5 s here) runs out, then one runs and makes
    the one transfer, stored for replays."""
    import psutil

    from payments.services import balances
    from tests.gunicorn import gunicorn_server

    quote = quote_create(partner=partner, source_currency="RUB", source_amount=Decimal("1000.00"))
    balances.balance_topup(partner=partner, currency="RUB", amount=Decimal("1000.00"), reference="PREFUND-CRASH")
    body = {**transfer_body(quote.id), "funding": {"method": "balance"}}
    headers = {"Authorization": f"Api-Key {partner.raw_key}", "Idempotency-Key": "crash"}
    with (gunicorn_server("idempotency-crash", workers=1, env={"IDEMPOTENCY_LEASE_SECONDS": "5"}) as (url, proc),
          ThreadPoolExecutor(1) as pool):
        with transaction.atomic():
            Quote.objects.select_for_update().get(pk=quote.pk)
            pending = pool.submit(httpx.post, f"{url}/api/v1/transfers", json=body, headers=headers, timeout=60)
            wait_for(lambda: IdempotencyRecord.objects.filter(key="crash", state="in_flight").exists(),
                     what="the request to claim its key")
            for worker in psutil.Process(proc.pid).children():
                worker.kill()
            with pytest.raises(httpx.TransportError):
                pending.result()
        assert IdempotencyRecord.objects.get(key="crash").state == "in_flight"
        seen = []

        def retried():
            response = httpx.post(f"{url}/api/v1/transfers", json=body, headers={**headers, "Connection": "close"},
                                  timeout=60)
            seen.append(response.status_code)
            return response if response.status_code != 409 else None

        done = wait_for(retried, timeout=120, interval=0.5, what="a retry to run after the lease")
    assert done.status_code == 201, done.text
    assert set(seen) <= {409, 201} and seen[-1] == 201
    assert Transfer.objects.count() == 1
    assert IdempotencyRecord.objects.get(key="crash").state == "done"
