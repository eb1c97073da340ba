"""Building batches: queued payouts → one signed transaction at the wallet's next nonce.

Per batch, in one database transaction: lock the wallet row, take queued payouts (SKIP LOCKED), check the
treasury ceilings, claim the nonce, sign, store the batch, its first attempt (raw bytes + hash) and the
payouts' move to `batched`, advance the nonce. Fees and the chain's nonce are read before the lock; nothing
under the lock waits on the network. The broadcast happens after commit: the caller (onchain.services.passes)
sends each batch as it commits, and the tracker broadcasts any still `signed`.
"""

import logging
from collections import Counter
from datetime import UTC, datetime, time, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from eth_abi import encode as abi_encode

from onchain import client
from onchain.errors import OnchainError
from onchain.failpoints import failpoint
from onchain.listener import payout_listener
from onchain.models import Batch, HotWallet, Payout, PayoutHalt, Token
from onchain.services.alerts import alert_raise
from onchain.services.attempts import attempt_sign
from onchain.services.fees import fee_quote
from onchain.services.payout_call import AMOUNT_BITS, PAYOUT_SELECTOR, PAYOUT_TYPES, payout_args

log = logging.getLogger(__name__)


def batches_build(*, token_id, force=False, on_built=None):
    """Sign as many batches as the queue fills, spread over the token's active wallets. Returns the batches, each
    committed; sending them is the caller's next step (`on_built(batch)`, when given, is called as each commits, so
    the first can be on its way while the next is signed). Not yet due by size or age (`force` makes it due), the queue
    goes out only on wallets not busy (`_idle`), one batch each."""
    token = Token.objects.select_related("chain").get(pk=token_id)
    if PayoutHalt.objects.exists():
        return []  # payouts are halted (onchain.services.halts): they wait in the queue
    queued = Payout.objects.filter(token=token, status=Payout.Status.QUEUED)
    oldest = queued.order_by("created_at").values_list("created_at", flat=True).first()
    if oldest is None:
        return []
    batching = settings.SETTLEMENT_BATCHING and bool(token.batch_contract)
    size = settings.BATCH_MAX_SIZE if batching else 1
    wallets = list(HotWallet.objects.filter(chain=token.chain, is_active=True, halted=False).order_by("id"))
    if not wallets:
        return []
    young = timezone.now() - oldest < timedelta(milliseconds=settings.BATCH_MAX_AGE_MS)
    due = not batching or force or not young or queued.count() >= size
    if not due:
        # Adaptive: a short queue goes out at once on a wallet with fewer than BATCH_MAX_IN_FLIGHT batches not yet
        # mined (the next block takes it with them: waiting would cost a block). Only when every wallet has that
        # many do payouts wait for company (BATCH_MAX_SIZE or BATCH_MAX_AGE_MS): under load, fewer, fuller batches.
        # Below that, batches still fill by themselves: a pass takes everything queued while the last one ran.
        wallets = _idle(wallets)
        if not wallets:
            return []
    w3 = client.web3(token.chain)
    fees = fee_quote(w3, token.chain)
    built, progress = [], True
    while progress and queued.exists():
        progress = False
        for wallet in wallets:
            chain_nonce = w3.eth.get_transaction_count(wallet.address, "pending") if wallet.next_nonce is None else None
            batch = _build_one(token=token, wallet_id=wallet.pk, size=size, batching=batching, fees=fees,
                               chain_nonce=chain_nonce)
            if batch is None:
                continue
            progress = True
            wallet.next_nonce = batch.nonce + 1
            built.append(batch)
            if on_built is not None:
                on_built(batch)
        if not due:
            break  # not due by size or age: one batch per idle wallet, the rest waits for company
    return built


def _idle(wallets):
    """The wallets with fewer than BATCH_MAX_IN_FLIGHT batches signed or broadcast and not yet mined."""
    in_flight = Counter(Batch.objects.filter(wallet__in=wallets, status__in=(Batch.Status.SIGNED, Batch.Status.BROADCAST))
                        .values_list("wallet_id", flat=True))
    return [w for w in wallets if in_flight[w.pk] < settings.BATCH_MAX_IN_FLIGHT]


def _day_start():
    return datetime.combine(timezone.now().astimezone(UTC).date(), time.min, tzinfo=UTC)


