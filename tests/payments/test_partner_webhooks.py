"""Outgoing webhooks (Standard Webhooks): the outbox written with each transfer status change, the API and its
refusals, SSRF checks at creation and at delivery, signing and secret rotation verified with the `standardwebhooks`
reference library on a real HTTP receiver, and (with a real Celery worker and beat) retries, Retry-After,
ordering, replay and disabling."""

import inspect
import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from onchain.models import OperatorAlert
from payments.models import (
    Transfer,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
    WebhookSecret,
)
from payments.services import webhooks
from payments.services.balances import balance_topup
from payments.services.quotes import quote_create
from payments.services.setup import partner_create
from payments.services.transfers import request_fingerprint, transfer_create
from payments.services.webhook_delivery import delivery_attempt
from tests.conftest import new_recipient, wait_for
from tests.helpers import force_status
from tests.payments import webhook_receiver

S = Transfer.Status


def make_transfer(partner, key="order-1"):
    quote = quote_create(partner=partner, source_currency="RUB", source_amount=Decimal("15000.00"))
    transfer, _ = transfer_create(
        partner=partner, idempotency_key=key, fingerprint=request_fingerprint({"key": key}), quote_id=quote.id,
        sender={"name": "Aibek Usenov", "phone": "+79161234567", "email": "aibek@example.com"},
        recipient={"name": "Gulnara Usenova", "phone": "+996555123456", "wallet_address": new_recipient()})
    return transfer


def events_of(transfer):
    return list(WebhookEvent.objects.filter(subject=f"transfer:{transfer.pk}").order_by("id"))


@pytest.fixture
def receiver():
    r = webhook_receiver.start()
    yield r
    r.server.shutdown()


def verify(secret, request):
    return Webhook(secret).verify(request.body, request.headers)


# The outbox -----------------------------------------------------------------------------------------------------------

def _args(method):
    params = [p for p in inspect.signature(method).parameters.values() if p.name != "self"]
    return [timezone.now() if p.name == "at" else "why" for p in params if p.default is inspect.Parameter.empty]


TRANSITIONS = sorted({(t.source, t.target, t.name) for t in
                      Transfer._meta.get_field("status").get_all_transitions(Transfer)})


@pytest.mark.django_db
@pytest.mark.parametrize(("source", "target", "name"), TRANSITIONS)
def test_every_transfer_transition_writes_its_event(pricing, partner, source, target, name):
    """Each django-fsm transition of a Transfer, saved, leaves exactly one outbox event `transfer.<target>` naming
    the status it left, in the transfer's order after `transfer.created`."""
    transfer = make_transfer(partner)
    force_status(Transfer.objects.filter(pk=transfer.pk), source)
    transfer = Transfer.objects.get(pk=transfer.pk)
    method = getattr(transfer, name)
    method(*_args(method))
    transfer.save()
    events = events_of(transfer)
    assert [e.type for e in events] == ["transfer.created", f"transfer.{target}"]
    assert events[1].payload["previous_status"] == source and events[1].payload["status"] == target
    assert events[1].payload["id"] == str(transfer.pk) and events[1].partner_id == partner.pk
    assert f"transfer.{target}" in webhooks.EVENT_TYPES


def test_the_transitions_walked_reach_every_status(db):
    """The parametrised walk above covers every status a transfer can move to (so a new status gets its event)."""
    # The queryset compare-and-sets below reach the rest: a batch final pays (completed) or hands to a payout partner.
    reached = {target for _, target, _ in TRANSITIONS} | {target for _, target in BULK_MOVES}
    assert reached == set(S.values) - {S.AWAITING_FUNDING}


BULK_MOVES = [("mark_completed", S.COMPLETED), ("mark_paid_to_partner", S.AWAITING_PAYOUT_CONFIRMATION)]


