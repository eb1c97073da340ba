"""Issue 7, item 3 (engine side): a batch that reverts because of one recipient costs that recipient's payout only.

BatchPayout pays all or nothing. When a mined batch reverts (here: the token's issuer blacklisted a recipient after
its transfer was accepted, as USDC/USDT/A7A5-style stablecoins can), the tracker, once the reverted block is final,
simulates the batch at the latest state (`eth_call` of `payout()` from the hot wallet; the contract names the first
entry that fails) and each failing entry alone (`eth_call` of the token's `transfer` from the batch contract, beside
a control address). A payout the token refuses on its own is a culprit: it fails (its transfer goes to
`settlement_failed` through the payments listener). The others go back to the queue (`mark_requeued`, allowed only
for payouts of a reverted batch) and are paid in a new batch, exactly once: the reverted transaction spent its
nonce and paid nothing, so nothing of the old batch can ever pay. A revert no single payout explains (gas, a short
float) re-queues nothing: every payout fails and an operator decides, as before.

Real anvil, real KGSTWithBlacklist and BatchPayout, real payments pipeline (localstripe funding), no mocks.
"""

from collections import Counter
from decimal import Decimal

import pytest

from onchain import client
from onchain.models import Batch, OperatorAlert, Payout, Token
from onchain.services import tracking
from onchain.services.payout_call import payout_entries
from payments import pipeline
from payments.models import JournalEntry, Transfer
from payments.providers import stripe_rail
from payments.services.quotes import quote_create
from payments.services.transfers import transfer_create
from tests.conftest import new_recipient, pay_on_stripe, wait_for
from tests.onchain.faults import transfer_logs
from tests.onchain.helpers import build, send
from tests.security.helpers import blacklist, use_blacklist_token

pytestmark = pytest.mark.django_db

OPEN = (Batch.Status.SIGNED, Batch.Status.BROADCAST, Batch.Status.MINED)


def settling_transfers(n):
    """n transfers through the real pipeline: created (recipient checked), paid on localstripe, funded, screened
    clear, their payouts queued. Amounts differ (15,000.00 RUB + 100 × i), recipients are fresh EOAs."""
    transfers = []
    for i in range(n):
        quote = quote_create(source_currency="RUB", source_amount=Decimal(15000 + 100 * i), partner=None)
        transfer, _ = transfer_create(
            partner=None, idempotency_key=str(quote.id), fingerprint=str(quote.id), quote_id=quote.id,
            sender={"name": "Aibek Usenov", "phone": "+79161234567", "email": "aibek@example.com"},
            recipient={"name": f"Recipient {i}", "phone": "+996555123456", "wallet_address": new_recipient()})
        pay_on_stripe(transfer.payment_intent_id)
        pipeline.transfer_mark_funded(payment_intent=stripe_rail.payment_intent_retrieve(transfer.payment_intent_id))
        pipeline.transfer_advance(transfer_id=transfer.pk)
        transfer.refresh_from_db()
        assert transfer.status == Transfer.Status.SETTLING
        transfers.append(transfer)
    return transfers


def settle(chain, timeout=90):
    """Build, send and track until nothing is queued or in flight (what the beat tasks do, in this process)."""
    token = chain["token"]

    def done():
        send(build(token))
        tracking.chain_track(chain_id=chain["chain"].pk)
        return (not Batch.objects.filter(status__in=OPEN).exists()
                and not Payout.objects.filter(status=Payout.Status.QUEUED).exists())

    wait_for(done, timeout=timeout, interval=0.3, what="every payout to be settled or failed")


def payout_of(transfer):
    return Payout.objects.get(reference=str(transfer.pk))


def logs_per_recipient(token):
    return Counter(to for to, _amount in transfer_logs(token))


