"""Issue 7, item 3 (creation side): a payout address that can never be paid, or must never be, is refused when the
transfer is created, with a clear message next to the wallet field, in the API and in the web form alike.

The batch contract pays all or nothing, so one payout to such an address would revert its whole batch (up to
BATCH_MAX_SIZE payouts) and spend the gas. The check is onchain's `recipient_check` (onchain/api.py), called by
payments' `transfer_create` before anything is stored:

- refused without asking the node: the zero address; every address below 0x10000 (the precompiles 0x01-0x11, the
  P-256 verifier at 0x100, BNB Chain's precompiles 0x64-0x69 and system contracts 0x1000-0x3000: no key can own an
  address with 144 leading zero bits); our tokens, our batch contracts, our hot wallets (retired ones included);
- refused after `eth_getCode` (latest): any address with code, except an EIP-7702 delegation designator
  (exactly 0xef0100 + 20 bytes): that account is still an EOA whose key moves its tokens, and ERC-20 transfers to
  it run no code, so it is accepted;
- refused after simulating a 1-base-unit `transfer` from our float: an address the token itself refuses (an issuer
  blacklist), when a control address is accepted in the same state;
- a node that does not answer is a 503 that says to retry, never a silent accept.
"""

import uuid
from decimal import Decimal

import pytest
from django.utils import translation

from onchain.rpc import web3 as rpc_web3
from payments.models import Transfer
from payments.services.quotes import quote_create
from tests.conftest import QUOTE_BODY, new_recipient
from tests.onchain.faults import dead_url, silent_server
from tests.security.helpers import address_of, blacklist, use_blacklist_token

pytestmark = pytest.mark.django_db

SYSTEM = [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A,  # Ethereum precompiles to Cancun
          0x0B, 0x0C, 0x0D, 0x0E, 0x0F, 0x10, 0x11,  # Prague's BLS12-381 precompiles
          0x64, 0x65, 0x66, 0x67, 0x68, 0x69,  # BNB Chain's own precompiles
          0x100,  # P256VERIFY (RIP-7212 / EIP-7951)
          0x1000, 0x1001, 0x1002, 0x1004, 0x2000, 0x2002, 0x3000,  # BNB Chain system contracts
          0xFFFF]  # the top of the refused range

ZERO_MSG = ("This is the zero address: nobody owns it and money sent to it is lost. "
            "Check the recipient's wallet address.")
SYSTEM_MSG = "This is a reserved address of the blockchain itself, not a wallet. Check the recipient's wallet address."
TOKEN_MSG = "This is the address of the KGST token contract, not a wallet. Enter the recipient's own wallet address."
OURS_MSG = "This address belongs to our payout system, not to the recipient. Enter the recipient's own wallet address."
CONTRACT_MSG = ("This address is a smart contract, not a personal wallet: we pay only to personal wallets. "
                "Check the address with the recipient.")
BLACKLISTED_MSG = ("The KGST token does not accept transfers to this address (its issuer may have blocked it). "
                   "Check the address with the recipient.")
UNAVAILABLE_MSG = ("We could not check this wallet address on the blockchain just now. Nothing was saved: "
                   "please try again in a minute.")

REFUSED = [
    pytest.param("zero", ZERO_MSG, id="zero"),
    *[pytest.param(f"system-{a:#x}", SYSTEM_MSG, id=f"system-{a:#x}") for a in SYSTEM],
    pytest.param("token", TOKEN_MSG, id="our-token"),
    pytest.param("batch-contract", OURS_MSG, id="our-batch-contract"),
    pytest.param("hot-wallet", OURS_MSG, id="our-hot-wallet"),
    pytest.param("second-hot-wallet", OURS_MSG, id="our-second-hot-wallet"),
    pytest.param("retired-hot-wallet", OURS_MSG, id="our-retired-hot-wallet"),
    pytest.param("deployed-contract", CONTRACT_MSG, id="deployed-contract"),
    pytest.param("eof-style-code", CONTRACT_MSG, id="eof-style-code"),
]
ACCEPTED = ["eoa", "eip7702-delegated-eoa", "above-system-range"]


def transfer_body(quote_id, wallet):
    return {"quote_id": str(quote_id),
            "sender": {"name": "Aibek Usenov", "phone": "+79161234567", "email": "aibek@example.com"},
            "recipient": {"name": "Gulnara Usenova", "phone": "+996555123456", "wallet_address": wallet}}


def api_create(api, wallet):
    quote = api.post("/api/v1/quotes", QUOTE_BODY, format="json")
    assert quote.status_code == 201, quote.content
    return api.post("/api/v1/transfers", transfer_body(quote.json()["id"], wallet), format="json",
                    HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()))