@pytest.mark.django_db
@pytest.mark.parametrize(("move", "target"), BULK_MOVES)
def test_a_batch_final_writes_one_event_per_transfer_moved(pricing, partner, move, target):
    """A compare-and-set of the queryset (a payout batch final: `mark_completed`, or `mark_paid_to_partner` for
    payout-partner transfers) writes a `transfer.<target>` for each transfer it moved, and none for a transfer it
    left alone."""
    settling = [make_transfer(partner, key=f"k{i}") for i in range(3)]
    force_status(Transfer.objects.filter(pk__in=[t.pk for t in settling]), S.SETTLING)
    other = make_transfer(partner, key="other")
    queryset = Transfer.objects.filter(pk__in=[t.pk for t in [*settling, other]])
    moved = queryset.mark_completed(timezone.now()) if move == "mark_completed" else getattr(queryset, move)()
    assert moved == 3
    for transfer in settling:
        assert [(e.type, e.payload["previous_status"]) for e in events_of(transfer)][-1] == (
            f"transfer.{target}", S.SETTLING)
    assert [e.type for e in events_of(other)] == ["transfer.created"]


@pytest.mark.django_db
def test_a_rolled_back_transition_leaves_no_event(pricing, partner):
    """The event is written in the transaction of the change: rolled back together, and committed together."""
    transfer = make_transfer(partner)
    with pytest.raises(RuntimeError), transaction.atomic():
        locked = Transfer.objects.select_for_update().get(pk=transfer.pk)
        locked.mark_cancelled("changed my mind")
        locked.save()
        assert [e.type for e in events_of(transfer)] == ["transfer.created", "transfer.cancelled"]
        raise RuntimeError("crash before commit")
    assert Transfer.objects.get(pk=transfer.pk).status == S.AWAITING_FUNDING
    assert [e.type for e in events_of(transfer)] == ["transfer.created"]


@pytest.mark.django_db
def test_balance_movements_are_events(partner):
    """A top-up of a partner's balance is a `balance.movement` event with the signed amount and the balance after."""
    balance_topup(partner=partner, currency="USD", amount=Decimal("100.00"), reference="BANK-1")
    event = WebhookEvent.objects.get(partner=partner, type="balance.movement")
    assert event.payload | {"at": None, "entry_id": None} == {
        "currency": "USD", "kind": "topup", "amount_minor": 10000, "balance_after_minor": 10000, "entry_id": None,
        "transfer_id": None, "at": None}


# API ------------------------------------------------------------------------------------------------------------------

PUBLIC = "https://93.184.215.14/hooks"  # an address literal: no DNS needed


@pytest.fixture
def production(settings):
    settings.WEBHOOK_REQUIRE_HTTPS = True
    settings.WEBHOOK_ALLOW_PRIVATE = False


@pytest.mark.django_db
@pytest.mark.parametrize("url", [
    "http://93.184.215.14/hooks",  # not https
    "https://127.0.0.1/hooks", "https://10.1.2.3/hooks", "https://172.16.0.1/", "https://192.168.1.1/",
    "https://169.254.169.254/latest/meta-data", "https://[::1]/hooks", "https://[fe80::1]/", "https://0.0.0.0/",
    "https://[::ffff:127.0.0.1]/", "https://224.0.0.1/", "https://localhost/hooks", "https://user:pw@93.184.215.14/",
    "ftp://93.184.215.14/", "not a url",
    "https://[2002:a9fe:a9fe::1]/", "https://[2002:7f00:1::]/",  # 6to4 around 169.254.169.254 and 127.0.0.1
    "https://[2001:0:4136:e378:8000:63bf:80ff:fffe]/",  # Teredo whose client is 127.0.0.1
    "https://[fec0::1]/",  # site-local
])
def test_endpoints_inside_the_network_or_not_https_are_refused_at_creation(api, partner, production, url):
    """In production settings: a problem detail naming the URL field, and nothing stored."""
    response = api.post("/api/v1/webhook-endpoints", {"url": url}, format="json")
    assert response.status_code == 422, response.content
    body = response.json()
    assert response["content-type"] == "application/problem+json"
    assert body["type"].endswith("/webhook-url-refused") and body["errors"][0]["field"] == "url"
    assert not WebhookEndpoint.objects.exists() and not WebhookSecret.objects.exists()


