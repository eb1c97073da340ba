from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from onchain.fields import validate_address
from payments.models import SOURCE_CURRENCIES, TARGET_CURRENCIES, Quote, Transfer
from payments.selectors import transfer_settlement
from payments.validators import validate_person_name, validate_phone

MAX_AMOUNT = Decimal("9999999999.99")


class QuoteInputSerializer(serializers.Serializer):
    """Exactly one amount: `source_amount` (send-fixed: the sender pays this, fee included) or `target_amount`
    (receive-fixed: the recipient gets exactly this many som)."""

    source_currency = serializers.ChoiceField(choices=SOURCE_CURRENCIES)
    source_amount = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=Decimal("0.01"),
                                             max_value=MAX_AMOUNT, required=False)
    target_amount = serializers.DecimalField(max_digits=14, decimal_places=2, min_value=Decimal("0.01"),
                                             max_value=MAX_AMOUNT, required=False)
    target_currency = serializers.ChoiceField(choices=TARGET_CURRENCIES)

    def validate(self, attrs):
        if "source_amount" in attrs and "target_amount" in attrs:
            raise serializers.ValidationError(
                {"target_amount": ["Give source_amount (what the sender pays) or target_amount (what the recipient "
                                   "receives), not both."]})
        if "source_amount" not in attrs and "target_amount" not in attrs:
            raise serializers.ValidationError(
                {"source_amount": ["Give source_amount (what the sender pays) or target_amount (what the recipient "
                                   "receives)."]})
        return attrs


class QuoteOutputSerializer(serializers.ModelSerializer):
    """Everything a sender compares: our rate and the official one, the fee, what is charged, the som received and
    the total cost (fee plus spread against the official rate) in percent."""

    total_charged = serializers.DecimalField(max_digits=12, decimal_places=2, read_only=True)
    cost_percent = serializers.DecimalField(max_digits=5, decimal_places=2, read_only=True)

    class Meta:
        model = Quote
        fields = ["id", "direction", "source_currency", "source_amount", "target_currency", "target_amount", "rate",
                  "official_rate", "official_rate_date", "fee", "total_charged", "cost_percent", "expires_at",
                  "created_at", "livemode"]


class PhoneField(serializers.CharField):
    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        try:
            return validate_phone(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from exc


class WalletField(serializers.CharField):
    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        try:
            return validate_address(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from exc


class SenderSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=140, validators=[validate_person_name])
    phone = PhoneField(max_length=20)
    email = serializers.EmailField()


class RecipientSerializer(serializers.Serializer):
    """Paid to a wallet (`wallet_address`) or through a payout partner (`payout_partner` and the recipient's
    `account` there): exactly one of the two (docs/api.md, "Payout partners")."""

    name = serializers.CharField(max_length=140, validators=[validate_person_name])
    phone = PhoneField(max_length=20)
    wallet_address = WalletField(max_length=42, required=False)
    payout_partner = serializers.CharField(max_length=40, required=False,
                                           help_text="A payout partner's id or code: it pays the som out to the "
                                                     "recipient's `account` and confirms it.")
    account = serializers.CharField(max_length=64, required=False,
                                    help_text="The recipient's account number or phone at the payout partner.")

    def validate(self, attrs):
        if "wallet_address" in attrs and "payout_partner" in attrs:
            raise serializers.ValidationError({"payout_partner": [
                "Give wallet_address (paid to a wallet) or payout_partner (paid out by a partner), not both."]})
        if "payout_partner" in attrs:
            if not attrs.get("account", "").strip():
                raise serializers.ValidationError({"account": [
                    "Give the recipient's account or phone at the payout partner."]})
            attrs["account"] = attrs["account"].strip()
        elif "wallet_address" in attrs:
            if "account" in attrs:
                raise serializers.ValidationError({"account": ["account goes with payout_partner, not with a wallet."]})
        else:
            raise serializers.ValidationError({"wallet_address": [
                "Give wallet_address (paid to a wallet) or payout_partner with account (paid out by a partner)."]})
        return attrs


class FundingInputSerializer(serializers.Serializer):
    method = serializers.ChoiceField(choices=Transfer.FundingMethod.choices, default=Transfer.FundingMethod.CARD,
                                     help_text="`card` (default): pay the PaymentIntent with Stripe.js. `balance`: "
                                               "funded at once from your prefunded balance in the quote's currency.")


class OriginatorSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=140, required=False, validators=[validate_person_name],
                                 help_text="Defaults to sender.name.")
    address = serializers.CharField(max_length=300, required=False)
    date_of_birth = serializers.DateField(required=False, allow_null=True)
    id_number = serializers.CharField(max_length=40, required=False, allow_blank=True)
    account = serializers.CharField(max_length=100, required=False, allow_blank=True,
                                    help_text="The sender's account or wallet reference with you, if any.")


