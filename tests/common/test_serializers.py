"""FieldsOnce (common/serializers.py) answers exactly what DRF's generic path answers, for every kind of transfer and
quote the API shows, and refuses a nesting it cannot represent."""

import json
import uuid
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer

from common.serializers import FieldsOnce
from onchain.selectors import Settlement
from payments.api.serializers import QuoteOutputSerializer, TransferOutputSerializer
from payments.models import PartnerPayout, PayoutPartner, Quote, Transfer
from payments.services.setup import partner_create
from tests.conftest import new_recipient

pytestmark = pytest.mark.django_db
S = Transfer.Status


def generic(serializer):
    """DRF's own representation: every field built for this instance and read through `fields`."""
    return json.loads(JSONRenderer().render(serializers.Serializer.to_representation(serializer, serializer.instance)))


def fast(serializer):
    return json.loads(JSONRenderer().render(serializer.data))


def make_transfer(partner, *, currency="RUB", target="KGS", method=Transfer.FundingMethod.CARD, status=S.AWAITING_FUNDING,
                  **fields):
    now = timezone.now()
    quote = Quote.objects.create(
        partner=partner, source_currency=currency, source_amount=Decimal("1000.00"), target_currency=target,
        target_amount=Decimal("1061.07") if target == "KGS" else Decimal("950.00"), official_rate=Decimal("1.07850000"),
        official_rate_date=date(2026, 11, 30), rate=Decimal("1.06"), fee=Decimal("50.00"),
        expires_at=now + timedelta(minutes=10))
    return Transfer.objects.create(
        partner=partner, quote=quote, idempotency_key=f"k-{uuid.uuid4()}", request_fingerprint="0" * 64,
        status=status, funding_method=method, sender_name="Aibek Usenov", sender_phone="+79161234567",
        sender_email="a@example.com", recipient_name="Gulnara Usenova", recipient_phone="+996555123456",
        recipient_wallet=new_recipient(), **fields)


@pytest.fixture
def transfers(partner):
    now = timezone.now()
    bank = PayoutPartner.objects.create(code="demir-bank", name="Demir Bank", kind=PayoutPartner.Kind.BANK,
                                        operator=partner_create(name="demir")[0])
    via_bank = make_transfer(partner, method=Transfer.FundingMethod.BALANCE, status=S.SETTLING, funded_at=now)
    PartnerPayout.objects.create(transfer=via_bank, payout_partner=bank, recipient_account="40817810")
    return [
        make_transfer(partner),  # a card transfer waiting for its payment
        make_transfer(partner, payment_intent_id="pi_1", payment_client_secret="pi_1_secret_x", card_attempts=2),
        make_transfer(partner, currency="USD", target="USD", status=S.FUNDED, funded_at=now,
                      release_after=now + timedelta(minutes=30), reference="inv-7"),  # a US remittance receipt
        make_transfer(partner, method=Transfer.FundingMethod.BALANCE, status=S.COMPLETED, funded_at=now,
                      completed_at=now + timedelta(seconds=3)),
        make_transfer(partner, status=S.SETTLEMENT_FAILED, failure_reason="the chain refused the payout"),
        via_bank,
    ]


def test_transfer_output_is_drfs_own_for_every_kind(transfers):
    for transfer in Transfer.objects.filter(pk__in=[t.pk for t in transfers]).select_related(
            "quote", "partner_payout__payout_partner"):
        serializer = TransferOutputSerializer(transfer)
        assert fast(serializer) == generic(TransferOutputSerializer(transfer))
    assert fast(TransferOutputSerializer(transfers[-1]))["recipient"]["payout_partner"] == "demir-bank"


def test_method_fields_read_the_current_context(transfers):
    """A list hands each page's settlements in through the context: the plan built once must not keep an old one."""
    transfer = transfers[3]
    for n in (1, 2):
        settlement = Settlement(chain_id=56, token_address="0x" + "1" * 40, to_address=transfer.recipient_wallet,
                                amount_base_units=str(10**18 * n), status="final", tx_hash="0x" + "a" * 64,
                                block_number=100 + n, confirmations=2, required_confirmations=2, explorer_url="")
        serializer = TransferOutputSerializer(transfer, context={"settlements": {transfer.pk: settlement}})
        assert fast(serializer) == generic(TransferOutputSerializer(
            transfer, context={"settlements": {transfer.pk: settlement}}))
        assert fast(serializer)["settlement"]["block_number"] == 100 + n


def test_quote_output_is_drfs_own_alone_and_in_lists(transfers):
    quotes = [t.quote for t in transfers]
    for quote in quotes:
        assert fast(QuoteOutputSerializer(quote)) == generic(QuoteOutputSerializer(quote))
    many = json.loads(JSONRenderer().render(QuoteOutputSerializer(quotes, many=True).data))
    assert many == [generic(QuoteOutputSerializer(q)) for q in quotes]


def test_a_nested_serializer_without_the_mixin_is_refused():
    class Plain(serializers.Serializer):
        name = serializers.CharField()

    class Outer(FieldsOnce, serializers.Serializer):
        inner = Plain()

    with pytest.raises(TypeError, match="nests only FieldsOnce"):
        Outer({"inner": {"name": "x"}}).to_representation({"inner": {"name": "x"}})