@pytest.mark.django_db
def test_unknown_event_types_are_refused(api, production):
    response = api.post("/api/v1/webhook-endpoints", {"url": PUBLIC, "event_types": ["transfer.funded", "nope"]},
                        format="json")
    assert response.status_code == 422 and response.json()["type"].endswith("/webhook-event-type-unknown")
    assert "nope" in response.json()["detail"]
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.django_db
def test_endpoint_crud_shows_the_secret_once_and_stores_it_encrypted(api, partner, production):
    """Created with a `whsec_` secret shown once; reads never show it; the database holds it encrypted; PATCH
    changes the types; rotation returns a new secret and keeps the old one signing until its expiry."""
    created = api.post("/api/v1/webhook-endpoints", {"url": PUBLIC, "description": "main",
                                                     "event_types": ["transfer.completed"]}, format="json")
    assert created.status_code == 201, created.content
    secret = created.json()["secret"]
    assert secret.startswith("whsec_")
    endpoint_id = created.json()["id"]
    stored = WebhookSecret.objects.get(endpoint_id=endpoint_id).secret_encrypted
    assert secret not in stored and secret.removeprefix("whsec_") not in stored
    read = api.get(f"/api/v1/webhook-endpoints/{endpoint_id}").json()
    assert "secret" not in read and read["event_types"] == ["transfer.completed"]
    assert [e["id"] for e in api.get("/api/v1/webhook-endpoints").json()["results"]] == [endpoint_id]
    patched = api.patch(f"/api/v1/webhook-endpoints/{endpoint_id}", {"event_types": ["*"]}, format="json")
    assert patched.status_code == 200 and patched.json()["event_types"] == ["*"]
    refused = api.patch(f"/api/v1/webhook-endpoints/{endpoint_id}", {"url": "https://10.0.0.1/"}, format="json")
    assert refused.status_code == 422 and WebhookEndpoint.objects.get(pk=endpoint_id).url == PUBLIC
    rotated = api.post(f"/api/v1/webhook-endpoints/{endpoint_id}/rotate-secret", {"overlap_seconds": 60},
                       format="json")
    assert rotated.status_code == 200 and rotated.json()["secret"].startswith("whsec_")
    endpoint = WebhookEndpoint.objects.get(pk=endpoint_id)
    assert webhooks.endpoint_signing_secrets(endpoint=endpoint) == [rotated.json()["secret"], secret]
    later = timezone.now() + timedelta(seconds=61)
    assert webhooks.endpoint_signing_secrets(endpoint=endpoint, at=later) == [rotated.json()["secret"]]
    assert api.delete(f"/api/v1/webhook-endpoints/{endpoint_id}").status_code == 204
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.django_db
def test_another_partners_endpoints_and_events_are_not_found(api, partner, pricing, production):
    """Every endpoint and event route answers 404 for another partner's objects, and lists leave them out."""
    other, _ = partner_create(name="other")
    endpoint, _ = webhooks.endpoint_create(partner=other, url=PUBLIC)
    event = make_transfer(other) and WebhookEvent.objects.get(partner=other)
    for method, path in [("get", f"webhook-endpoints/{endpoint.pk}"), ("patch", f"webhook-endpoints/{endpoint.pk}"),
                         ("delete", f"webhook-endpoints/{endpoint.pk}"),
                         ("post", f"webhook-endpoints/{endpoint.pk}/rotate-secret"),
                         ("post", f"webhook-endpoints/{endpoint.pk}/enable"),
                         ("post", f"webhook-endpoints/{endpoint.pk}/test"),
                         ("get", f"webhook-events/{event.msg_id}"), ("get", f"webhook-events/{event.msg_id}/deliveries"),
                         ("post", f"webhook-events/{event.msg_id}/replay")]:
        response = getattr(api, method)(f"/api/v1/{path}", {}, format="json")
        assert response.status_code == 404, (method, path, response.status_code)
    mine = api.post("/api/v1/webhook-endpoints", {"url": PUBLIC}, format="json").json()["id"]
    assert api.post(f"/api/v1/webhook-events/{event.msg_id}/replay", {"endpoint_id": mine},
                    format="json").status_code == 404
    assert api.get("/api/v1/webhook-endpoints").json()["results"][0]["id"] == mine
    assert api.get("/api/v1/webhook-events").json()["results"] == []
    assert WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()
    assert all(getattr(view.cls, "required_scopes", None) == ["webhooks:manage"] for view in _webhook_views())


def _webhook_views():
    from payments.api.urls import urlpatterns

    return [p.callback for p in urlpatterns if p.name.startswith("api-webhook")]


# Signing, rotation and SSRF at delivery (inline: the test's own transaction, which no worker sees) ---------------

