"""Who may receive a payout: the addresses a payout must never go to are refused before a transfer is accepted.

BatchPayout pays all or nothing, so one payout that cannot be paid reverts every payout of its batch (up to
BATCH_MAX_SIZE) and spends the gas; some addresses are worse, because paying them succeeds and the money is gone
(the zero address of a token that allows it, a contract that cannot move tokens). `recipient_check` refuses:

- the zero address and every address below SYSTEM_ADDRESS_CEILING (0x10000): the precompiles (0x01-0x11 up to
  Prague, P256VERIFY at 0x100), BNB Chain's precompiles (0x64-0x69) and its system contracts (0x1000-0x3000).
  Nobody holds a key for an address with 144 leading zero bits, so no person is refused by the range;
- our own tokens, batch contracts and hot wallets (retired ones too), from our tables, without asking the node;
- any address with code (`eth_getCode`, latest), except an EIP-7702 delegation designator (exactly 0xef0100 + a
  20-byte address): that account is still an externally owned account whose key moves its tokens, an ERC-20
  transfer to it runs no code, and wallets upgrade ordinary users this way, so it is accepted;
- an address the token itself refuses (an issuer blacklist, as USDT, USDC and A7A5 have): one base unit simulated
  from where payouts are paid (`eth_call` of `transfer` from the batch contract, or the hot wallet without one),
  counted only when the same call to a control address passes (so a short float or a token that refuses every
  call is not blamed on the recipient).

The node is asked outside any database transaction. A node that does not answer raises ChainUnavailable (a 503 for
the caller: retry), never a silent accept. An address can still turn bad after it was accepted (code deployed at
it, a blacklist entry): the tracker then isolates the payout that made its batch revert (onchain.services.isolation).
"""

import logging

import requests
from django.conf import settings
from django.db.models import Exists, Q
from django.utils.translation import gettext_lazy as _
from eth_abi import encode as abi_encode
from eth_utils import keccak, to_checksum_address
from hexbytes import HexBytes
from web3._utils.error_formatters_utils import raise_contract_logic_error_on_revert
from web3.exceptions import ContractLogicError, Web3RPCError

from onchain import client
from onchain.errors import ChainUnavailable, RecipientRefused
from onchain.models import HotWallet, Token

log = logging.getLogger(__name__)

SYSTEM_ADDRESS_CEILING = 0x10000
# ERC-20 transfer(address,uint256), encoded by hand: building a web3 contract object per check cost more than the
# rest of the check's CPU (make bench-api --profile).
TRANSFER_SELECTOR = "0x" + keccak(text="transfer(address,uint256)")[:4].hex()
DELEGATION_PREFIX = bytes.fromhex("ef0100")  # EIP-7702: 0xef0100 || address, 23 bytes
# A fixed address nobody holds (the last 20 bytes of a hash): what a recipient's simulated transfer is compared to.
CONTROL_ADDRESS = to_checksum_address(keccak(text="tulpar recipient control address")[-20:])
RPC_FAILURES = (requests.RequestException, Web3RPCError)

REASONS = {
    "zero": _("This is the zero address: nobody owns it and money sent to it is lost. "
              "Check the recipient's wallet address."),
    "system": _("This is a reserved address of the blockchain itself, not a wallet. "
                "Check the recipient's wallet address."),
    "token": _("This is the address of the %(symbol)s token contract, not a wallet. "
               "Enter the recipient's own wallet address."),
    "ours": _("This address belongs to our payout system, not to the recipient. "
              "Enter the recipient's own wallet address."),
    "contract": _("This address is a smart contract, not a personal wallet: we pay only to personal wallets. "
                  "Check the address with the recipient."),
    "blacklisted": _("The %(symbol)s token does not accept transfers to this address (its issuer may have blocked "
                     "it). Check the address with the recipient."),
}


def _refuse(kind, **params):
    reason = str(REASONS[kind])
    raise RecipientRefused(reason % params if params else reason, kind=kind)


def is_delegation(code):
    """An EIP-7702 delegated EOA's code: the designator and nothing else."""
    return len(code) == 23 and bytes(code[:3]) == DELEGATION_PREFIX