class BeneficiarySerializer(serializers.Serializer):
    name = serializers.CharField(max_length=140, required=False, validators=[validate_person_name],
                                 help_text="Defaults to recipient.name (the wallet is recipient.wallet_address).")
    country = serializers.RegexField(r"^[A-Za-z]{2}$", required=False,
                                     help_text="ISO 3166-1 alpha-2 code of the recipient's country.")


class TravelRuleSerializer(serializers.Serializer):
    """Required (originator.address, originator.date_of_birth or id_number, beneficiary.country) for USD 1,000 or
    more or the equivalent (docs/compliance.md); ignored below."""

    originator = OriginatorSerializer(required=False)
    beneficiary = BeneficiarySerializer(required=False)


def validate_reference(value):
    # Printable only: a reference is shown in dashboards, logs and CSV exports, where a control character misleads.
    if not value.isprintable():
        raise serializers.ValidationError("Use printable characters only (no control characters or line breaks).")


class TransferInputSerializer(serializers.Serializer):
    quote_id = serializers.UUIDField()
    reference = serializers.CharField(
        max_length=64, required=False, allow_blank=True, validators=[validate_reference],
        help_text="Your own id for this transfer: up to 64 printable characters, unique among your transfers "
                  "(reusing one is 409 `reference-already-used`). Returned on the transfer; `?reference=` finds it.")
    sender = SenderSerializer()
    recipient = RecipientSerializer()
    funding = FundingInputSerializer(required=False)
    travel_rule = TravelRuleSerializer(required=False)


class TransferOutputSerializer(serializers.ModelSerializer):
    quote = QuoteOutputSerializer()
    sender = serializers.SerializerMethodField()
    recipient = serializers.SerializerMethodField()
    funding = serializers.SerializerMethodField()
    settlement = serializers.SerializerMethodField()
    sender_status_url = serializers.SerializerMethodField()
    recipient_status_url = serializers.SerializerMethodField()

    class Meta:
        model = Transfer
        fields = ["id", "reference", "status", "quote", "sender", "recipient", "funding", "settlement",
                  "sender_status_url", "recipient_status_url", "failure_reason", "created_at", "funded_at",
                  "completed_at", "livemode"]

    def get_sender(self, obj) -> dict:
        return {"name": obj.sender_name, "phone": obj.sender_phone, "email": obj.sender_email}

    def get_recipient(self, obj) -> dict:
        recipient = {"name": obj.recipient_name, "phone": obj.recipient_phone, "wallet_address": obj.recipient_wallet}
        payout = getattr(obj, "partner_payout", None)
        if payout is not None:  # paid through a payout partner: wallet_address is the partner's settlement address
            recipient.update(payout_partner=payout.payout_partner.code, account=payout.recipient_account,
                             payout_reference=payout.reference, payout_status=payout.status)
        return recipient

    def get_funding(self, obj) -> dict:
        # card_attempts_left: what the pay page still takes for this transfer (CARD_ATTEMPTS_PER_TRANSFER);
        # payout_not_before: a new sender's or a large transfer's payout delay, once funded.
        card = obj.funding_method == Transfer.FundingMethod.CARD
        return {"method": obj.funding_method, "payment_intent_id": obj.payment_intent_id or None,
                "client_secret": obj.payment_client_secret or None,
                "amount": str(obj.quote.source_amount), "currency": obj.quote.source_currency,
                "card_attempts_left": max(settings.CARD_ATTEMPTS_PER_TRANSFER - obj.card_attempts, 0) if card else None,
                "payout_not_before": obj.release_after.isoformat() if obj.release_after else None}

    def get_settlement(self, obj) -> dict | None:
        # A list view hands in the whole page's settlements (one query for all); a single transfer reads its own.
        page = self.context.get("settlements")
        settlement = page.get(obj.pk) if page is not None else transfer_settlement(transfer=obj)
        return settlement.as_dict() if settlement else None

    def get_sender_status_url(self, obj) -> str:
        return f"{settings.PUBLIC_BASE_URL}/t/{obj.sender_token}"

    def get_recipient_status_url(self, obj) -> str:
        return f"{settings.PUBLIC_BASE_URL}/r/{obj.recipient_token}"
