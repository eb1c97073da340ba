"""The sandbox: test keys (tlp_test_…) make test quotes and transfers that never reach Stripe, the ledger, the
limits or the chain; magic amounts and the simulate endpoint move them through the guarded transitions; test and
live objects never see each other on any endpoint."""

import uuid
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from onchain.models import Payout
from payments import pipeline
from payments.models import JournalEntry, LimitReservation, Partner, Quote, Transfer
from payments.services.api_keys import api_key_create
from tests.conftest import QUOTE_BODY
from tests.payments.test_api import assert_problem, stripe_intents, transfer_body

pytestmark = pytest.mark.django_db
S = Transfer.Status


def client_for(raw):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


@pytest.fixture
def keys(db, pricing, stripe_server):
    """One partner's live and test clients."""
    partner = Partner.objects.create(name="sandboxer")
    live = client_for(api_key_create(partner=partner)[1])
    test = client_for(api_key_create(partner=partner, livemode=False)[1])
    return live, test


def make_transfer(client, amount="15000.00", key=None):
    quote = client.post("/api/v1/quotes", {**QUOTE_BODY, "source_amount": amount}, format="json")
    assert quote.status_code == 201, quote.content
    response = client.post("/api/v1/transfers", transfer_body(quote.json()["id"]), format="json",
                           HTTP_IDEMPOTENCY_KEY=key or str(uuid.uuid4()))
    assert response.status_code == 201, response.content
    return response.json()


def simulate(client, transfer_id, event):
    return client.post(f"/api/v1/sandbox/transfers/{transfer_id}/simulate", {"event": event}, format="json")


def assert_nothing_real(ids):
    """No PaymentIntent, no ledger entry, no limit reservation, no on-chain payout for these transfers."""
    transfers = Transfer.objects.filter(pk__in=ids)
    assert transfers.count() == len(ids)
    assert not transfers.exclude(payment_intent_id="").exists()
    assert not JournalEntry.objects.filter(transfer__in=ids).exists()
    assert not LimitReservation.objects.filter(transfer__in=ids).exists()
    assert not Payout.objects.filter(reference__in=[str(i) for i in ids]).exists()


def test_a_test_transfer_never_reaches_stripe_the_ledger_the_limits_or_the_chain(keys):
    """A test key's quote and transfer carry livemode false; the transfer waits for funding with no PaymentIntent
    at Stripe and nothing posted or reserved; the sweeper leaves it alone."""
    _, test = keys
    transfer = make_transfer(test)
    assert transfer["livemode"] is False and transfer["quote"]["livemode"] is False
    assert transfer["status"] == S.AWAITING_FUNDING
    assert stripe_intents() == []
    pipeline.transfers_sweep()
    assert stripe_intents() == []
    assert_nothing_real([transfer["id"]])


@pytest.mark.parametrize(("amount", "status"), [
    ("15000.01", S.FUNDED), ("15000.02", S.HELD), ("15000.03", S.REJECTED), ("15000.00", S.AWAITING_FUNDING),
    ("15000.04", S.AWAITING_FUNDING)])
def test_magic_amounts_move_a_test_transfer_at_creation(keys, amount, status):
    """The source amount's cents: .01 funded, .02 held for review, .03 failed (rejected); others wait. A funded one
    is never screened or paid out by the sweeper."""
    _, test = keys
    transfer = make_transfer(test, amount)
    assert transfer["status"] == status
    pipeline.transfers_sweep()
    pipeline.transfer_advance(transfer_id=transfer["id"])
    assert Transfer.objects.get(pk=transfer["id"]).status == status
    assert stripe_intents() == []
    assert_nothing_real([transfer["id"]])


def test_magic_amounts_mean_nothing_to_a_live_key(keys):
    """A live transfer of 15000.01 is an ordinary card transfer: awaiting funding with its PaymentIntent."""
    live, _ = keys
    transfer = make_transfer(live, "15000.01")
    assert transfer["livemode"] is True and transfer["status"] == S.AWAITING_FUNDING
    assert Transfer.objects.get(pk=transfer["id"]).payment_intent_id


@pytest.mark.parametrize(("event", "status"), [
    ("funded", S.FUNDED), ("held", S.HELD), ("failed", S.REJECTED), ("completed", S.COMPLETED)])