def recipient_check(address, *, symbol="KGST"):
    """Refuse (RecipientRefused, with a translated reason for the person who typed `address`) an address no payout of
    `symbol` may go to; return None when it may receive payouts. Raises ChainUnavailable when the node does not
    answer. Call outside any transaction: it reads the chain."""
    value = int(address, 16)
    if value == 0:
        _refuse("zero")
    if value < SYSTEM_ADDRESS_CEILING:
        _refuse("system")
    address = to_checksum_address(address)
    # Our tokens named by the address (as a token or its batch contract) and the payout token, in one read.
    # Whether it is one of our hot wallets rides on the same row (no second read), while any token is registered.
    tokens = list(Token.objects.select_related("chain").filter(
        Q(address=address) | Q(batch_contract=address) | Q(symbol=symbol)).order_by("id")
        .annotate(is_hot_wallet=Exists(HotWallet.objects.filter(address=address))))
    ours = next((t for t in tokens if t.address == address), None)
    if ours is not None:
        _refuse("token", symbol=ours.symbol)
    hot_wallet = tokens[0].is_hot_wallet if tokens else HotWallet.objects.filter(address=address).exists()
    if any(t.batch_contract == address for t in tokens) or hot_wallet:
        _refuse("ours")
    token = next((t for t in tokens if t.symbol == symbol), None)
    w3 = client.web3(token.chain if token is not None else None)  # the chain the payout is made on
    payer = payer_of(token)
    try:
        # The code and the simulated transfer in one round trip (a JSON-RPC batch, not web3's per-call formatters and
        # chain-id checks): most of this check's cost was the two calls (make bench-api --profile).
        code, refusal = _code_and_refusal(w3, token, payer, address)
        if code and not is_delegation(code):
            _refuse("contract")
        if _blamed_on_recipient(w3, token, payer, refusal):
            _refuse("blacklisted", symbol=token.symbol)
    except RPC_FAILURES as exc:
        log.warning("recipient_check_unavailable address=%s error=%s", address, type(exc).__name__)
        raise ChainUnavailable("The chain's node did not answer; the address could not be checked.") from exc


def _code_and_refusal(w3, token, payer, address):
    """(the code at `address`, why one base unit of `token` from `payer` to it would fail or None): eth_getCode and
    the eth_call of `transfer` in one batch. No payer (no token or no wallet yet): only the code is asked."""
    batch = [("eth_getCode", [address, "latest"])]
    if payer:
        batch.append(("eth_call", [{"from": payer, "to": token.address, "data": _transfer_data(address, 1)}, "latest"]))
    responses = w3.provider.make_batch_request(batch)
    if len(responses) != len(batch):
        raise Web3RPCError(f"batch of {len(batch)} answered with {len(responses)}")
    code = _result(responses[0])
    if not payer:
        return HexBytes(code), None
    try:
        returned = _result(responses[1])
    except ContractLogicError as exc:
        return HexBytes(code), _reverted(exc)
    return HexBytes(code), _returned_refusal(HexBytes(returned))


def _result(response):
    """A batch entry's result; a revert as web3 reads one (ContractLogicError), any other error as Web3RPCError."""
    if "error" in response:
        raise_contract_logic_error_on_revert(response)  # raises on a revert
        raise Web3RPCError(f"{response['error']!r}"[:200])
    return response.get("result") or "0x"


def _transfer_data(to, amount):
    return TRANSFER_SELECTOR + abi_encode(["address", "uint256"], [to, amount]).hex()


def _reverted(exc):
    return f"reverts {exc.data or exc.message or 'without data'}"[:120]


def _blamed_on_recipient(w3, token, payer, refusal, amount=1):
    """A refusal counts against the recipient only when the same call to a control address passes (a short float,
    or a token that refuses everyone, is not the recipient's doing). Node failures propagate."""
    return refusal is not None and transfer_refusal(w3, token, payer, CONTROL_ADDRESS, amount) is None


def _returned_refusal(returned):
    if len(returned) < 32 or int.from_bytes(returned[:32], "big") != 1:
        return "returns false"
    return None


def payer_of(token):
    """Where payouts of `token` are paid from: its batch contract, or (batching off) the first active hot wallet."""
    if token is None:
        return None
    if settings.SETTLEMENT_BATCHING and token.batch_contract:
        return token.batch_contract
    return (HotWallet.objects.filter(chain=token.chain, is_active=True, halted=False).order_by("id")
            .values_list("address", flat=True).first())


def transfer_refusal(w3, token, payer, to, amount):
    """Why `token.transfer(to, amount)` sent by `payer` would fail at the latest block (the revert data, or a note
    that it returned something else than true), or None when it would pass. Node failures propagate."""
    try:
        returned = w3.eth.call({"from": payer, "to": token.address, "data": _transfer_data(to, amount)}, "latest")
    except ContractLogicError as exc:
        return _reverted(exc)
    return _returned_refusal(returned)


def token_refuses(w3, token, payer, to, amount):
    """Why the token refuses `amount` from `payer` to `to` while it accepts the same to a control address, else None
    (it passes, or it fails for everyone: a short balance is not the recipient's doing). Node failures propagate."""
    refusal = transfer_refusal(w3, token, payer, to, amount)
    if not _blamed_on_recipient(w3, token, payer, refusal, amount):
        return None
    return f"the token refuses transfers to {to} ({refusal})"
