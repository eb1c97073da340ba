"""The arrival estimate on the status pages (payments/services/eta.py, onchain.api.payout_eta): the median of the
corridor's recent funded→completed times plus today's payout queue, the pipeline's own estimate (batch wait, one
block, the chain's finality depth, the tracker) without history, the position on chain once the payout is on its
way, and nothing where a person or the card network decides."""

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone, translation
from eth_utils import to_checksum_address

from onchain.models import Batch, Chain, ChainTransaction, HotWallet, Payout, Token
from payments.models import Transfer
from payments.services.eta import Eta, corridor_completion_seconds, transfer_eta
from payments.services.quotes import quote_create
from payments.templatetags.status_page import eta_phrase
from tests.helpers import force_status

pytestmark = pytest.mark.django_db

WALLET = to_checksum_address("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed")
S = Transfer.Status


@pytest.fixture
def chain_rows(db, settings):
    """A chain with 1-second blocks and a 2-block finality depth, its KGST with a batch contract; batches wait at
    most 1 s for company, beat passes every 0.5 s. A payout queued now, its wallet idle (fewer than
    BATCH_MAX_IN_FLIGHT batches in flight, so it goes out at once): 0.5 + (2 + 1) × 1 + 0.5 = 4 s."""
    settings.SETTLEMENT_BATCHING, settings.BATCH_MAX_SIZE = True, 200
    settings.BATCH_MAX_AGE_MS, settings.SETTLEMENT_TRACK_MS = 1000, 500
    chain = Chain.objects.create(chain_id=97, name="t", confirmations=2, block_time_ms=1000, head_block=10)
    token = Token.objects.create(chain=chain, symbol="KGST", address=WALLET, decimals=18,
                                 batch_contract=to_checksum_address("0x" + "22" * 20))
    wallet = HotWallet.objects.create(chain=chain, address=to_checksum_address("0x" + "11" * 20))
    return {"chain": chain, "token": token, "wallet": wallet}


def transfer(pricing_currency="RUB", status=S.FUNDED, **fields):
    quote = quote_create(source_currency=pricing_currency,
                         source_amount=Decimal("10000.00") if pricing_currency == "RUB" else Decimal("100.00"),
                         partner=None)
    t = Transfer.objects.create(quote=quote, idempotency_key=str(uuid.uuid4()), request_fingerprint="0" * 64,
                                sender_name="Aibek Usenov", sender_phone="+79161234567", sender_email="a@example.com",
                                recipient_name="Gulnara", recipient_phone="+996555123456", recipient_wallet=WALLET)
    force_status(Transfer.objects.filter(pk=t.pk), status, **fields)
    t.refresh_from_db()
    return t


def history(durations, currency="RUB", **fields):
    """Completed transfers that took these many seconds from funded (or the end of their hold) to completed."""
    now = timezone.now()
    for seconds in durations:
        funded = now - timedelta(hours=2)
        transfer(currency, S.COMPLETED, funded_at=funded, completed_at=funded + timedelta(seconds=seconds), **fields)


def queue(token, count):
    Payout.objects.bulk_create(Payout(reference=f"q-{uuid.uuid4()}", token=token, to_address=WALLET,
                                      amount_base_units=1) for _ in range(count))


def test_without_history_the_pipeline_estimates(pricing, chain_rows):
    """Fewer than three completed transfers in the corridor: the pipeline's own estimate, from the chain's block time
    and finality depth and the batcher's settings."""
    history([600, 600])
    eta = transfer_eta(transfer=transfer(funded_at=timezone.now()))
    assert eta == Eta(seconds=4, basis="pipeline")


def test_history_is_the_median_of_the_corridors_recent_transfers(pricing, chain_rows, django_assert_num_queries):
    """The median (one slow transfer, say a review, does not drag it) of completed live transfers of the same
    corridor, a payout hold left out of each duration; sandbox transfers and other corridors do not count. The
    history is one query."""
    history([20, 30, 50, 3600])
    held_until = timezone.now() - timedelta(minutes=30)
    transfer("RUB", S.COMPLETED, funded_at=held_until - timedelta(hours=1),
             release_after=held_until, completed_at=held_until + timedelta(seconds=25))
    history([5000, 5000, 5000, 5000, 5000, 5000], currency="USD")
    history([1, 1, 1, 1, 1, 1], livemode=False)
    with django_assert_num_queries(1):
        assert corridor_completion_seconds(source_currency="RUB") == 30
    eta = transfer_eta(transfer=transfer(funded_at=timezone.now()))
    assert eta.basis == "history" and 30 <= eta.seconds <= 31


def test_time_already_waited_counts_but_never_below_the_pipeline(pricing, chain_rows):
    """A transfer funded 20 s ago against a 30 s median has about 10 s left; one funded 10 minutes ago (slower than
    usual) is promised no less than the pipeline needs from here."""
    history([30, 30, 30])
    now = timezone.now()
    assert transfer_eta(transfer=transfer(funded_at=now - timedelta(seconds=20)), now=now).seconds == 10
    assert transfer_eta(transfer=transfer(funded_at=now - timedelta(minutes=10)), now=now).seconds == 4