@pytest.mark.django_db
def test_deliveries_verify_with_the_reference_library_and_rotation_overlaps(partner, receiver):
    """Signed per Standard Webhooks: `standardwebhooks.Webhook(secret).verify` accepts the body with the secret;
    after a rotation both the old and the new secret verify (two signatures); once the overlap ends only the new."""
    endpoint, old = webhooks.endpoint_create(partner=partner, url=receiver.url)
    first = webhooks.endpoint_ping(endpoint=endpoint)
    delivery_attempt(delivery_id=first.deliveries.get().pk)
    [request] = receiver.received()
    assert verify(old, request)["data"] == {"endpoint_id": endpoint.pk, "message": "ping"}
    assert request.headers["webhook-id"] == first.msg_id
    assert request.headers["content-type"] == "application/json"

    new = webhooks.endpoint_rotate_secret(endpoint=endpoint, overlap_seconds=3600)
    second = webhooks.endpoint_ping(endpoint=endpoint)
    delivery_attempt(delivery_id=second.deliveries.get().pk)
    request = receiver.received()[-1]
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    assert verify(old, request)["type"] == verify(new, request)["type"] == "webhook.test"

    WebhookSecret.objects.filter(endpoint=endpoint, expires_at__isnull=False).update(
        expires_at=timezone.now() - timedelta(seconds=1))  # the overlap has ended
    third = webhooks.endpoint_ping(endpoint=endpoint)
    delivery_attempt(delivery_id=third.deliveries.get().pk)
    request = receiver.received()[-1]
    assert verify(new, request)
    with pytest.raises(WebhookVerificationError):
        verify(old, request)
    assert WebhookDelivery.objects.filter(state="delivered").count() == 3


@pytest.mark.django_db
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]"])
def test_a_private_address_is_refused_at_delivery_time(partner, receiver, settings, host):
    """An endpoint whose name now resolves inside the network (DNS rebinding, or a row written before the rule) is
    not contacted: the attempt is logged as refused and retried later, and the receiver sees nothing."""
    url = receiver.url.replace("127.0.0.1", host)
    endpoint = WebhookEndpoint.objects.create(partner=partner, url=url)
    webhooks.endpoint_rotate_secret(endpoint=endpoint)
    settings.WEBHOOK_ALLOW_PRIVATE = False
    event = webhooks.endpoint_ping(endpoint=endpoint)
    attempt = delivery_attempt(delivery_id=event.deliveries.get().pk)
    assert attempt.status_code is None and attempt.error.startswith("refused:"), attempt.error
    assert receiver.received() == []
    delivery = event.deliveries.get()
    assert delivery.state == "pending" and delivery.next_attempt_at > timezone.now()


@pytest.mark.django_db
def test_the_request_goes_to_the_checked_address_with_the_host_kept(partner, receiver):
    """The connection is made to the address that was checked, and the Host header still names the endpoint's host."""
    url = receiver.url.replace("127.0.0.1", "localhost")
    endpoint, secret = webhooks.endpoint_create(partner=partner, url=url)
    event = webhooks.endpoint_ping(endpoint=endpoint)
    delivery_attempt(delivery_id=event.deliveries.get().pk)
    [request] = receiver.received()
    assert request.headers["host"] == f"localhost:{receiver.port()}"
    assert verify(secret, request)


@pytest.mark.django_db
def test_the_answer_read_is_capped_and_redirects_are_not_followed(partner, settings):
    """A 3xx is a failed attempt (never followed); what is kept of an answer is capped."""
    redirecting = webhook_receiver.start(script=lambda n, _: (302, {"location": "http://10.0.0.1/"}))
    try:
        endpoint, _ = webhooks.endpoint_create(partner=partner, url=redirecting.url)
        event = webhooks.endpoint_ping(endpoint=endpoint)
        attempt = delivery_attempt(delivery_id=event.deliveries.get().pk)
        assert attempt.status_code == 302 and len(redirecting.received()) == 1
        assert event.deliveries.get().state == "pending"
    finally:
        redirecting.server.shutdown()


# With a real worker and beat (committed rows) --------------------------------------------------------------------

def _deliveries_done(endpoint):
    return not WebhookDelivery.objects.filter(endpoint=endpoint, state="pending").exists()