def reverted_batch(chain):
    """The one reverted batch: its receipt says status 0 and its gas is recorded on the mined attempt."""
    batch = Batch.objects.select_related("mined_tx").get(status=Batch.Status.REVERTED)
    receipt = chain["w3"].eth.get_transaction_receipt(batch.mined_tx.tx_hash)
    assert receipt["status"] == 0
    assert batch.succeeded is False
    assert batch.mined_tx.gas_used == receipt["gasUsed"] > 21_000
    return batch, receipt


def call_entries(batch):
    """The (recipient, amount) entries of the batch's call, in its order."""
    _fn, args = client.batch_payout(batch.token.batch_contract).decode_function_input(bytes(batch.mined_tx.data))
    return payout_entries(args["unit"], args["width"], args["packed"])


@pytest.fixture
def blacklist_token(chain, pricing, stripe_server):
    return use_blacklist_token(chain)


@pytest.mark.parametrize(("n", "culprits"), [
    pytest.param(6, [0], id="culprit-first"),
    pytest.param(6, [3], id="culprit-in-the-middle"),
    pytest.param(6, [5], id="culprit-last"),
    pytest.param(6, [0, 5], id="two-culprits-first-and-last"),
    pytest.param(6, [1, 2], id="two-culprits-side-by-side"),
])
def test_a_blacklisted_recipient_fails_alone_and_the_rest_is_paid_once(chain, blacklist_token, n, culprits):
    """The batch reverts on chain because of the blacklisted recipient(s); the culprits fail (transfers
    settlement_failed through the listener, with the reason); every other payout is re-queued once, paid in one new
    batch, exactly once by the chain's Transfer logs, and its transfer completes with its ledger entry. The
    reverted batch keeps its gas (recorded on its mined attempt), its batch id stays unpaid on the contract, and
    an operator is alerted."""
    token_contract, batch_contract = blacklist_token
    w3, token = chain["w3"], chain["token"]
    transfers = settling_transfers(n)
    for i in culprits:
        blacklist(w3, token_contract, transfers[i].recipient_wallet)  # after acceptance: the issuer froze it

    settle(chain)

    reverted, receipt = reverted_batch(chain)
    assert reverted.count == n
    entries = call_entries(reverted)
    for i in culprits:  # the scenario is what its name says: the culprit's position in the reverted call
        payout = payout_of(transfers[i])
        assert entries[i] == (payout.to_address.lower(), payout.amount_base_units)
    assert batch_contract.functions.paid(bytes.fromhex(reverted.onchain_id[2:])).call() is False
    print(f"\nreverted batch of {n} ({len(culprits)} culprit(s) at {culprits}): {receipt['gasUsed']:,} gas "
          f"(limit {reverted.mined_tx.gas_limit:,})")

    paid_batches = list(Batch.objects.filter(status=Batch.Status.FINAL).select_related("mined_tx"))
    assert [b.count for b in paid_batches] == [n - len(culprits)]
    (rebatch,) = paid_batches
    assert rebatch.onchain_id != reverted.onchain_id and rebatch.nonce == reverted.nonce + 1
    assert batch_contract.functions.paid(bytes.fromhex(rebatch.onchain_id[2:])).call() is True
    print(f"re-queued batch of {rebatch.count}: {rebatch.mined_tx.gas_used:,} gas")

    logs = logs_per_recipient(token)
    for i, transfer in enumerate(transfers):
        transfer.refresh_from_db()
        payout = payout_of(transfer)
        recipient = transfer.recipient_wallet.lower()
        if i in culprits:
            assert payout.status == Payout.Status.FAILED
            assert payout.requeues == 0 and payout.batch_id == reverted.pk
            assert "token refuses transfers to" in payout.failure_reason, payout.failure_reason
            assert transfer.status == Transfer.Status.SETTLEMENT_FAILED
            assert transfer.failure_reason == payout.failure_reason
            assert logs[recipient] == 0
            assert not JournalEntry.objects.filter(transfer=transfer, kind="payout").exists()
        else:
            assert payout.status == Payout.Status.CONFIRMED
            assert payout.requeues == 1 and payout.batch_id == rebatch.pk
            assert transfer.status == Transfer.Status.COMPLETED
            assert logs[recipient] == 1
            assert token_contract.functions.balanceOf(payout.to_address).call() == payout.amount_base_units
            assert JournalEntry.objects.filter(transfer=transfer, kind="payout").count() == 1
    alert = OperatorAlert.objects.get(kind="reconciliation", message__contains=str(reverted.pk))
    assert f"gas used {receipt['gasUsed']}" in alert.message

    # Further passes change nothing: the reverted batch is settled once.
    tracking.chain_track(chain_id=chain["chain"].pk)
    assert Batch.objects.count() == 2
    assert sum(logs_per_recipient(token).values()) == n - len(culprits)


