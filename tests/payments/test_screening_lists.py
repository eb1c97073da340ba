"""Screening reads the list store: once a list version is loaded, transfers are screened against its names (any
script) and its digital-currency addresses, and a newer version takes effect at once."""

from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import call_command

from payments.errors import WalletRefused
from payments.models import Transfer
from payments.services.quotes import quote_create
from payments.services.screening import CLEAR, HOLD, REJECT, screening_check
from payments.services.setup import partner_create
from payments.services.transfers import transfer_create
from tests.conftest import new_recipient

pytestmark = pytest.mark.django_db
LISTS = Path(__file__).parent / "data" / "sanctions"
LISTED_WALLET = "0x1111111111111111111111111111111111111111"


def transfer_to(*, recipient_name, wallet=None):
    partner, _ = partner_create(name="acme")
    quote = quote_create(partner=partner, source_currency="RUB", source_amount=Decimal("15000.00"))
    key = f"k-{Transfer.objects.count()}"
    transfer, _ = transfer_create(
        partner=partner, idempotency_key=key, fingerprint=key, quote_id=quote.id,
        sender={"name": "Aibek Usenov", "phone": "+79161234567", "email": "aibek@example.com"},
        recipient={"name": recipient_name, "phone": "+996555123456", "wallet_address": wallet or new_recipient()})
    return transfer


def load_opensanctions():
    call_command("sanctions_load", "opensanctions", str(LISTS / "opensanctions.ftm.json"))


def test_a_name_listed_in_a_loaded_version_holds_the_transfer_in_either_script(pricing):
    """Before the load the Kyrgyz name clears; after it, the same name in Cyrillic (with ү) holds, with the listed
    entry as the hit."""
    assert screening_check(transfer=transfer_to(recipient_name="Айгүл Токтогулова")).decision == CLEAR
    load_opensanctions()
    outcome = screening_check(transfer=transfer_to(recipient_name="Айгүл Токтогулова"))
    assert outcome.decision == HOLD
    assert outcome.hits and outcome.hits[0].source_id == "NK-sample-1003"


def test_a_wallet_listed_in_a_loaded_version_is_refused_at_creation_and_rejected_at_screening(pricing):
    """A listed digital-currency address, whatever its letter case: a transfer made before the list loaded is
    rejected when screened; a new transfer to it is refused at creation. Another wallet still clears."""
    earlier = transfer_to(recipient_name="Gulnara Usenova", wallet=LISTED_WALLET)
    load_opensanctions()
    assert screening_check(transfer=earlier).decision == REJECT
    with pytest.raises(WalletRefused):
        transfer_to(recipient_name="Gulnara Usenova", wallet="0x" + LISTED_WALLET[2:].upper())
    assert screening_check(transfer=transfer_to(recipient_name="Gulnara Usenova")).decision == CLEAR


def test_a_screening_record_names_the_list_versions_it_was_screened_against(pricing):
    """Once a list version is loaded, the recorded screening names that version (not the sample file's hash), so a
    reviewer can tell which lists a decision was made against."""
    from payments.models import SanctionsListVersion
    from payments.services import review

    load_opensanctions()
    version = SanctionsListVersion.objects.get(is_current=True)
    transfer = transfer_to(recipient_name="Айгүл Токтогулова")
    result = review.screening_result_record(transfer=transfer, outcome=screening_check(transfer=transfer),
                                            trigger=review.MANUAL)
    assert result.list_versions == {"opensanctions": version.pk}
