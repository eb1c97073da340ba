"""Fixtures over the real local servers that tests/bootstrap.py started."""

import os
import subprocess
import sys
import time
import uuid
from decimal import Decimal

import httpx
import pytest
from django.conf import settings

from common.queues import worker_queue_arg
from gateway.dev.services import REPO
from onchain import client
from onchain.services.devchain import devchain_bootstrap
from payments.services.setup import corridors_seed, partner_create, rates_seed


def wait_for(predicate, timeout=60.0, interval=0.25, what="condition"):
    """Poll until `predicate()` is truthy; fail the test with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")


@pytest.fixture(autouse=True)
def default_language():
    """Every test starts and ends in the default language: a request or test that activates another one (a page
    answered in Russian) must not make later tests' messages Russian."""
    from django.utils import translation

    translation.deactivate()
    yield
    translation.deactivate()


@pytest.fixture(autouse=True)
def rate_limit_namespace(settings):
    """Each test counts its own rate limits (they live in the shared Redis): no test is throttled by another's
    requests, in this run or a parallel one."""
    settings.RATE_LIMIT_NAMESPACE = f"test-{uuid.uuid4().hex}"


@pytest.fixture
def pricing(db):
    """RUB and USD corridors with today's seed rates (RUB 1.0785, USD 87.45)."""
    corridors_seed()
    rates_seed()


@pytest.fixture
def partner(db):
    partner, key = partner_create(name="acme")
    partner.raw_key = key
    return partner


@pytest.fixture
def api(partner):
    """A DRF client authenticated as the partner."""
    from rest_framework.test import APIClient

    api_client = APIClient()
    api_client.credentials(HTTP_AUTHORIZATION=f"Api-Key {partner.raw_key}")
    return api_client


@pytest.fixture
def stripe_server():
    """localstripe, emptied before each test."""
    httpx.delete(f"{settings.STRIPE_API_BASE}/_config/data", timeout=10).raise_for_status()
    return settings.STRIPE_API_BASE


@pytest.fixture
def chain(db):
    """Dev KGST deployed on the session's anvil, registered with a funded hot wallet."""
    chain, token, wallet = devchain_bootstrap(hot_wallet_address=os.environ["HOT_WALLET_ADDRESS"])
    return {"chain": chain, "token": token, "wallet": wallet, "w3": client.web3()}


@pytest.fixture(scope="module")
def usdkg_anvil():
    """USDKG's chain (Ethereum's stand-in): a second anvil, chain id 31338, with `finalized` one block behind the head
    as the first. Started only for the modules that ask. It is reached through an RpcSwitch (a test may take the
    chain's RPC down and back), named in CHAIN_RPCS for this process and for a Celery worker started after it
    (request this before `celery_processes`), with the hot wallet's key in HOT_WALLET_USDKG_PRIVATE_KEY."""
    from eth_account import Account

    from gateway.dev import services
    from onchain.rpc import web3 as rpc_web3
    from tests.onchain.rpc_switch import RpcSwitch

    port = services.free_port()
    proc, url = services.start_anvil(port, block_time=1, chain_id=services.DEV_USDKG_CHAIN_ID)
    switch = RpcSwitch(port)
    saved_env, saved_setting = os.environ.get("CHAIN_RPCS"), settings.CHAIN_RPCS
    os.environ["CHAIN_RPCS"] = f"{services.DEV_USDKG_CHAIN_ID}={switch.url}"
    settings.CHAIN_RPCS = {**saved_setting, services.DEV_USDKG_CHAIN_ID: [switch.url]}
    os.environ.setdefault("HOT_WALLET_USDKG_PRIVATE_KEY", "0x" + Account.create().key.hex().removeprefix("0x"))
    rpc_web3.cache_clear()
    yield {"chain_id": services.DEV_USDKG_CHAIN_ID, "url": url, "switch": switch, "proc": proc}
    settings.CHAIN_RPCS = saved_setting
    if saved_env is None:
        os.environ.pop("CHAIN_RPCS", None)
    else:
        os.environ["CHAIN_RPCS"] = saved_env
    rpc_web3.cache_clear()
    switch.close()
    services.stop(proc)


@pytest.fixture
def usdkg_chain(db, usdkg_anvil):
    """Dev USDKG (6 decimals) and its BatchPayout on the second anvil, registered with a funded hot wallet of its
    own; the dict has what `chain` has, plus the anvil's switch."""
    from eth_account import Account

    address = Account.from_key(os.environ["HOT_WALLET_USDKG_PRIVATE_KEY"]).address
    chain, token, wallet = devchain_bootstrap(wallets=[(address, "HOT_WALLET_USDKG_PRIVATE_KEY")],
                                              chain_id=usdkg_anvil["chain_id"], symbol="USDKG",
                                              chain_name="anvil USDKG (local)")
    return {"chain": chain, "token": token, "wallet": wallet, "w3": client.web3(chain), **usdkg_anvil}