@pytest.mark.django_db(transaction=True)
def test_a_receiver_failing_at_first_gets_every_event_once_delivered_with_its_id_in_order(
        api, partner, pricing, celery_processes):
    """The receiver fails each message's first two attempts: every event still arrives, every attempt of one event
    carries the same webhook-id and verifies, and a transfer's events arrive in the order they happened. A replay
    sends the same webhook-id again."""
    receiver = webhook_receiver.start(script=webhook_receiver.fail_first(2))
    try:
        created = api.post("/api/v1/webhook-endpoints", {"url": receiver.url}, format="json").json()
        secret = created["secret"]
        transfer = make_transfer(partner)
        with transaction.atomic():
            locked = Transfer.objects.select_for_update().get(pk=transfer.pk)
            locked.mark_cancelled("changed my mind")
            locked.save()
        balance_topup(partner=partner, currency="USD", amount=Decimal("5.00"), reference="BANK-2")
        events = list(WebhookEvent.objects.filter(partner=partner).order_by("id"))
        assert [e.type for e in events] == ["transfer.created", "transfer.cancelled", "balance.movement"]
        endpoint = WebhookEndpoint.objects.get(pk=created["id"])
        wait_for(lambda: _deliveries_done(endpoint), timeout=120, what="every delivery settled")
        assert set(WebhookDelivery.objects.filter(endpoint=endpoint).values_list("state", flat=True)) == {"delivered"}
        got = receiver.by_id()
        assert set(got) == {e.msg_id for e in events}
        for event in events:
            attempts = got[event.msg_id]
            assert [a.status for a in attempts] == [500, 500, 200]
            assert all(verify(secret, a)["type"] == event.type for a in attempts)
            assert WebhookAttempt.objects.filter(delivery__event=event).count() == 3
        delivered_at = {msg_id: [a.at for a in attempts if a.status == 200][0] for msg_id, attempts in got.items()}
        assert delivered_at[events[0].msg_id] < got[events[1].msg_id][0].at  # cancelled waits for created

        replay = api.post(f"/api/v1/webhook-events/{events[1].msg_id}/replay", {}, format="json")
        assert replay.status_code == 202 and replay.json() == {"deliveries": 1}
        wait_for(lambda: receiver.by_id()[events[1].msg_id][-1].status == 200
                 and len(receiver.by_id()[events[1].msg_id]) > 3, timeout=60, what="the replay")
        assert verify(secret, receiver.by_id()[events[1].msg_id][-1])["data"]["status"] == "cancelled"
        deliveries = api.get(f"/api/v1/webhook-events/{events[1].msg_id}/deliveries").json()
        assert deliveries[0]["state"] == "delivered" and len(deliveries[0]["attempt_log"]) >= 4
    finally:
        receiver.server.shutdown()


@pytest.mark.django_db(transaction=True)
def test_retry_after_is_honoured(partner, celery_processes):
    """A 429 with `Retry-After: 2` puts the next attempt at least 2 s later (the schedule alone would retry after
    0.2 s)."""
    receiver = webhook_receiver.start(script=lambda n, _: (429, {"Retry-After": "2"}) if n == 0 else (200, {}))
    try:
        endpoint, secret = webhooks.endpoint_create(partner=partner, url=receiver.url)
        event = webhooks.endpoint_ping(endpoint=endpoint)
        wait_for(lambda: _deliveries_done(endpoint), timeout=120, what="the ping delivered")
        first, second = receiver.received()
        assert second.at - first.at >= 2.0
        assert first.headers["webhook-id"] == second.headers["webhook-id"] == event.msg_id
        assert verify(secret, second)
    finally:
        receiver.server.shutdown()