def test_simulate_moves_a_waiting_test_transfer_by_each_event(keys, event, status):
    """POST /sandbox/transfers/{id}/simulate answers the transfer in its new status; nothing real happens."""
    _, test = keys
    transfer = make_transfer(test)
    response = simulate(test, transfer["id"], event)
    assert response.status_code == 200, response.content
    assert response.json()["status"] == status and response.json()["livemode"] is False
    assert Transfer.objects.get(pk=transfer["id"]).status == status
    if event == "completed":
        assert response.json()["completed_at"]
    assert_nothing_real([transfer["id"]])


def test_simulate_walks_a_transfer_through_every_state_a_live_one_takes(keys):
    """funded → held → completed, one call each, as a partner builds against each webhook-worthy state."""
    _, test = keys
    transfer = make_transfer(test)
    assert [simulate(test, transfer["id"], e).json()["status"] for e in ("funded", "held", "completed")] == [
        S.FUNDED, S.HELD, S.COMPLETED]


@pytest.mark.parametrize(("amount", "event"), [
    ("15000.01", "funded"), ("15000.02", "funded"), ("15000.03", "completed"), ("15000.03", "held")])
def test_an_impossible_move_is_409_and_changes_nothing(keys, amount, event):
    """A move its status does not allow (funded twice; a rejected transfer completed or held): 409 problem
    `sandbox-move-refused`, the transfer as it was."""
    _, test = keys
    transfer = make_transfer(test, amount)
    before = Transfer.objects.get(pk=transfer["id"])
    assert_problem(simulate(test, transfer["id"], event), 409, "sandbox-move-refused", "event")
    after = Transfer.objects.get(pk=transfer["id"])
    assert (after.status, after.updated_at) == (before.status, before.updated_at)


def test_completed_is_final(keys):
    """Once completed, every event is refused (409)."""
    _, test = keys
    transfer = make_transfer(test)
    simulate(test, transfer["id"], "completed")
    for event in ("funded", "held", "failed", "completed"):
        assert_problem(simulate(test, transfer["id"], event), 409, "sandbox-move-refused")


def test_simulate_with_a_live_key_is_refused_and_changes_nothing(keys):
    """A live key: 403 `sandbox-live-key` for its own live transfer and for a test transfer alike; both unchanged."""
    live, test = keys
    live_transfer = make_transfer(live)
    test_transfer = make_transfer(test)
    for transfer_id in (live_transfer["id"], test_transfer["id"], str(uuid.uuid4())):
        assert_problem(simulate(live, transfer_id, "funded"), 403, "sandbox-live-key")
    assert Transfer.objects.get(pk=live_transfer["id"]).status == S.AWAITING_FUNDING
    assert Transfer.objects.get(pk=test_transfer["id"]).status == S.AWAITING_FUNDING
    assert not JournalEntry.objects.exists()


def test_simulate_on_a_live_transfer_or_another_partners_is_not_found(keys):
    """A test key cannot move a live transfer (404, no hint), nor another partner's test transfer."""
    live, test = keys
    live_transfer = make_transfer(live)
    other = Partner.objects.create(name="other-sandboxer")
    other_test = client_for(api_key_create(partner=other, livemode=False)[1])
    theirs = make_transfer(other_test)
    assert_problem(simulate(test, live_transfer["id"], "funded"), 404)
    assert_problem(simulate(test, theirs["id"], "funded"), 404)
    assert Transfer.objects.get(pk=live_transfer["id"]).status == S.AWAITING_FUNDING
    assert Transfer.objects.get(pk=theirs["id"]).status == S.AWAITING_FUNDING


def test_an_unknown_event_is_400(keys):
    _, test = keys
    transfer = make_transfer(test)
    assert_problem(simulate(test, transfer["id"], "refunded"), 400, "validation-error", "event")
    assert Transfer.objects.get(pk=transfer["id"]).status == S.AWAITING_FUNDING