def second_wallet(chain):
    """Register a second funded hot wallet (key in HOT_WALLET_2_PRIVATE_KEY) for multi-wallet tests."""
    from eth_account import Account

    if not os.environ.get("HOT_WALLET_2_PRIVATE_KEY"):
        os.environ["HOT_WALLET_2_PRIVATE_KEY"] = Account.create().key.hex()
    address = Account.from_key(os.environ["HOT_WALLET_2_PRIVATE_KEY"]).address
    _, _, wallet = devchain_bootstrap(wallets=[(address, "HOT_WALLET_2_PRIVATE_KEY"),
                                               (os.environ["HOT_WALLET_ADDRESS"], "HOT_WALLET_PRIVATE_KEY")])
    return wallet


def token_balance(token, address):
    return client.erc20(token.address, token.chain).functions.balanceOf(address).call()


def new_recipient():
    from eth_account import Account

    return Account.create().address


def _test_database_url():
    db = settings.DATABASES["default"]
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture(scope="module")
def celery_processes(django_db_setup, django_db_blocker):
    """A real Celery worker and beat, as separate processes, on the test database and the session's queue.
    Module-scoped: tests elsewhere drive the services by hand and must not race a background tracker."""
    env = dict(os.environ, DATABASE_URL=_test_database_url())
    log_dir = settings.VAR_DIR
    procs = [
        subprocess.Popen([sys.executable, "-m", "celery", "-A", "gateway", "worker", "-l", "info",
                          "--concurrency", "2", "-n", f"test-{os.getpid()}@%h",
                          "-Q", worker_queue_arg(settings.CELERY_TASK_DEFAULT_QUEUE)],
                         cwd=REPO, env=env, stdout=open(log_dir / "worker.log", "ab"), stderr=subprocess.STDOUT),
        subprocess.Popen([sys.executable, "-m", "celery", "-A", "gateway", "beat", "-l", "info",
                          "-s", str(log_dir / "beat-schedule")],
                         cwd=REPO, env=env, stdout=open(log_dir / "beat.log", "ab"), stderr=subprocess.STDOUT),
    ]
    yield procs
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
def stripe_webhook_to(live_server, stripe_server):
    """Point localstripe's webhooks at this test's live server."""
    httpx.post(f"{settings.STRIPE_API_BASE}/_config/webhooks/tulpar", timeout=10, data={
        "url": f"{live_server.url}/webhooks/stripe", "secret": settings.STRIPE_WEBHOOK_SECRET,
        "api_version": settings.STRIPE_API_VERSION}).raise_for_status()
    return live_server


def stripe_requests(path_contains=""):
    """The API requests localstripe received since it was last emptied (our launcher's request log)."""
    response = httpx.get(f"{settings.STRIPE_API_BASE}/_config/requests", timeout=10)
    response.raise_for_status()
    return [r for r in response.json() if path_contains in r["path"]]


def authenticate_3ds(intent, success=True):
    """What Stripe.js does when a PaymentIntent needs 3-D Secure and the cardholder completes (or fails) it."""
    response = httpx.post(f"{settings.STRIPE_API_BASE}/v1/payment_intents/{intent['id']}/_authenticate",
                          params={"success": "true" if success else "false"}, timeout=10,
                          json={"key": settings.STRIPE_PUBLISHABLE_KEY, "client_secret": intent["client_secret"]})
    return response


def pay_on_stripe(payment_intent_id, card="4242424242424242"):
    """What a partner app does with Stripe.js: a card payment method on the PaymentIntent, then confirm, and the
    3-D Secure step when the PaymentIntent asks for it."""
    base, key = settings.STRIPE_API_BASE, settings.STRIPE_SECRET_KEY
    auth = {"Authorization": f"Bearer {key}"}
    pm = httpx.post(f"{base}/v1/payment_methods", headers=auth, timeout=10, data={
        "type": "card", "card[number]": card, "card[exp_month]": "12", "card[exp_year]": "2030", "card[cvc]": "123"})
    pm.raise_for_status()
    httpx.post(f"{base}/v1/payment_intents/{payment_intent_id}", headers=auth, timeout=10,
               data={"payment_method": pm.json()["id"]}).raise_for_status()
    confirmed = httpx.post(f"{base}/v1/payment_intents/{payment_intent_id}/confirm", headers=auth, timeout=10)
    confirmed.raise_for_status()
    if confirmed.json()["status"] == "requires_action":  # 3-D Secure requested: the cardholder completes it
        confirmed = authenticate_3ds(confirmed.json())
        confirmed.raise_for_status()
    return confirmed.json()


QUOTE_BODY = {"source_currency": "RUB", "source_amount": "15000.00", "target_currency": "KGS"}
ZERO = Decimal(0)
