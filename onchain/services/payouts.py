"""Payouts: queue, sign-and-store under the wallet's row lock, broadcast, track to finality.

Order of operations per payout (each step survives a crash at any line):
1. `payout_request` stores the payout in the caller's transaction (one per reference, ever).
2. `payout_submit` reads fees from the chain (no lock held), then in one transaction locks the wallet
   row, claims its next nonce, signs, stores the raw bytes and hash, and advances the nonce.
3. After commit it broadcasts those stored bytes; a retry broadcasts the same bytes again.
4. `payouts_track` follows receipts until the block is `confirmations` deep, checks it is still on the
   canonical chain, then marks the payout confirmed and tells the listener in the same transaction.
"""

import logging
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string
from web3.exceptions import TransactionNotFound, Web3RPCError

from onchain import client
from onchain.errors import SettlementNotConfigured, WalletHalted
from onchain.models import ChainTransaction, HotWallet, Payout, Token
from onchain.signer import signer_for_wallet

log = logging.getLogger(__name__)

# Node answers meaning "these bytes (or this nonce) are already with the node": not a failure.
_ALREADY_SENT = ("already known", "nonce too low", "known transaction", "already imported")


def listener():
    return import_string(settings.ONCHAIN_PAYOUT_LISTENER)


def to_base_units(amount, decimals):
    """Decimal token amount → integer base units, exactly (refuses sub-base-unit fractions)."""
    scaled = Decimal(amount).scaleb(decimals)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} has more precision than {decimals} decimals")
    return int(scaled)


def settlement_token(symbol="KGST"):
    token = Token.objects.select_related("chain").filter(symbol=symbol).first()
    if token is None:
        raise SettlementNotConfigured(f"No {symbol} token is registered.")
    return token


def payout_request(*, reference, to_address, amount, symbol="KGST"):
    """Queue a payout of `amount` (in token units, a Decimal) once per reference. Call inside the caller's
    transaction: the payout commits with the caller's state change, and its task is sent after commit."""
    token = settlement_token(symbol)
    wallet = (HotWallet.objects.filter(chain=token.chain, is_active=True).order_by("id").first())
    if wallet is None:
        raise SettlementNotConfigured(f"No active hot wallet on {token.chain}.")
    payout, created = Payout.objects.get_or_create(
        reference=reference,
        defaults={"token": token, "wallet": wallet, "to_address": to_address,
                  "amount_base_units": to_base_units(amount, token.decimals)},
    )
    if created:
        from onchain.tasks import payout_submit

        transaction.on_commit(lambda: payout_submit.delay(str(payout.id)))
        log.info("payout_queued reference=%s payout=%s amount_base_units=%s", reference, payout.id,
                 payout.amount_base_units)
    return payout


def _fees(w3):
    latest = w3.eth.get_block("latest")
    priority = w3.eth.max_priority_fee
    return {"maxFeePerGas": 2 * latest["baseFeePerGas"] + priority, "maxPriorityFeePerGas": priority}


def payout_submit(*, payout_id):
    """Sign and store (once), then broadcast the stored bytes. Safe to call any number of times."""
    payout = Payout.objects.select_related("wallet__chain", "token", "transaction").get(pk=payout_id)
    if payout.status == Payout.Status.QUEUED:
        _sign_and_store(payout)
        payout.refresh_from_db()
    if payout.status == Payout.Status.SUBMITTED and payout.transaction.status == ChainTransaction.Status.SIGNED:
        tx_broadcast(tx=payout.transaction)
    return payout


def _sign_and_store(payout):
    w3 = client.web3()
    wallet = payout.wallet
    fees = _fees(w3)  # network I/O before the lock, never under it
    chain_nonce = w3.eth.get_transaction_count(wallet.address, "pending") if wallet.next_nonce is None else None
    signer = signer_for_wallet(wallet)
    data = client.erc20(payout.token.address).encode_abi("transfer", [payout.to_address, payout.amount_base_units])
    with transaction.atomic():
        wallet = HotWallet.objects.select_for_update().get(pk=wallet.pk)
        payout = Payout.objects.select_for_update().get(pk=payout.pk)
        if payout.status != Payout.Status.QUEUED:
            return  # another worker signed it while we read fees
        if wallet.halted:
            raise WalletHalted(f"Hot wallet {wallet.address} is halted: {wallet.halt_reason}")
        if wallet.max_payout_base_units is not None and payout.amount_base_units > wallet.max_payout_base_units:
            # Final, not retried: committed with the caller's failure so an operator decides.
            payout.mark_failed("exceeds the hot wallet's per-transaction ceiling")
            payout.save()
            listener().payout_failed(reference=payout.reference, reason=payout.failure_reason)
            log.error("payout_refused payout=%s reference=%s reason=ceiling", payout.id, payout.reference)
            return
        if wallet.next_nonce is None:
            wallet.next_nonce = chain_nonce if chain_nonce is not None else w3.eth.get_transaction_count(wallet.address, "pending")
        tx = {
            "chainId": wallet.chain.chain_id, "nonce": wallet.next_nonce, "to": payout.token.address,
            "value": 0, "data": data, "gas": settings.PAYOUT_GAS_LIMIT, "type": 2, **fees,
        }
        raw, tx_hash = signer.sign_transaction(tx)
        ctx = ChainTransaction.objects.create(
            wallet=wallet, nonce=wallet.next_nonce, tx_hash=tx_hash, raw_tx=raw, to_address=payout.token.address,
            gas_limit=tx["gas"], max_fee_per_gas=fees["maxFeePerGas"],
            max_priority_fee_per_gas=fees["maxPriorityFeePerGas"])
        wallet.next_nonce += 1
        wallet.save(update_fields=["next_nonce"])
        payout.mark_submitted(ctx)
        payout.save()
    log.info("payout_signed payout=%s reference=%s nonce=%s tx_hash=%s", payout.id, payout.reference, ctx.nonce, tx_hash)