def test_live_and_test_objects_never_mix_on_any_endpoint(keys):
    """List, detail, cancel: each key sees only its own mode's transfers (the other's are 404); a quote from one mode
    cannot back a transfer in the other (404 quote-not-found, nothing created); a test key sees no balances."""
    live, test = keys
    live_transfer = make_transfer(live)
    test_transfer = make_transfer(test)
    for client, mine, theirs in ((live, live_transfer, test_transfer), (test, test_transfer, live_transfer)):
        listed = [t["id"] for t in client.get("/api/v1/transfers").json()["results"]]
        assert listed == [mine["id"]]
        assert client.get(f"/api/v1/transfers/{mine['id']}").status_code == 200
        assert_problem(client.get(f"/api/v1/transfers/{theirs['id']}"), 404)
        assert_problem(client.post(f"/api/v1/transfers/{theirs['id']}/cancel"), 404)
    assert Transfer.objects.get(pk=live_transfer["id"]).status == S.AWAITING_FUNDING
    assert Transfer.objects.get(pk=test_transfer["id"]).status == S.AWAITING_FUNDING

    count = Transfer.objects.count()
    for maker, user in ((live, test), (test, live)):
        quote = maker.post("/api/v1/quotes", QUOTE_BODY, format="json").json()
        response = user.post("/api/v1/transfers", transfer_body(quote["id"]), format="json",
                             HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()))
        assert_problem(response, 404, "quote-not-found", "quote_id")
    assert Transfer.objects.count() == count
    assert Quote.objects.filter(livemode=False).count() == 2

    assert test.get("/api/v1/balances").json() == {"balances": []}
    assert test.get("/api/v1/balances/RUB/statement").json()["results"] == []


def test_one_idempotency_key_in_both_modes_makes_two_transfers(keys):
    """A sandbox transfer's Idempotency-Key never replays (or blocks) a live request with the same key."""
    live, test = keys
    test_transfer = make_transfer(test, key="order-1")
    live_transfer = make_transfer(live, key="order-1")
    assert test_transfer["id"] != live_transfer["id"]
    assert (test_transfer["livemode"], live_transfer["livemode"]) == (False, True)


def test_cancelling_a_test_transfer_moves_no_money(keys):
    """Waiting: cancelled. Funded: refunded at once, no Stripe refund, nothing posted. Held: refused (409) as in
    production, where a transfer under review is the operators' to cancel."""
    _, test = keys
    waiting = make_transfer(test)
    funded = make_transfer(test, "15000.01")
    held = make_transfer(test, "15000.02")
    assert test.post(f"/api/v1/transfers/{waiting['id']}/cancel").json()["status"] == S.CANCELLED
    assert test.post(f"/api/v1/transfers/{funded['id']}/cancel").json()["status"] == S.REFUNDED
    assert test.post(f"/api/v1/transfers/{held['id']}/cancel").status_code == 409
    assert Transfer.objects.get(pk=held["id"]).status == S.HELD
    pipeline.transfers_sweep()
    assert Transfer.objects.get(pk=funded["id"]).status == S.REFUNDED
    assert_nothing_real([waiting["id"], funded["id"], held["id"]])


def test_a_test_transfer_is_never_paid_out_even_by_staff(keys):
    """The payout step refuses a sandbox transfer (an operator's release of a held one included)."""
    _, test = keys
    held = make_transfer(test, "15000.02")
    with pytest.raises(Exception, match="sandbox"):
        pipeline.transfer_release(transfer_id=held["id"])
    assert Transfer.objects.get(pk=held["id"]).status == S.HELD
    assert_nothing_real([held["id"]])


def test_a_test_quote_skips_the_float_but_is_priced_as_live(keys):
    """Same price for the same amount in both modes (the sandbox quotes as production does)."""
    live, test = keys
    live_quote = live.post("/api/v1/quotes", QUOTE_BODY, format="json").json()
    test_quote = test.post("/api/v1/quotes", QUOTE_BODY, format="json").json()
    for field in ("source_amount", "target_amount", "fee", "rate"):
        assert Decimal(live_quote[field]) == Decimal(test_quote[field])
    assert (live_quote["livemode"], test_quote["livemode"]) == (True, False)


def test_a_test_transfer_funded_from_the_balance_takes_nothing_from_it(keys):
    """`"funding": {"method": "balance"}` with a test key: created (no balance needed), nothing posted; the partner's
    live balance is untouched (it has none here, which a live transfer would be refused for)."""
    live, test = keys
    quote = test.post("/api/v1/quotes", {**QUOTE_BODY, "source_amount": "15000.01"}, format="json").json()
    response = test.post("/api/v1/transfers", {**transfer_body(quote["id"]), "funding": {"method": "balance"}},
                         format="json", HTTP_IDEMPOTENCY_KEY="balance-1")
    assert response.status_code == 201, response.content
    assert response.json()["status"] == S.FUNDED
    assert_nothing_real([response.json()["id"]])
    live_quote = live.post("/api/v1/quotes", QUOTE_BODY, format="json").json()
    refused = live.post("/api/v1/transfers", {**transfer_body(live_quote["id"]), "funding": {"method": "balance"}},
                        format="json", HTTP_IDEMPOTENCY_KEY="balance-1")
    assert refused.status_code == 409, refused.content