def test_every_payout_a_culprit_leaves_nothing_to_requeue(chain, blacklist_token):
    """When every recipient of the batch is blacklisted, every payout fails and no new batch is signed."""
    token_contract, _batch = blacklist_token
    transfers = settling_transfers(2)
    for transfer in transfers:
        blacklist(chain["w3"], token_contract, transfer.recipient_wallet)
    settle(chain)
    reverted_batch(chain)
    assert Batch.objects.count() == 1
    assert set(Payout.objects.values_list("status", flat=True)) == {Payout.Status.FAILED}
    assert set(Transfer.objects.values_list("status", flat=True)) == {Transfer.Status.SETTLEMENT_FAILED}
    assert transfer_logs(chain["token"]) == []


def test_a_short_float_is_not_blamed_on_a_recipient(chain, blacklist_token):
    """The float covers every payout alone but not the batch: the contract names the last entry, yet that payout
    pays fine on its own, so no recipient is to blame. Nothing is re-queued (it would only revert again): every
    payout fails with a reason that says so, and an operator is alerted, as before this change."""
    token_contract, batch_contract = blacklist_token
    w3, owner = chain["w3"], chain["w3"].eth.accounts[0]
    transfers = settling_transfers(3)
    total = sum(payout_of(t).amount_base_units for t in transfers)
    held = token_contract.functions.balanceOf(batch_contract.address).call()
    w3.eth.wait_for_transaction_receipt(batch_contract.functions.withdraw(owner, held - (total - 1)).transact(
        {"from": owner}))
    settle(chain)
    reverted, receipt = reverted_batch(chain)
    print(f"\nreverted batch of 3 (float short by 1 base unit): {receipt['gasUsed']:,} gas")
    assert Batch.objects.count() == 1
    reasons = set(Payout.objects.values_list("failure_reason", flat=True))
    assert Payout.objects.filter(status=Payout.Status.FAILED, requeues=0).count() == 3
    assert len(reasons) == 1 and "no single payout" in reasons.pop()
    assert set(Transfer.objects.values_list("status", flat=True)) == {Transfer.Status.SETTLEMENT_FAILED}
    recipients = {t.recipient_wallet.lower() for t in transfers}
    assert [to for to, _amount in transfer_logs(chain["token"]) if to in recipients] == []  # (the withdraw is not)
    alert = OperatorAlert.objects.get(kind="reconciliation", message__contains=str(reverted.pk))
    assert "0 re-queued, 3 failed: no single payout explains it" in alert.message


def test_a_batch_out_of_gas_is_not_blamed_on_a_recipient(chain, blacklist_token, settings):
    """A gas limit too low for the batch reverts it on chain; every payout simulates fine, so nobody is a culprit
    and nothing is re-queued with the same too-low limit: all fail, the alert gives the gas used and the limit."""
    settings.BATCH_GAS_PER_PAYOUT = 1_000  # the fallback, used since the token's own figure is unset
    Token.objects.filter(pk=chain["token"].pk).update(gas_per_payout=None)
    settling_transfers(3)
    settle(chain)
    reverted, receipt = reverted_batch(chain)
    print(f"\nreverted batch of 3 out of gas: {receipt['gasUsed']:,} of {reverted.mined_tx.gas_limit:,} gas")
    assert Batch.objects.count() == 1
    assert Payout.objects.filter(status=Payout.Status.FAILED, requeues=0).count() == 3
    alert = OperatorAlert.objects.get(kind="reconciliation", message__contains=str(reverted.pk))
    assert f"gas used {receipt['gasUsed']} of {reverted.mined_tx.gas_limit}" in alert.message
    assert transfer_logs(chain["token"]) == []