def tx_broadcast(*, tx):
    """Send the stored bytes. A node that already has them (or has mined this nonce) counts as sent."""
    w3 = client.web3()
    try:
        w3.eth.send_raw_transaction(bytes(tx.raw_tx))
    except (Web3RPCError, ValueError) as exc:
        message = str(exc).lower()
        if not any(m in message for m in _ALREADY_SENT):
            ChainTransaction.objects.filter(pk=tx.pk).update(last_error=str(exc)[:300])
            raise
        if "nonce too low" in message and not _node_knows(w3, tx.tx_hash):
            # Another transaction took this nonce: never ours to resend. The operator must look.
            ChainTransaction.objects.filter(pk=tx.pk).update(last_error="nonce used by a foreign transaction")
            log.error("nonce_conflict tx_hash=%s nonce=%s wallet=%s", tx.tx_hash, tx.nonce, tx.wallet_id)
            raise
    with transaction.atomic():
        locked = ChainTransaction.objects.select_for_update().get(pk=tx.pk)
        if locked.status in (ChainTransaction.Status.SIGNED, ChainTransaction.Status.BROADCAST):
            locked.mark_broadcast()
        locked.broadcast_count += 1
        locked.last_broadcast_at = timezone.now()
        locked.save()
    log.info("tx_broadcast tx_hash=%s nonce=%s", tx.tx_hash, tx.nonce)


def _node_knows(w3, tx_hash):
    try:
        w3.eth.get_transaction(tx_hash)
        return True
    except TransactionNotFound:
        return False


def payouts_track():
    """One pass over unfinished transactions: record receipts, finalise deep ones, rebroadcast lost ones."""
    w3 = client.web3()
    head = w3.eth.block_number
    open_txs = ChainTransaction.objects.select_related("wallet__chain").filter(
        status__in=[ChainTransaction.Status.SIGNED, ChainTransaction.Status.BROADCAST, ChainTransaction.Status.MINED])
    rebroadcast_before = timezone.now() - timedelta(seconds=settings.PAYOUT_REBROADCAST_AFTER_SECONDS)
    for tx in open_txs:
        try:
            receipt = w3.eth.get_transaction_receipt(tx.tx_hash)
        except TransactionNotFound:
            receipt = None
        if receipt is None:
            if tx.status == ChainTransaction.Status.MINED:
                _mark_reorged(tx)
            elif tx.status == ChainTransaction.Status.SIGNED or (tx.last_broadcast_at or tx.created_at) < rebroadcast_before:
                tx_broadcast(tx=tx)
            continue
        _record_receipt(w3, tx, receipt, head)


def _record_receipt(w3, tx, receipt, head):
    block_hash = receipt["blockHash"].to_0x_hex()
    with transaction.atomic():
        tx = ChainTransaction.objects.select_for_update().select_related("wallet__chain").get(pk=tx.pk)
        if tx.status != ChainTransaction.Status.MINED or tx.block_hash != block_hash:
            if tx.status == ChainTransaction.Status.MINED:
                tx.mark_reorged()
            tx.mark_mined(block_number=receipt["blockNumber"], block_hash=block_hash, gas_used=receipt["gasUsed"])
            tx.save()
        depth = head - tx.block_number + 1
        if depth < tx.wallet.chain.confirmations:
            return
        canonical = w3.eth.get_block(tx.block_number)["hash"].to_0x_hex()
        if canonical != tx.block_hash:
            return  # the receipt lags a reorg; the next pass sees the new one
        payout = Payout.objects.select_for_update().filter(transaction=tx).first()
        if receipt["status"] == 1:
            tx.mark_final()
            tx.save()
            if payout and payout.status == Payout.Status.SUBMITTED:
                payout.mark_confirmed()
                payout.save()
                listener().payout_final(reference=payout.reference, tx_hash=tx.tx_hash)
        else:
            tx.mark_reverted()
            tx.save()
            if payout and payout.status == Payout.Status.SUBMITTED:
                payout.mark_failed("transaction reverted on chain")
                payout.save()
                listener().payout_failed(reference=payout.reference, reason=payout.failure_reason)
    log.info("tx_tracked tx_hash=%s status=%s depth=%s", tx.tx_hash, tx.status, depth)


def _mark_reorged(tx):
    with transaction.atomic():
        tx = ChainTransaction.objects.select_for_update().get(pk=tx.pk)
        if tx.status == ChainTransaction.Status.MINED:
            tx.mark_reorged()
            tx.save()
            log.warning("tx_reorged tx_hash=%s nonce=%s", tx.tx_hash, tx.nonce)
    tx_broadcast(tx=tx)


def payouts_sweep(*, older_than_seconds=10):
    """Re-send the task for payouts left queued (a lost enqueue between commit and broker)."""
    from onchain.tasks import payout_submit

    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    ids = list(Payout.objects.filter(status=Payout.Status.QUEUED, created_at__lt=cutoff).values_list("id", flat=True))
    for payout_id in ids:
        payout_submit.delay(str(payout_id))
    return len(ids)


def wallet_balances(wallet, token=None):
    """(token balance in base units or None, gas balance in wei) read from the chain."""
    w3 = client.web3()
    gas = w3.eth.get_balance(wallet.address)
    token = token or Token.objects.filter(chain=wallet.chain).first()
    held = client.erc20(token.address).functions.balanceOf(wallet.address).call() if token else None
    return held, gas