def details_data(wallet):
    return {"sender_name": "Aibek Usenov", "sender_phone": "+7 916 123-45-67", "sender_email": "aibek@example.com",
            "recipient_name": "Gulnara Usenova", "recipient_phone": "+996 555 123 456",
            "recipient_wallet": wallet, "idempotency_key": str(uuid.uuid4())}


def web_create(client, wallet):
    quote = quote_create(source_currency="RUB", source_amount=Decimal("10000.00"), partner=None)
    return client.post(f"/send/{quote.id}/details", details_data(wallet))


def assert_refused_problem(response, status, code, message):
    assert response.status_code == status, response.content
    assert response["Content-Type"].split(";")[0] == "application/problem+json"
    body = response.json()
    assert body["type"].endswith("/" + code), body
    assert body["detail"] == message
    assert {"field": "recipient.wallet_address", "message": message} in body["errors"], body
    return body


def error_next_to_wallet(response):
    # The page's error slot beside the wallet field (tests/payments/test_web_forms.py reads it the same way).
    from tests.payments.test_web_forms import error_next_to

    return error_next_to(response, "recipient_wallet")


@pytest.fixture
def dead_node(settings):
    """Every RPC URL refuses connections (a real closed port); the engine's cached client is rebuilt around it."""
    url = dead_url()
    settings.CHAIN_RPC_URL, settings.CHAIN_RPC_URLS = url, [url]
    rpc_web3.cache_clear()
    yield url
    rpc_web3.cache_clear()


@pytest.fixture
def hanging_node(settings):
    """The only RPC URL accepts connections and never answers; the client gives up after its 1 s timeout."""
    with silent_server() as url:
        settings.CHAIN_RPC_URL, settings.CHAIN_RPC_URLS, settings.CHAIN_RPC_TIMEOUT_SECONDS = url, [url], 1
        rpc_web3.cache_clear()
        yield url
    rpc_web3.cache_clear()


# API ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("kind", "message"), REFUSED)
def test_api_refuses_an_address_no_payout_may_go_to(api, pricing, chain, stripe_server, kind, message):
    """POST /transfers with such a recipient is a 422 wallet-refused problem naming recipient.wallet_address, with
    the reason; no transfer (and so no PaymentIntent) is created."""
    response = api_create(api, address_of(kind, chain))
    assert_refused_problem(response, 422, "wallet-refused", message)
    assert Transfer.objects.count() == 0


@pytest.mark.parametrize("kind", ACCEPTED)
def test_api_accepts_a_wallet_a_person_holds(api, pricing, chain, stripe_server, kind):
    """A plain EOA, an EOA with an EIP-7702 delegation, and the first address above the refused range are
    accepted: 201 and the transfer awaits funding."""
    wallet = address_of(kind, chain)
    response = api_create(api, wallet)
    assert response.status_code == 201, response.content
    assert Transfer.objects.get().recipient_wallet == wallet


def test_api_refuses_an_address_the_token_blacklists(api, pricing, chain, stripe_server):
    """With a token whose issuer blacklists accounts, a blacklisted recipient is refused at creation (simulated
    transfer from our float), while a clean one is accepted in the same state."""
    token, _batch = use_blacklist_token(chain)
    listed = new_recipient()
    blacklist(chain["w3"], token, listed)
    assert_refused_problem(api_create(api, listed), 422, "wallet-refused", BLACKLISTED_MSG)
    assert api_create(api, new_recipient()).status_code == 201
    assert Transfer.objects.count() == 1