def test_with_batching_off_the_refused_transfer_fails_alone_with_the_tokens_reason(chain, blacklist_token, settings):
    """Without the batch contract each payout is its own token transfer from the hot wallet: the one to the
    blacklisted recipient reverts and fails with the token's refusal as its reason; the other is paid once."""
    settings.SETTLEMENT_BATCHING = False
    token_contract, _batch = blacklist_token
    bad, good = settling_transfers(2)
    blacklist(chain["w3"], token_contract, bad.recipient_wallet)
    settle(chain)
    reverted, receipt = reverted_batch(chain)
    print(f"\nreverted single transfer: {receipt['gasUsed']:,} gas")
    assert reverted.mode == Batch.Mode.SINGLE
    assert "token refuses transfers to" in payout_of(bad).failure_reason
    assert payout_of(good).status == Payout.Status.CONFIRMED and payout_of(good).requeues == 0
    bad.refresh_from_db()
    good.refresh_from_db()
    assert (bad.status, good.status) == (Transfer.Status.SETTLEMENT_FAILED, Transfer.Status.COMPLETED)
    logs = logs_per_recipient(chain["token"])
    assert (logs[bad.recipient_wallet.lower()], logs[good.recipient_wallet.lower()]) == (0, 1)


def test_requeue_is_refused_for_payouts_of_a_batch_that_did_not_revert(chain):
    """`mark_requeued` moves only batched payouts of a reverted batch: a payout in a live or final batch, or a
    failed one, stays where it is (putting it back could pay it twice)."""
    from tests.onchain.helpers import queue

    queue("live", amount="1.00")
    (batch,) = build(chain["token"])
    assert Payout.objects.filter(reference="live").mark_requeued() == 0
    assert Payout.objects.get(reference="live").status == Payout.Status.BATCHED
    Payout.objects.filter(reference="live").mark_failed("operator")
    assert Payout.objects.filter(reference="live").mark_requeued() == 0
    assert Payout.objects.get(reference="live").status == Payout.Status.FAILED
    assert batch.status == Batch.Status.SIGNED


def test_the_same_blacklisted_recipient_twice_in_a_batch_fails_both_and_pays_the_rest(chain, blacklist_token):
    """Two payouts to one blacklisted recipient (same word twice in the call) and two clean ones: both of the
    recipient's fail, the clean ones are re-queued and paid once each (engine level, recorded listener)."""
    from tests.onchain.helpers import queue, recording_listener

    token_contract, _batch = blacklist_token
    listed = new_recipient()
    with recording_listener() as heard:
        bad = [queue("bad-1", amount="7.00", to=listed), queue("bad-2", amount="7.00", to=listed)]
        good = [queue("good-1", amount="7.00"), queue("good-2", amount="8.00")]
        blacklist(chain["w3"], token_contract, listed)
        settle(chain)
    reverted_batch(chain)
    assert sorted(r for r, _reason in heard.failed) == ["bad-1", "bad-2"]
    assert sorted(r for r, _tx in heard.final) == ["good-1", "good-2"]
    logs = logs_per_recipient(chain["token"])
    assert logs[listed.lower()] == 0
    assert all(logs[p.to_address.lower()] == 1 for p in good)
    assert {Payout.objects.get(pk=p.pk).status for p in bad} == {Payout.Status.FAILED}
