"""Each token's gas per payout is measured on the chain when it is registered, and the batch gas limit uses it:
a token that costs more per transfer gets a higher limit, so its batches do not run out of gas."""

import pytest
from django.core.management import call_command

from onchain.models import Batch, Payout, Token
from onchain.services.batches import batch_gas_limit
from onchain.services.payout_call import balance_key
from tests.security.helpers import use_blacklist_token
from tests.security.test_batch_isolation import settle, settling_transfers

pytestmark = pytest.mark.django_db


def test_registering_the_dev_token_measures_its_gas_per_payout(chain, settings):
    """devchain_bootstrap (the registration) stores KGST's figure: a plain ERC-20 costs ~26,000 gas per payout to a
    new recipient in a batch (bench/README.md), plus the 10 % margin; the batch limit uses it, not the global one;
    `manage.py token_gas` measures it again to the same figure."""
    token = Token.objects.get(pk=chain["token"].pk)
    assert 26_000 < token.gas_per_payout < 32_000, token.gas_per_payout
    assert token.balance_slot == 3  # KGST.sol: name, symbol, totalSupply, balanceOf
    assert batch_gas_limit(token, 200) == settings.BATCH_GAS_BASE + token.gas_per_payout * 200
    Token.objects.filter(pk=token.pk).update(gas_per_payout=None)
    token.refresh_from_db()
    assert batch_gas_limit(token, 200) == settings.BATCH_GAS_BASE + settings.BATCH_GAS_PER_PAYOUT * 200
    call_command("token_gas", "KGST")
    token.refresh_from_db()
    assert 26_000 < token.gas_per_payout < 32_000, token.gas_per_payout


def test_a_token_that_costs_more_gets_a_higher_limit_and_its_batch_does_not_run_out_of_gas(
        chain, pricing, stripe_server, settings):
    """A stablecoin whose transfer checks an issuer blacklist (one more cold storage read per recipient) measures
    higher than KGST. With the global fallback set far too low (1,000 gas per payout: a batch on it would revert), a
    batch of 6 in that token is signed with the token's own figure and mined successfully, its gas used within the
    limit and most of it (the estimate is of the same call, not a blanket allowance). The transaction lists the
    token with the balance slots of the contract and of every recipient (EIP-2930), found when it was registered."""
    kgst = Token.objects.get(pk=chain["token"].pk).gas_per_payout
    use_blacklist_token(chain)
    token = Token.objects.get(pk=chain["token"].pk)
    print(f"\ngas per payout: KGST {kgst:,}, KGST with a blacklist {token.gas_per_payout:,}")
    assert token.gas_per_payout >= kgst + 2_000  # a cold SLOAD is 2,100 gas
    settings.BATCH_GAS_PER_PAYOUT = 1_000

    n = 6
    settling_transfers(n)
    settle(chain)

    (batch,) = Batch.objects.select_related("mined_tx")
    assert (batch.count, batch.status, batch.succeeded) == (n, Batch.Status.FINAL, True)
    assert batch.mined_tx.gas_limit == settings.BATCH_GAS_BASE + token.gas_per_payout * n
    print(f"batch of {n}: {batch.mined_tx.gas_used:,} gas used of {batch.mined_tx.gas_limit:,}")
    assert 0.6 * batch.mined_tx.gas_limit < batch.mined_tx.gas_used < batch.mined_tx.gas_limit
    (listed,) = chain["w3"].eth.get_transaction(batch.mined_tx.tx_hash)["accessList"]
    holders = [token.batch_contract] + [p.to_address for p in Payout.objects.filter(batch=batch)]
    assert listed["address"].lower() == token.address.lower()
    assert sorted(k.hex() if isinstance(k, bytes) else k for k in listed["storageKeys"]) == sorted(
        balance_key(h, token.balance_slot) for h in holders)
