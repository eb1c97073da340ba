"""The dev-chain bootstrap isolates a database from the chain's earlier history."""

import os

import pytest
from django.core.management import call_command

from onchain.models import OperatorAlert, ReconciliationCursor
from onchain.services import reconcile
from onchain.services.devchain import devchain_bootstrap
from tests.onchain.helpers import all_final, build, queue, recording_listener, send

pytestmark = pytest.mark.django_db(transaction=True)


def test_reconciliation_starts_at_the_head_seen_when_the_token_was_registered(chain):
    """A database registering the dev token on a chain that already carries payouts of an earlier database (a
    flushed test case, a reset dev DB) reconciles from that moment on: no false 'not a payout of ours' alarm and
    no halted wallet. (Before, the first pass looked 2,000 blocks back and halted every wallet, at random in the
    suite, depending on when beat's reconciliation ran.)"""
    token, w3 = chain["token"], chain["w3"]
    with recording_listener():
        queue("earlier-db-1")
        send(build(token))
        all_final(chain["chain"])
    # A new database on the same chain: the earlier payout is on chain but not in our tables.
    call_command("flush", "--no-input", verbosity=0)
    _chain, token, wallet = devchain_bootstrap(hot_wallet_address=os.environ["HOT_WALLET_ADDRESS"])
    assert ReconciliationCursor.objects.get(token=token).last_block >= w3.eth.block_number - 1
    for _ in range(3):
        reconcile.reconcile(token_id=token.pk)
    assert not OperatorAlert.objects.exists()
    wallet.refresh_from_db()
    assert not wallet.halted


def test_a_batch_contract_of_older_code_is_replaced_and_todays_is_kept(chain):
    """A dev chain kept across an ABI change (make run's state file) holds a BatchPayout today's call data would only
    revert against: the bootstrap deploys today's in its place and measures the token again; a BatchPayout of
    today's code is kept (same address, no redeploy on every bootstrap)."""
    w3, address = chain["w3"], chain["token"].batch_contract
    _chain, token, _wallet = devchain_bootstrap(hot_wallet_address=os.environ["HOT_WALLET_ADDRESS"])
    assert token.batch_contract == address
    old_code = bytes(w3.eth.get_code(address))[:-1]  # any other length stands for another version of the contract
    assert "error" not in w3.provider.make_request("anvil_setCode", [address, "0x" + old_code.hex()])
    _chain, token, _wallet = devchain_bootstrap(hot_wallet_address=os.environ["HOT_WALLET_ADDRESS"])
    assert token.batch_contract != address
    assert token.gas_per_payout and token.balance_slot == 3
