"""Dollars to the recipient (issue 13): a transfer whose quote targets USD is paid out as USDKG, in base units from
the USDKG token's own decimals (6 here, not KGST's 18), posts its ledger entries in dollars (usdkg_float, no FX leg
mixing currencies), and the API and both status pages say which asset and network pay it. USDKG is a second dev
token on the session's anvil here; the code reads the chain from the token, so a real second chain works alike."""

from collections import defaultdict
from decimal import Decimal

import pytest
from django.test import Client

from onchain.models import ReconciliationCursor, Token
from onchain.services import devchain
from onchain.services.treasury import treasury_check
from payments.models import JournalEntry, Posting, Transfer, to_minor
from payments.services import balances
from payments.services.ledger import account_balance
from tests.conftest import new_recipient, token_balance, wait_for

S = Transfer.Status
USDKG_DECIMALS = 6
SENDER = {"name": "Aibek Usenov", "phone": "+79161234567", "email": "aibek@example.com"}
_DEPLOYED = {}  # chain id → (token, batch contract): tests flush the tables between cases, the chain keeps its code


@pytest.fixture
def usdkg(chain):
    """A dev USDKG (6 decimals) and its batch contract on the test anvil, registered with the hot wallet as operator
    and the float funded; reused across tests while its code is on the chain."""
    w3, wallet = chain["w3"], chain["wallet"]
    token_address, batch_address = _DEPLOYED.get(w3.eth.chain_id, (None, None))
    if not (devchain._has_code(w3, token_address) and devchain._has_code(w3, batch_address)):
        token_address = devchain._deploy(w3, "KGST", "USDKG (dev)", "USDKG", USDKG_DECIMALS)
        batch_address = devchain._deploy(w3, "BatchPayout", token_address, w3.eth.accounts[0])
        _DEPLOYED[w3.eth.chain_id] = (token_address, batch_address)
    token, _ = Token.objects.update_or_create(chain=chain["chain"], symbol="USDKG", defaults={
        "address": token_address, "decimals": USDKG_DECIMALS, "batch_contract": batch_address})
    ReconciliationCursor.objects.get_or_create(token=token, defaults={"last_block": w3.eth.block_number})
    devchain._ensure_operator(w3, token, wallet.address)
    float_units = 1_000_000 * 10**USDKG_DECIMALS
    devchain._fund_tokens(w3, token, wallet.address, float_units)
    devchain._fund_tokens(w3, token, batch_address, float_units)
    treasury_check(token_id=token.pk)
    return token


def ledger_sums():
    sums = defaultdict(int)
    for currency, amount in Posting.objects.values_list("account__currency", "amount_minor"):
        sums[currency] += amount
    return dict(sums)