def _build_one(*, token, wallet_id, size, batching, fees, chain_nonce):
    with transaction.atomic():
        wallet = HotWallet.objects.select_for_update(skip_locked=True).filter(pk=wallet_id, halted=False).first()
        if wallet is None:
            return None  # another builder holds this wallet, or it was halted meanwhile
        if PayoutHalt.objects.exists():
            return None  # payouts were halted since this pass began
        # Rows, not model instances (200 per batch, read under the wallet's lock): what the batch needs of each.
        payouts = list(Payout.objects.select_for_update(skip_locked=True)
                       .filter(token=token, status=Payout.Status.QUEUED).order_by("created_at")
                       .values_list("pk", "reference", "to_address", "amount_base_units", named=True)[:size])
        payouts = _within_limits(wallet, token, payouts, batching)
        if not payouts:
            return None
        if wallet.next_nonce is None:
            if chain_nonce is None:
                return None  # reset since we looked: read the chain's nonce on the next pass, never under the lock
            wallet.next_nonce = chain_nonce
        failpoint("batch.claimed")
        batch = Batch(token=token, wallet=wallet, nonce=wallet.next_nonce, count=len(payouts),
                      total_base_units=sum(p.amount_base_units for p in payouts),
                      mode=Batch.Mode.CONTRACT if batching else Batch.Mode.SINGLE)
        to, data, gas = _call_for(batch, payouts, token)
        batch.save()
        tx_hash = attempt_sign(batch=batch, wallet=wallet, to=to, data=data, gas=gas, fees=fees).tx_hash
        # Compare-and-set on the status: a guarded transition for the whole set in one statement.
        moved = Payout.objects.filter(pk__any=[p.pk for p in payouts]).mark_batched(batch)
        if moved != len(payouts):  # impossible under SKIP LOCKED row locks; never sign for payouts we do not hold
            raise OnchainError(f"{len(payouts) - moved} payouts left the queue while batch {batch.pk} was signed")
        wallet.next_nonce += 1
        # An update, not save(): the nonce is bookkeeping, kept out of the wallet's history (no history row per batch).
        HotWallet.objects.filter(pk=wallet.pk).update(next_nonce=wallet.next_nonce)
        failpoint("batch.signed")
    failpoint("batch.committed")
    log.info("batch_signed batch=%s wallet=%s nonce=%s count=%s total=%s tx_hash=%s", batch.pk, wallet.address,
             batch.nonce, batch.count, batch.total_base_units, tx_hash)
    return batch


def _refuse(payout, wallet, token, reason):
    Payout.objects.filter(pk=payout.pk).mark_failed(reason)
    payout_listener().payouts_failed(references=[payout.reference], reason=reason)
    alert_raise(kind="limit", wallet=wallet, token=token, message=f"payout {payout.reference}: {reason}")


def _within_limits(wallet, token, payouts, batching):
    """Drop payouts that break the per-transaction ceiling alone (they fail, the caller is told) and cut the
    batch where its total would pass the per-transaction ceiling or the wallet's daily limit."""
    kept, total = [], 0
    day_left = None
    if wallet.daily_limit_base_units is not None:
        signed_today = (Batch.objects.filter(wallet=wallet, created_at__gte=_day_start())
                        .exclude(status=Batch.Status.REVERTED).aggregate(s=Sum("total_base_units"))["s"]) or 0
        day_left = wallet.daily_limit_base_units - int(signed_today)
    for payout in payouts:
        if wallet.max_tx_base_units is not None and payout.amount_base_units > wallet.max_tx_base_units:
            _refuse(payout, wallet, token, "exceeds the hot wallet's per-transaction ceiling")
            continue
        if batching and payout.amount_base_units >> AMOUNT_BITS:
            _refuse(payout, wallet, token, "too large for the batch contract's 96-bit amount")
            continue
        if wallet.max_tx_base_units is not None and total + payout.amount_base_units > wallet.max_tx_base_units:
            break
        if day_left is not None and total + payout.amount_base_units > day_left:
            if not kept:
                alert_raise(kind="limit", wallet=wallet, token=token, message="daily limit reached; payouts wait")
            break
        kept.append(payout)
        total += payout.amount_base_units
    return kept


def batch_gas_limit(token, count):
    """Gas limit of a contract batch of `count` payouts: the token's own per-payout figure, measured on its chain
    when it was registered (onchain.services.token_gas), else the global BATCH_GAS_PER_PAYOUT."""
    return settings.BATCH_GAS_BASE + (token.gas_per_payout or settings.BATCH_GAS_PER_PAYOUT) * count


def _call_for(batch, payouts, token):
    """(contract, call data, gas limit) of the batch's transaction."""
    if batch.mode == Batch.Mode.CONTRACT:
        to = token.batch_contract
        args = payout_args(bytes.fromhex(batch.onchain_id[2:]), [(p.to_address, p.amount_base_units) for p in payouts])
        data = _payout_call(args)
        gas = batch_gas_limit(token, len(payouts))
    else:
        (payout,) = payouts
        to = token.address
        data = bytes.fromhex(client.erc20(to, token.chain).encode_abi("transfer", [payout.to_address, payout.amount_base_units])
                             .removeprefix("0x"))
        gas = settings.PAYOUT_GAS_LIMIT
    return to, data, gas


def _payout_call(args):
    """Call data of BatchPayout.payout(batchId, unit, width, packed), encoded by eth_abi directly: the contract
    object's encode_abi runs web3's formatters over the arguments, and the batch is signed under the wallet's row lock
    (with the old uint256[] argument that was 75 ms of a 200-payout batch's ~170 ms build). tests/onchain pin that
    both encodings are the same bytes."""
    return PAYOUT_SELECTOR + abi_encode(PAYOUT_TYPES, args)