def test_payouts_queued_ahead_add_their_blocks(pricing, chain_rows):
    """400 payouts waiting to be batched (two full batches of 200) add two blocks to the estimate, with or without
    history."""
    queue(chain_rows["token"], 400)
    now = timezone.now()
    assert transfer_eta(transfer=transfer(funded_at=now), now=now) == Eta(seconds=6, basis="pipeline")
    history([30, 30, 30])
    assert transfer_eta(transfer=transfer(funded_at=now), now=now) == Eta(seconds=32, basis="history")


def test_the_wait_for_company_counts_only_while_every_wallet_has_its_batches_in_flight(pricing, chain_rows, settings):
    """Adaptive batching: with a wallet below BATCH_MAX_IN_FLIGHT a payout goes out at once (4 s); once every active
    wallet has that many batches signed or broadcast and not mined, it waits up to BATCH_MAX_AGE_MS for company
    (+1 s). A halted wallet's idleness does not count."""
    settings.BATCH_MAX_IN_FLIGHT = 2
    wallet = chain_rows["wallet"]
    for nonce in range(2):
        Batch.objects.create(token=chain_rows["token"], wallet=wallet, nonce=nonce, mode=Batch.Mode.CONTRACT, count=1,
                             status=Batch.Status.BROADCAST, total_base_units=1)
    now = timezone.now()
    assert transfer_eta(transfer=transfer(funded_at=now), now=now) == Eta(seconds=5, basis="pipeline")
    HotWallet.objects.create(chain=chain_rows["chain"], address=to_checksum_address("0x" + "55" * 20), halted=True)
    assert transfer_eta(transfer=transfer(funded_at=now), now=now) == Eta(seconds=5, basis="pipeline")
    HotWallet.objects.create(chain=chain_rows["chain"], address=to_checksum_address("0x" + "66" * 20))
    assert transfer_eta(transfer=transfer(funded_at=now), now=now) == Eta(seconds=4, basis="pipeline")


def test_a_payout_hold_is_waited_out_first(pricing, chain_rows):
    """A new sender's payout hold ends in 10 minutes: the estimate is the hold plus the usual time after it."""
    history([30, 30, 30])
    now = timezone.now()
    t = transfer(funded_at=now, release_after=now + timedelta(minutes=10))
    assert transfer_eta(transfer=t, now=now).seconds == 630


def _settling(chain_rows, *, batch_status=None, block_number=None, ahead=0):
    token, wallet = chain_rows["token"], chain_rows["wallet"]
    t = transfer(status=S.SETTLING, funded_at=timezone.now(), payout_reference=f"p-{uuid.uuid4()}")
    queue(token, ahead)  # queued before this one
    payout = Payout.objects.create(reference=t.payout_reference, token=token, to_address=WALLET, amount_base_units=1)
    queue(token, 300)  # queued after: not ahead of it
    if batch_status:
        nonce = Batch.objects.count()
        batch = Batch.objects.create(token=token, wallet=wallet, nonce=nonce, mode=Batch.Mode.CONTRACT, count=1,
                                     total_base_units=1)
        ChainTransaction.objects.create(batch=batch, wallet=wallet, nonce=nonce, tx_hash=f"0x{nonce:064x}", raw_tx=b"\x01",
                                        to_address=WALLET, data=b"", gas_limit=1, max_fee_per_gas=1,
                                        max_priority_fee_per_gas=1)
        force_status(Batch.objects.filter(pk=batch.pk), batch_status, block_number=block_number)
        force_status(Payout.objects.filter(pk=payout.pk), Payout.Status.BATCHED, batch=batch)
    return t


def test_a_payout_on_its_way_is_estimated_from_where_it_is_on_chain(pricing, chain_rows):
    """Settling: queued behind 250 others (one full batch ahead) 5 s; signed but not mined, a block plus the depth
    and a tracker pass, 3.5 → 4 s; mined at the head (1 of 2 confirmations), one more block, 1.5 → 2 s."""
    history([600, 600, 600])  # history does not override what the chain says
    assert transfer_eta(transfer=_settling(chain_rows, ahead=250)) == Eta(seconds=5, basis="pipeline")
    Payout.objects.all().delete()
    assert transfer_eta(transfer=_settling(chain_rows, batch_status=Batch.Status.BROADCAST)).seconds == 4
    Payout.objects.all().delete()
    mined = _settling(chain_rows, batch_status=Batch.Status.MINED, block_number=10)
    assert transfer_eta(transfer=mined).seconds == 2


@pytest.mark.parametrize("status", [S.AWAITING_FUNDING, S.HELD, S.COMPLETED, S.AWAITING_PAYOUT_CONFIRMATION,
                                    S.REFUNDING, S.SETTLEMENT_FAILED])