def create_transfer(api, quote_id, wallet, key):
    body = {"quote_id": quote_id, "sender": SENDER, "funding": {"method": "balance"},
            "recipient": {"name": "Gulnara Usenova", "phone": "+996555123456", "wallet_address": wallet}}
    response = api.post("/api/v1/transfers", body, format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert response.status_code == 201, response.content
    return response.json()


@pytest.mark.django_db(transaction=True)
def test_a_ruble_transfer_to_dollars_completes_as_usdkg_with_balanced_dollar_entries(
        api, partner, pricing, chain, usdkg, celery_processes):
    """RUB→USD funded from the partner's balance: the real worker pays the quoted dollars as USDKG on anvil, exactly
    target × 10^6 base units (the token's decimals); `completed`; the funding entry sells rubles and buys dollars
    through fx_position (each currency balanced on its own), the payout pays recipient_payable from usdkg_float in
    USD; KGST is not touched. The API and both status pages name USDKG on Ethereum."""
    balances.balance_topup(partner=partner, currency="RUB", amount=Decimal("20000.00"), reference="USDKG-E2E-1")
    quote = api.post("/api/v1/quotes", {"source_currency": "RUB", "source_amount": "15000.00",
                                        "target_currency": "USD"}, format="json").json()
    assert (quote["asset"], quote["network"]) == ("USDKG", "Ethereum")
    recipient = new_recipient()
    kgst_before = token_balance(chain["token"], recipient)
    created = create_transfer(api, quote["id"], recipient, "usdkg-e2e-1")
    wait_for(lambda: Transfer.objects.get(pk=created["id"]).status == S.COMPLETED, timeout=90,
             what="the dollar transfer to complete")

    dollars = Decimal(quote["target_amount"])
    assert token_balance(usdkg, recipient) == int(dollars.scaleb(USDKG_DECIMALS))
    assert token_balance(chain["token"], recipient) == kgst_before == 0
    assert ledger_sums() == {"RUB": 0, "USD": 0}
    payout = JournalEntry.objects.get(transfer_id=created["id"], kind="payout")
    assert sorted(payout.postings.values_list("account__code", "account__currency", "amount_minor")) == sorted([
        ("recipient_payable", "USD", to_minor(dollars, "USD")), ("usdkg_float", "USD", -to_minor(dollars, "USD"))])
    assert account_balance("usdkg_float", "USD") == -to_minor(dollars, "USD")
    assert account_balance("kgst_float", "KGS") == 0

    detail = api.get(f"/api/v1/transfers/{created['id']}").json()
    assert (detail["quote"]["asset"], detail["quote"]["network"]) == ("USDKG", "Ethereum")
    assert detail["settlement"]["token_address"] == usdkg.address
    assert detail["settlement"]["amount_base_units"] == str(int(dollars.scaleb(USDKG_DECIMALS)))
    transfer = Transfer.objects.get(pk=created["id"])
    for path in (f"/t/{transfer.sender_token}", f"/r/{transfer.recipient_token}"):
        page = Client().get(path, HTTP_ACCEPT_LANGUAGE="en").content.decode()
        assert "USDKG on Ethereum" in page and "Ethereum makes a payment final only after several minutes" in page


# Thresholds set in som, for dollars ------------------------------------------------------------------------------

def dollar_quote(source_currency, amount):
    from payments.services.quotes import quote_create

    return quote_create(source_currency=source_currency, target_currency="USD", source_amount=Decimal(amount),
                        partner=None)


@pytest.mark.django_db
def test_the_large_amount_payout_delay_compares_dollars_in_som(pricing, settings):
    """LARGE_AMOUNT_KGS is in som: 1 200 dollars received are 104 940 som at the seed USD rate (87.45), over a
    100 000 som threshold; 1 100 dollars (96 195 som) are under it. Without a usable USD rate the amount counts as
    large (never skipped by accident)."""
    from datetime import timedelta

    from django.utils import timezone

    from payments.models import Rate
    from payments.services.fraud import target_amount_kgs

    settings.LARGE_AMOUNT_KGS = Decimal("100000")
    big, small = dollar_quote("USD", "1214.13"), dollar_quote("USD", "1113.12")
    assert (big.target_amount, small.target_amount) == (Decimal("1200.00"), Decimal("1100.00"))
    assert target_amount_kgs(big) == Decimal("104940.0000") > settings.LARGE_AMOUNT_KGS
    assert target_amount_kgs(small) == Decimal("96195.0000") < settings.LARGE_AMOUNT_KGS
    old = timezone.now() - timedelta(days=5)
    Rate.objects.filter(source_currency="USD").update(effective_at=old, value_date=old.date())
    assert target_amount_kgs(small) == Decimal("Infinity")


@pytest.mark.django_db
def test_the_travel_rule_threshold_of_a_ruble_to_dollar_transfer_is_in_som(pricing):
    """RUB→USD's own rate is a cross, not som: the amount and USD 1 000 are both taken to som at the NBKR rates
    (1 000 USD = 87 450 som = 81 084.84 RUB at 1.0785)."""
    from payments.services.travel_rule import travel_rule_threshold

    under, over = dollar_quote("RUB", "81000.00"), dollar_quote("RUB", "81100.00")
    assert travel_rule_threshold(quote=under).threshold_kgs == Decimal("87450.0000")
    assert not travel_rule_threshold(quote=under).applies
    assert travel_rule_threshold(quote=over).applies


# The wallet check asks the token that pays -----------------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_a_wallet_the_usdkg_issuer_refuses_is_refused_for_dollars_and_accepted_for_som(api, partner, pricing, chain):
    """The recipient check runs on the token the quote pays out: an address USDKG's issuer has blacklisted is refused
    beside the wallet field for a dollar quote (nothing stored), while the same address passes the check for som
    (KGST does not refuse it), at creation and at a claim alike. Before, every check asked KGST's rules. No transfer
    is created, so no worker of the session touches the tables while they are flushed."""
    from payments.errors import WalletRefused
    from payments.services.transfers import wallet_destination_check
    from tests.security.helpers import blacklist, deploy

    w3 = chain["w3"]
    token = deploy(w3, "KGSTWithBlacklist", "USDKG (blacklist, dev)", "USDKG", USDKG_DECIMALS)
    batch = deploy(w3, "BatchPayout", token.address, w3.eth.accounts[0])
    token.functions.mint(batch.address, 10**12).transact({"from": w3.eth.accounts[0]})
    Token.objects.update_or_create(chain=chain["chain"], symbol="USDKG", defaults={
        "address": token.address, "decimals": USDKG_DECIMALS, "batch_contract": batch.address})
    listed = new_recipient()
    blacklist(w3, token, listed)

    dollars = api.post("/api/v1/quotes", {"source_currency": "RUB", "source_amount": "1000.00",
                                          "target_currency": "USD"}, format="json").json()
    body = {"quote_id": dollars["id"], "sender": SENDER, "funding": {"method": "balance"},
            "recipient": {"name": "Gulnara Usenova", "phone": "+996555123456", "wallet_address": listed}}
    refused = api.post("/api/v1/transfers", body, format="json", HTTP_IDEMPOTENCY_KEY="usdkg-bl-1")
    assert refused.status_code == 422, refused.content
    problem = refused.json()
    assert problem["type"].endswith("/wallet-refused") and problem["errors"][0]["field"].endswith("wallet_address")
    assert not Transfer.objects.exists()

    with pytest.raises(WalletRefused):  # a claim of a dollar transfer naming this wallet
        wallet_destination_check(address=listed, currency="USD")
    assert wallet_destination_check(address=listed, currency="KGS") is None  # som: KGST accepts it
