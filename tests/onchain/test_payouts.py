"""Settlement on a real anvil: nonces under the wallet lock, signed bytes stored before broadcast,
rebroadcast of identical bytes, finality after the configured confirmations, ceilings and halts."""

import os
from decimal import Decimal

import pytest
from eth_account import Account

from onchain.errors import WalletHalted
from onchain.models import ChainTransaction, HotWallet, Payout
from onchain.services import payouts
from onchain.signer import signer_for
from tests.conftest import new_recipient, token_balance, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


class RecordingListener:
    """Stands in for payments: records what onchain reports (the narrow interface under test)."""

    final, failed = [], []

    @classmethod
    def payout_final(cls, *, reference, tx_hash):
        cls.final.append((reference, tx_hash))

    @classmethod
    def payout_failed(cls, *, reference, reason):
        cls.failed.append((reference, reason))


@pytest.fixture(autouse=True)
def listener(settings):
    settings.ONCHAIN_PAYOUT_LISTENER = "tests.onchain.test_payouts.RecordingListener"
    RecordingListener.final, RecordingListener.failed = [], []
    return RecordingListener


def _queue(reference, amount="12.34", to=None):
    return payouts.payout_request(reference=reference, to_address=to or new_recipient(), amount=Decimal(amount))


def _track_until_final(payout, timeout=30):
    def done():
        payouts.payouts_track()
        payout.refresh_from_db()
        return payout.status == Payout.Status.CONFIRMED
    wait_for(done, timeout=timeout, interval=0.5, what=f"payout {payout.reference} to be final")


def test_payout_pays_exact_base_units_and_is_final_only_after_confirmations(chain, listener):
    """A payout moves exactly amount × 10^decimals to the recipient and is reported final only when its
    block is `confirmations` deep, once."""
    token, w3 = chain["token"], chain["w3"]
    payout = _queue("ref-exact", amount="1234.56")
    payouts.payout_submit(payout_id=payout.id)
    payout.refresh_from_db()
    assert payout.status == Payout.Status.SUBMITTED
    tx = payout.transaction
    w3.eth.wait_for_transaction_receipt(tx.tx_hash, timeout=10, poll_latency=0.2)
    payouts.payouts_track()
    tx.refresh_from_db()
    head = w3.eth.block_number
    if head - tx.block_number + 1 < chain["chain"].confirmations:
        assert listener.final == []  # mined but not deep enough: not final yet
    _track_until_final(payout)
    assert token_balance(token, payout.to_address) == 123456 * 10**16
    assert listener.final == [("ref-exact", tx.tx_hash)]
    tx.refresh_from_db()
    assert tx.status == ChainTransaction.Status.FINAL
    assert w3.eth.block_number - tx.block_number + 1 >= chain["chain"].confirmations
    payouts.payouts_track()
    assert len(listener.final) == 1


def test_one_payout_per_reference(chain):
    """Requesting the same reference twice returns the first payout; the amount cannot change."""
    first = _queue("ref-once", amount="5.00")
    second = _queue("ref-once", amount="999.00")
    assert first.pk == second.pk
    assert Payout.objects.count() == 1
    assert Payout.objects.get().amount_base_units == 5 * 10**18


def test_nonces_are_consecutive_and_stored_before_broadcast(chain):
    """Each signed transaction takes the wallet's next nonce under its row lock; the raw bytes and hash are
    stored, and the hash is keccak of those bytes."""
    from eth_utils import keccak

    start = chain["w3"].eth.get_transaction_count(chain["wallet"].address, "pending")
    created = [_queue(f"ref-nonce-{i}") for i in range(3)]
    for p in created:
        payouts._sign_and_store(Payout.objects.select_related("wallet__chain", "token").get(pk=p.pk))
    txs = list(ChainTransaction.objects.order_by("nonce"))
    assert [t.nonce for t in txs] == [start, start + 1, start + 2]
    assert all("0x" + keccak(bytes(t.raw_tx)).hex() == t.tx_hash for t in txs)
    assert all(t.status == ChainTransaction.Status.SIGNED for t in txs)
    assert HotWallet.objects.get().next_nonce == start + 3