@pytest.mark.django_db(transaction=True)
def test_an_endpoint_failing_past_its_schedule_is_disabled_and_operators_alerted(partner, celery_processes):
    """Every attempt fails: after the schedule (1 + 3 retries here) the delivery fails, the endpoint is disabled with
    its reason, an operator alert is raised, and the partner gets a `webhook_endpoint.disabled` event (sent to its
    other endpoints). Re-enabling it sends the pending ones again."""
    failing = webhook_receiver.start(script=lambda n, _: (500, {}))
    healthy = webhook_receiver.start()
    try:
        endpoint, _ = webhooks.endpoint_create(partner=partner, url=failing.url, event_types=["webhook.test"])
        other, other_secret = webhooks.endpoint_create(partner=partner, url=healthy.url,
                                                       event_types=["webhook_endpoint.disabled"])
        event = webhooks.endpoint_ping(endpoint=endpoint)
        wait_for(lambda: not WebhookEndpoint.objects.get(pk=endpoint.pk).enabled, timeout=120, what="disabled")
        endpoint.refresh_from_db()
        assert "failing since" in endpoint.disabled_reason and endpoint.disabled_at
        delivery = event.deliveries.get()
        assert delivery.state == "failed" and delivery.attempts == 4 and len(failing.received()) == 4
        assert OperatorAlert.objects.filter(kind="webhook", message__contains=endpoint.pk).count() == 1
        wait_for(lambda: healthy.received(), timeout=60, what="the disabled event at the other endpoint")
        notice = verify(other_secret, healthy.received()[0])
        assert notice["type"] == "webhook_endpoint.disabled" and notice["data"]["endpoint_id"] == endpoint.pk
        assert WebhookEvent.objects.filter(partner=partner, type="webhook_endpoint.disabled").count() == 1
    finally:
        failing.server.shutdown()
        healthy.server.shutdown()


def test_the_signed_body_is_the_standard_webhooks_envelope():
    """`{type, timestamp, data}`, compact JSON, the same on every attempt."""
    from payments.services.webhook_delivery import message_body

    event = WebhookEvent(type="transfer.funded", payload={"id": "x"}, created_at=timezone.now())
    assert json.loads(message_body(event)).keys() == {"type", "timestamp", "data"}
    assert message_body(event) == message_body(event)


@pytest.mark.django_db
def test_an_endpoint_failing_for_days_is_disabled_before_its_schedule_ends(partner):
    """Failing without a success since WEBHOOK_DISABLE_AFTER_SECONDS ago: the next failed attempt disables the
    endpoint (and raises the operator alert) though this delivery still had retries left; a success in between
    clears the count."""
    failing = webhook_receiver.start(script=lambda n, _: (500, {}) if n != 1 else (200, {}))
    try:
        endpoint, _ = webhooks.endpoint_create(partner=partner, url=failing.url)
        delivery_attempt(delivery_id=webhooks.endpoint_ping(endpoint=endpoint).deliveries.get().pk)
        endpoint.refresh_from_db()
        assert endpoint.enabled and endpoint.failing_since is not None
        delivery_attempt(delivery_id=webhooks.endpoint_ping(endpoint=endpoint).deliveries.get().pk)  # a success
        endpoint.refresh_from_db()
        assert endpoint.failing_since is None
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=timezone.now() - timedelta(days=3, seconds=1))
        event = webhooks.endpoint_ping(endpoint=endpoint)
        delivery_attempt(delivery_id=event.deliveries.get().pk)
        endpoint.refresh_from_db()
        assert not endpoint.enabled and event.deliveries.get().attempts == 1
        assert OperatorAlert.objects.filter(kind="webhook", message__contains=endpoint.pk).exists()
    finally:
        failing.server.shutdown()


@pytest.mark.django_db
def test_a_balance_funded_transfer_tells_its_creation_funding_and_the_balance_debit(api, partner, pricing):
    """Funded from the prefunded balance in the creating request: `transfer.created`, `transfer.funded` and a
    `balance.movement` of kind `funding` for the amount debited, all in that request's transaction."""
    from tests.payments.test_balances import body, quote_for

    balance_topup(partner=partner, currency="RUB", amount=Decimal("20000.00"), reference="BANK-9")
    quote = quote_for(api)
    response = api.post("/api/v1/transfers", body(quote["id"]), format="json", HTTP_IDEMPOTENCY_KEY="bal-1")
    assert response.status_code == 201, response.content
    types = list(WebhookEvent.objects.filter(partner=partner).order_by("id").values_list("type", "payload"))
    assert [t for t, _ in types] == ["balance.movement", "transfer.created", "transfer.funded", "balance.movement"]
    funding = types[-1][1]
    assert funding["kind"] == "funding" and funding["transfer_id"] == response.json()["id"]
    assert funding["amount_minor"] == -1500000 and funding["balance_after_minor"] == 2000000 - 1500000