def test_no_estimate_where_a_person_or_nothing_moves_it(pricing, chain_rows, status):
    """Unpaid, under review, waiting on a payout partner, done or stopped: no arrival time is promised."""
    history([30, 30, 30])
    assert transfer_eta(transfer=transfer(status=status, funded_at=timezone.now())) is None


def test_no_estimate_without_a_chain_or_history(pricing):
    """Nothing registered to pay out with and no history: nothing honest to say."""
    assert transfer_eta(transfer=transfer(funded_at=timezone.now())) is None


@pytest.mark.parametrize(("lang", "seconds", "text"), [
    ("en", 37, "Arrives in about 40 seconds"),
    ("en", 130, "Arrives in about 3 minutes"),
    ("en", 60, "Arrives in about 60 seconds"),
    ("en", 4000, "Arrives in about 67 minutes"),
    ("en", 6000, "Arrives in about 2 hours"),
    ("ru", 130, "Поступят примерно через 3 минуты"),
    ("ru", 300, "Поступят примерно через 5 минут"),
    ("ru", 3, "Поступят примерно через 5 секунд"),
    ("ru", 121 * 60, "Поступят примерно через 3 часа"),
    ("ky", 130, "Болжол менен 3 мүнөттөн кийин келет"),
    ("ky", 20, "Болжол менен 20 секунддан кийин келет"),
])
def test_the_estimate_reads_naturally_in_each_language(lang, seconds, text):
    """Rounded up (to 5 s, a minute or an hour), one whole sentence per unit so each language declines the number."""
    with translation.override(lang):
        assert eta_phrase(Eta(seconds=seconds, basis="history")) == text


@pytest.mark.parametrize("prefix", ["t", "r"])
def test_both_status_pages_show_the_estimate_and_keep_it_live(client, pricing, chain_rows, prefix):
    """A funded transfer's pages (and the polled fragment) say when the money should arrive; a held one's do not."""
    history([130, 130, 130])
    t = transfer(funded_at=timezone.now())
    token = t.sender_token if prefix == "t" else t.recipient_token
    for params in ({}, {"fragment": "1"}):
        content = client.get(f"/{prefix}/{token}", params).content.decode()
        assert '<p class="eta" id="eta">Arrives in about 3 minutes</p>' in content
    force_status(Transfer.objects.filter(pk=t.pk), S.HELD)
    assert 'id="eta"' not in client.get(f"/{prefix}/{token}").content.decode()


def test_the_corridor_median_is_shared_for_eta_cache_seconds(pricing, chain_rows, settings, django_assert_num_queries):
    """Every open page polls every 2 s: within ETA_CACHE_SECONDS the corridor's median is read once, then from the
    cache (a new completed transfer shows after the window)."""
    from django.core.cache import cache

    from payments.services.eta import corridor_completion_cached

    settings.ETA_CACHE_SECONDS = 60
    cache.delete("eta:completion:RUB:KGS")
    history([20, 30, 50])
    with django_assert_num_queries(1):
        assert corridor_completion_cached(source_currency="RUB") == 30
    history([40, 40, 40])
    with django_assert_num_queries(0):
        assert corridor_completion_cached(source_currency="RUB") == 30
    cache.delete("eta:completion:RUB:KGS")
    assert corridor_completion_cached(source_currency="RUB") == 40


def test_a_dollar_transfer_is_estimated_from_usdkgs_own_chain(pricing, chain_rows):
    """Dollars go out as USDKG, whose token lives on another chain (Ethereum: 12-second blocks, finalized after about
    64 blocks): the estimate of a funded USD-target transfer comes from that chain's block time and depth (minutes),
    while a som transfer keeps BNB Chain's seconds. Pipeline (no wallet of that chain idle, so the 1 s wait for company
    counts): 1 + 0.5 + (64 + 1) × 12 + 0.5 = 782 s."""
    ethereum = Chain.objects.create(chain_id=1, name="Ethereum", confirmations=64, block_time_ms=12000)
    Token.objects.create(chain=ethereum, symbol="USDKG", address=to_checksum_address("0x" + "33" * 20), decimals=6,
                         batch_contract=to_checksum_address("0x" + "44" * 20))
    quote = quote_create(source_currency="USD", target_currency="USD", source_amount=Decimal("100.00"), partner=None)
    dollars = Transfer.objects.create(
        quote=quote, idempotency_key=str(uuid.uuid4()), request_fingerprint="0" * 64, sender_name="Aibek Usenov",
        sender_phone="+79161234567", sender_email="a@example.com", recipient_name="Gulnara",
        recipient_phone="+996555123456", recipient_wallet=WALLET)
    force_status(Transfer.objects.filter(pk=dollars.pk), S.FUNDED, funded_at=timezone.now())
    dollars.refresh_from_db()
    assert transfer_eta(transfer=dollars) == Eta(seconds=782, basis="pipeline")
    assert transfer_eta(transfer=transfer(funded_at=timezone.now())) == Eta(seconds=4, basis="pipeline")