def test_crash_after_store_before_broadcast_is_recovered_with_identical_bytes(chain):
    """A worker that dies after committing the signed transaction but before sending it loses nothing:
    the tracker sends the stored bytes, and the mined transaction is that exact hash."""
    payout = _queue("ref-crash", amount="7.00")
    payouts._sign_and_store(Payout.objects.select_related("wallet__chain", "token").get(pk=payout.pk))
    stored = ChainTransaction.objects.get()
    assert chain["w3"].eth.get_transaction_count(chain["wallet"].address, "pending") == stored.nonce  # nothing sent
    _track_until_final(payout)
    receipt = chain["w3"].eth.get_transaction_receipt(stored.tx_hash)
    assert receipt["status"] == 1
    assert ChainTransaction.objects.count() == 1
    assert token_balance(chain["token"], payout.to_address) == 7 * 10**18


def test_rebroadcast_is_harmless(chain):
    """Submitting again and broadcasting the same bytes again ('already known' or 'nonce too low' for our
    own hash) neither fails nor pays twice."""
    payout = _queue("ref-twice", amount="3.00")
    payouts.payout_submit(payout_id=payout.id)
    payouts.payout_submit(payout_id=payout.id)
    tx = ChainTransaction.objects.get()
    payouts.tx_broadcast(tx=tx)
    chain["w3"].eth.wait_for_transaction_receipt(tx.tx_hash, timeout=10, poll_latency=0.2)
    payouts.tx_broadcast(tx=tx)  # already mined: the node says "nonce too low", our hash is known
    _track_until_final(payout)
    assert ChainTransaction.objects.count() == 1
    assert token_balance(chain["token"], payout.to_address) == 3 * 10**18


def test_ceiling_fails_payout_before_signing(chain, listener):
    """A payout above the wallet's per-transaction ceiling is never signed; the caller is told it failed."""
    HotWallet.objects.update(max_payout_base_units=10 * 10**18)
    payout = _queue("ref-big", amount="10.01")
    payouts.payout_submit(payout_id=payout.id)
    payout.refresh_from_db()
    assert payout.status == Payout.Status.FAILED
    assert ChainTransaction.objects.count() == 0
    assert listener.failed == [("ref-big", "exceeds the hot wallet's per-transaction ceiling")]


def test_halted_wallet_signs_nothing(chain):
    """A halted wallet refuses to sign; the payout stays queued for when an operator resumes it."""
    HotWallet.objects.update(halted=True, halt_reason="reconciliation mismatch")
    payout = _queue("ref-halt")
    with pytest.raises(WalletHalted):
        payouts.payout_submit(payout_id=payout.id)
    payout.refresh_from_db()
    assert payout.status == Payout.Status.QUEUED
    assert ChainTransaction.objects.count() == 0


def test_hot_wallet_key_never_reaches_the_database_or_repr(chain):
    """The key lives only in the environment: not in any stored row, not in the signer's repr."""
    key = os.environ["HOT_WALLET_PRIVATE_KEY"]
    payout = _queue("ref-key")
    payouts.payout_submit(payout_id=payout.id)
    needle = key.removeprefix("0x").lower()
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT row_to_json(w)::text FROM onchain_hotwallet w UNION ALL "
                       "SELECT row_to_json(t)::text FROM onchain_chaintransaction t UNION ALL "
                       "SELECT row_to_json(p)::text FROM onchain_payout p")
        rows = " ".join(r[0] for r in cursor.fetchall()).lower()
    assert rows and needle not in rows
    assert needle not in repr(signer_for("HOT_WALLET_PRIVATE_KEY")).lower()
    assert Account.from_key(key).address == chain["wallet"].address