@pytest.mark.django_db
def test_https_goes_to_the_checked_address_with_the_certificate_checked_for_the_urls_host(partner, settings, tmp_path):
    """Over https the connection is pinned to the checked address while TLS still verifies the certificate against
    the URL's host name (SNI): a certificate for `localhost` is accepted at https://localhost, one for another name
    is refused (and nothing is delivered)."""
    certfile, keyfile = webhook_receiver.self_signed(tmp_path, "localhost")
    secure = webhook_receiver.start(tls=(certfile, keyfile))
    wrong_cert, wrong_key = webhook_receiver.self_signed(tmp_path, "elsewhere.example")
    impostor = webhook_receiver.start(tls=(wrong_cert, wrong_key))
    try:
        settings.WEBHOOK_CA_FILE = certfile
        endpoint, secret = webhooks.endpoint_create(partner=partner, url=secure.url.replace("127.0.0.1", "localhost"))
        attempt = delivery_attempt(delivery_id=webhooks.endpoint_ping(endpoint=endpoint).deliveries.get().pk)
        assert attempt.status_code == 200, attempt.error
        [request] = secure.received()
        assert request.headers["host"] == f"localhost:{secure.port()}" and verify(secret, request)

        settings.WEBHOOK_CA_FILE = wrong_cert
        other, _ = webhooks.endpoint_create(partner=partner, url=impostor.url.replace("127.0.0.1", "localhost"))
        attempt = delivery_attempt(delivery_id=webhooks.endpoint_ping(endpoint=other).deliveries.get().pk)
        assert attempt.status_code is None and "CERTIFICATE_VERIFY_FAILED" in attempt.error, attempt.error
        assert impostor.received() == []
    finally:
        secure.server.shutdown()
        impostor.server.shutdown()


@pytest.mark.parametrize(("header", "expected"), [("30", 30), ("²", None), ("9" * 5000, 999_999_999), ("-5", None),
                                                  ("soon", None)])
def test_a_hostile_retry_after_never_breaks_a_delivery(header, expected):
    """Retry-After is the receiver's to write: a non-ASCII digit, a 5,000-digit number or garbage gives a bounded
    number or none, never an exception that would leave the delivery unrecorded."""
    from payments.services.webhook_delivery import _retry_after

    assert _retry_after({"Retry-After": header}, timezone.now()) == expected


def test_events_in_a_read_once_block_share_one_endpoint_read_and_a_rolled_back_savepoint_takes_its_own(partner):
    """endpoints_read_once (a transfer's creation): the partner's endpoints are read by the first event only, each
    event is still written when it happens, so one recorded in a savepoint that rolls back is gone while those around
    it commit, each with its delivery."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    endpoint = WebhookEndpoint.objects.create(partner=partner, url="https://partner.example/hooks")
    with CaptureQueriesContext(connection) as queries, transaction.atomic(), webhooks.endpoints_read_once():
        webhooks.event_record(partner=partner, type="transfer.created", payload={"n": 1})
        with pytest.raises(RuntimeError), transaction.atomic():
            webhooks.event_record(partner=partner, type="transfer.funded", payload={"n": 2})
            raise RuntimeError("a step inside the block fails and its caller carries on")
        webhooks.events_record(records=[(partner, "balance.movement", "", {"n": 3})])
    reads = [q for q in queries.captured_queries if q["sql"].startswith('SELECT "payments_webhookendpoint"')]
    assert len(reads) == 1
    kept = WebhookEvent.objects.filter(partner=partner, payload__has_key="n").order_by("id")
    assert [e.payload["n"] for e in kept] == [1, 3]
    assert sorted(WebhookDelivery.objects.filter(event__in=kept).values_list("endpoint_id", flat=True)) == [
        endpoint.pk, endpoint.pk]
    # Outside such a block every event reads the endpoints again (one endpoint added since is seen).
    other = WebhookEndpoint.objects.create(partner=partner, url="https://partner.example/other")
    event = webhooks.event_record(partner=partner, type="transfer.created", payload={"n": 4})
    assert set(WebhookDelivery.objects.filter(event=event).values_list("endpoint_id", flat=True)) == {endpoint.pk,
                                                                                                     other.pk}