@pytest.mark.parametrize("node", ["dead_node", "hanging_node"])
def test_api_without_a_node_is_a_503_that_says_to_retry(api, pricing, chain, stripe_server, request, node):
    """When no RPC answers (connection refused, or no answer within the timeout), the address cannot be checked:
    503 wallet-check-unavailable saying to retry; nothing is created. The same body succeeds once the node is back."""
    quote = api.post("/api/v1/quotes", QUOTE_BODY, format="json").json()
    body, key = transfer_body(quote["id"], new_recipient()), str(uuid.uuid4())
    request.getfixturevalue(node)
    response = api.post("/api/v1/transfers", body, format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert_refused_problem(response, 503, "wallet-check-unavailable", UNAVAILABLE_MSG)
    assert Transfer.objects.count() == 0


def test_api_retry_after_the_node_is_back_creates_the_transfer(api, pricing, chain, stripe_server, settings):
    """The retry the 503 asks for works: same key, same body, node back → 201."""
    quote = api.post("/api/v1/quotes", QUOTE_BODY, format="json").json()
    body, key = transfer_body(quote["id"], new_recipient()), str(uuid.uuid4())
    live = (settings.CHAIN_RPC_URL, settings.CHAIN_RPC_URLS)
    url = dead_url()
    settings.CHAIN_RPC_URL, settings.CHAIN_RPC_URLS = url, [url]
    rpc_web3.cache_clear()
    try:
        assert api.post("/api/v1/transfers", body, format="json", HTTP_IDEMPOTENCY_KEY=key).status_code == 503
    finally:
        settings.CHAIN_RPC_URL, settings.CHAIN_RPC_URLS = live
        rpc_web3.cache_clear()
    assert api.post("/api/v1/transfers", body, format="json", HTTP_IDEMPOTENCY_KEY=key).status_code == 201


# Web form ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("kind", "message"), REFUSED)
def test_web_form_refuses_an_address_no_payout_may_go_to(client, pricing, chain, kind, message):
    """The details form shows the reason beside the wallet field (the page stays, 200) and creates nothing."""
    response = web_create(client, address_of(kind, chain))
    assert response.status_code == 200
    assert error_next_to_wallet(response) == message
    assert Transfer.objects.count() == 0


@pytest.mark.parametrize("kind", ACCEPTED)
def test_web_form_accepts_a_wallet_a_person_holds(client, pricing, chain, stripe_server, kind):
    """The same three accepted kinds go on to the pay page."""
    wallet = address_of(kind, chain)
    response = web_create(client, wallet)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert "/pay/" in response["Location"] or "/t/" in response["Location"]
    assert Transfer.objects.get().recipient_wallet == wallet


def test_web_form_refuses_an_address_the_token_blacklists(client, pricing, chain):
    """The issuer-blacklisted recipient gets its reason beside the wallet field."""
    token, _batch = use_blacklist_token(chain)
    listed = new_recipient()
    blacklist(chain["w3"], token, listed)
    response = web_create(client, listed)
    assert error_next_to_wallet(response) == BLACKLISTED_MSG
    assert Transfer.objects.count() == 0


def test_web_form_without_a_node_says_to_retry_beside_the_wallet(client, pricing, chain, dead_node):
    """No node: the page answers 503 with the retry message beside the wallet field; nothing is created."""
    response = web_create(client, new_recipient())
    assert response.status_code == 503
    assert error_next_to_wallet(response) == UNAVAILABLE_MSG
    assert Transfer.objects.count() == 0


# Translations ------------------------------------------------------------------------------------

RU = {
    "zero": "Это нулевой адрес: он никому не принадлежит, и отправленные на него деньги пропадут. "
            "Проверьте адрес кошелька получателя.",
    "hot-wallet": "Этот адрес принадлежит нашей платёжной системе, а не получателю. "
                  "Введите адрес собственного кошелька получателя.",
    "deployed-contract": "Этот адрес — смарт-контракт, а не личный кошелёк: мы выплачиваем только на личные "
                         "кошельки. Уточните адрес у получателя.",
}
KY = {
    "zero": "Бул нөлдүк дарек: ал эч кимге таандык эмес, ага жөнөтүлгөн акча жоголот. "
            "Алуучунун капчык дарегин текшериңиз.",
    "hot-wallet": "Бул дарек алуучуга эмес, биздин төлөм системабызга таандык. "
                  "Алуучунун өз капчыгынын дарегин киргизиңиз.",
    "deployed-contract": "Бул дарек жеке капчык эмес, смарт-контракт: биз жеке капчыктарга гана төлөйбүз. "
                         "Даректи алуучудан тактап алыңыз.",
}


@pytest.mark.parametrize(("language", "kind", "message"),
                         [("ru", k, m) for k, m in RU.items()] + [("ky", k, m) for k, m in KY.items()])
def test_web_form_refusal_is_in_the_chosen_language(client, pricing, chain, language, kind, message):
    """After choosing RU or KY in the header, the refusal beside the wallet field is in that language."""
    assert client.get(f"/language/{language}", {"next": "/"}).status_code == 302
    response = web_create(client, address_of(kind, chain))
    assert error_next_to_wallet(response) == message


@pytest.mark.parametrize("language", ["ru", "ky"])
def test_every_refusal_reason_has_a_translation(language):
    """Each reason recipient_check can give, and the retry message, reads differently in RU and KY than in English:
    no refusal falls back to English (test_i18n checks the catalogs' placeholders and compilation)."""
    from onchain.services import recipients
    from payments.services.transfers import WALLET_CHECK_RETRY

    reasons = {**recipients.REASONS, "unavailable": WALLET_CHECK_RETRY}
    assert set(reasons) == {"zero", "system", "token", "ours", "contract", "blacklisted", "unavailable"}
    for kind, reason in reasons.items():
        with translation.override("en"):
            english = str(reason)
        with translation.override(language):
            assert str(reason) != english, (kind, language)
