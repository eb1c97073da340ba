import re
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from common.openapi import component_extra
from common.serializers import FieldsOnce
from onchain.fields import validate_address
from payments.assets import ASSETS, asset_for
from payments.models import SOURCE_CURRENCIES, TARGET_CURRENCIES, PartnerPayout, Quote, Transfer
from payments.selectors import transfer_settlement
from payments.services import us_remittance
from payments.validators import validate_person_name, validate_phone

MAX_AMOUNT = Decimal("9999999999.99")
# An amount is a JSON string in plain decimal notation, above zero, at most 10 digits before the point and 2 after,
# without leading zeros: "150", "150.5", "0.01". JSON numbers (binary floats to most parsers), exponents ("1e3"),
# signs and blanks are refused, so the schema's pattern and the server accept exactly the same strings.
AMOUNT_PATTERN = r"^(?:[1-9][0-9]{0,9}(?:\.[0-9]{1,2})?|0\.(?:0[1-9]|[1-9][0-9]?))$"
_AMOUNT = re.compile(AMOUNT_PATTERN)
# The shapes validate_phone and validate_address can accept; they check the rest (the number plan, the checksum).
PHONE_PATTERN = r"^(?:\+|00)[0-9][0-9 ().-]*$"
WALLET_PATTERN = r"^0x[0-9a-fA-F]{40}$"
# Blank names are refused (surrounding spaces are trimmed); so are invisible and control characters
# (payments/validators.py).
_HIDDEN = r"\x00-\x1f\x7f-\x9f\u00ad\u2028\u2029\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff\ue000-\uf8ff"
NAME_PATTERN = rf"^[^{_HIDDEN}]*[^{_HIDDEN}\s][^{_HIDDEN}]*$"
# Free text: DRF refuses NUL characters and (trimming surrounding whitespace) a blank value where one is not allowed;
# these patterns say so in the schema. As validators they never refuse anything those checks let through.
TEXT_PATTERN = r"^[^\x00]*[^\x00\s][^\x00]*$"
TEXT_OR_BLANK_PATTERN = r"^[^\x00]*$"
# A reference: printable only (validate_reference); the characters a pattern can list are a 400, the rest a 422.
REFERENCE_PATTERN = rf"^[^{_HIDDEN}]*$"
REFERENCE_MESSAGE = "Use printable characters only (no control characters or line breaks)."
_HIDDEN_CHAR = re.compile(f"[{_HIDDEN}]")
_NOT_SPACE = re.compile(r"\S")


# The patterns above are for the schema. The server checks the same rules without them: `[^x]*[^x\s][^x]*` backtracks
# quadratically on a long value that fails at its end (16,000 characters took 2 s), and DRF runs validators even when
# the length check has already failed.
def _names_rule(value):
    return _HIDDEN_CHAR.search(value) is None and _NOT_SPACE.search(value) is not None


class _TextRule(RegexValidator):
    """Carries the pattern for the schema (drf-spectacular reads `regex`) and checks the same rule in linear time."""

    def __init__(self, *, allow_blank):
        super().__init__(TEXT_OR_BLANK_PATTERN if allow_blank else TEXT_PATTERN)
        self.allow_blank = allow_blank

    def __call__(self, value):
        if "\x00" in str(value) or not (self.allow_blank or _NOT_SPACE.search(str(value))):
            raise DjangoValidationError(self.message, code=self.code)
NAME_DESCRIPTION = ("1 to 140 characters, not blank; invisible and control characters (zero-width, bidi marks, "
                    "private-use or unassigned code points) are refused.")


@extend_schema_field({"type": "string", "pattern": AMOUNT_PATTERN, "examples": ["15000.00"],
                      "description": "A decimal string above zero: up to 10 digits, optionally a point and 1 or 2 "
                                     "decimals; JSON numbers and exponents are refused."})
class AmountField(serializers.DecimalField):
    def __init__(self, **kwargs):
        super().__init__(max_digits=12, decimal_places=2, min_value=Decimal("0.01"), max_value=MAX_AMOUNT, **kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str) or not _AMOUNT.match(data):
            raise serializers.ValidationError('Send the amount as a string of digits with at most 2 decimals, '
                                              'above zero, like "15000.00".', code="invalid")
        return super().to_internal_value(data)


class QuoteInputSerializer(serializers.Serializer):
    """Exactly one amount: `source_amount` (send-fixed: the sender pays this, fee included) or `target_amount`
    (receive-fixed: the recipient gets exactly this many som)."""

    source_currency = serializers.ChoiceField(choices=SOURCE_CURRENCIES)
    source_amount = AmountField(required=False)
    target_amount = AmountField(required=False)
    target_currency = serializers.ChoiceField(
        choices=TARGET_CURRENCIES, help_text="What the recipient receives: KGS (som, paid as KGST on BNB Chain) or USD "
                                             "(dollars, paid as USDKG on Ethereum).")

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


class ContactSerializer(serializers.Serializer):
    email = serializers.CharField()
    phone = serializers.CharField()


class RegulatorSerializer(serializers.Serializer):
    name = serializers.CharField()
    website = serializers.CharField()
    phone = serializers.CharField()


class UsRemittanceSerializer(serializers.Serializer):
    """The US remittance rule's disclosure (12 CFR 1005.31) for a USD sender: show it before payment (on the quote)
    and as the receipt after (on the transfer, with `cancel_until`). Amounts are decimal strings."""

    transfer_amount = serializers.CharField(help_text="Sent, before our fee.")
    fee = serializers.CharField(help_text="Our fee.")
    taxes = serializers.CharField(help_text="Taxes we collect: none.")
    total = serializers.CharField(help_text="What the sender pays.")
    currency = serializers.CharField()
    exchange_rate = serializers.CharField(help_text="Som per dollar, after our margin.")
    other_fees = serializers.CharField(help_text="Fees charged by others: none (paid in full on-chain).")
    other_taxes = serializers.CharField(help_text="Taxes charged by others: none.")
    amount_received = serializers.CharField()
    received_currency = serializers.CharField()
    date_available = serializers.DateField(help_text="In Bishkek.")
    cancel_minutes = serializers.IntegerField(help_text="The sender may cancel this long after paying.")
    cancel_until = serializers.DateTimeField(allow_null=True, help_text="Null before payment.")
    provider_contact = ContactSerializer()
    regulator = RegulatorSerializer()


class QuoteOutputSerializer(FieldsOnce, serializers.ModelSerializer):
    """Everything a sender compares: our rate and the official one, the fee, what is charged, the som received and
    the total cost (fee plus spread against the official rate) in percent."""

    total_charged = serializers.DecimalField(max_digits=12, decimal_places=2, read_only=True)
    cost_percent = serializers.DecimalField(max_digits=5, decimal_places=2, read_only=True)
    asset = serializers.SerializerMethodField()
    network = serializers.SerializerMethodField()
    us_remittance = serializers.SerializerMethodField()

    class Meta:
        model = Quote
        fields = ["id", "direction", "source_currency", "source_amount", "target_currency", "target_amount", "asset",
                  "network", "rate", "official_rate", "official_rate_date", "fee", "total_charged", "cost_percent",
                  "expires_at", "created_at", "livemode", "us_remittance"]
        read_only_fields = fields  # always present in a response: `required` in the schema

    @extend_schema_field({"type": "string", "enum": [a.symbol for a in ASSETS.values()],
                          "description": "The stablecoin paid out: KGST for KGS, USDKG for USD."})
    def get_asset(self, obj):
        return asset_for(obj.target_currency).symbol

    @extend_schema_field({"type": "string", "enum": [a.network for a in ASSETS.values()],
                          "description": "The network it is paid on: BNB Chain for KGST, Ethereum for USDKG."})
    def get_network(self, obj):
        return asset_for(obj.target_currency).network

    @extend_schema_field(UsRemittanceSerializer(allow_null=True))
    def get_us_remittance(self, obj):
        # USD only: the disclosure to show before payment (null for other currencies).
        return us_remittance.disclosure(quote=obj).as_dict() if us_remittance.applies_to_quote(obj) else None


def text_field(*, allow_blank=False, **kwargs):
    """A CharField whose schema pattern says what DRF refuses anyway: NUL characters, and blank unless allowed."""
    validators = [_TextRule(allow_blank=allow_blank), *kwargs.pop("validators", [])]
    return serializers.CharField(allow_blank=allow_blank, validators=validators, **kwargs)


@extend_schema_field({"type": "string", "minLength": 1, "maxLength": 140, "pattern": NAME_PATTERN,
                      "description": NAME_DESCRIPTION})
class NameField(serializers.CharField):
    """Hidden characters the pattern lists are a 400; the others it cannot list (unassigned code points, rare format
    characters) are refused all the same, as a 422 invalid-value (common/errors.py)."""

    def __init__(self, **kwargs):
        super().__init__(max_length=140, **kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if len(value) > self.max_length:  # before any character check: a long value costs nothing more
            self.fail("max_length", max_length=self.max_length)
        try:
            validate_person_name(value)
        except DjangoValidationError as exc:
            code = "name_characters" if _names_rule(value) else "invalid"
            raise serializers.ValidationError(exc.messages, code=code) from exc
        return value


# `format` names what the pattern cannot check (the number plan, the EIP-55 checksum); tests/payments/
# schemathesis_hooks.py generates valid values for them.
@extend_schema_field({"type": "string", "format": "phone", "minLength": 5, "maxLength": 20, "pattern": PHONE_PATTERN,
                      "examples": ["+996555123456"],
                      "description": "With its country code, +7, +996 or +1 (E.164; spaces, dashes, dots and brackets "
                                     "allowed), and a valid number of that plan."})
class PhoneField(serializers.CharField):
    """A value the pattern refuses is a 400; one that fits it but is no number of the plan, a 422 (common/errors.py)."""

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        try:
            number = validate_phone(value)
        except DjangoValidationError as exc:
            code = "phone_number_plan" if re.match(PHONE_PATTERN, value) else "invalid"
            raise serializers.ValidationError(exc.messages, code=code) from exc
        return number


@extend_schema_field({"type": "string", "format": "evm-address", "pattern": WALLET_PATTERN, "minLength": 42,
                      "maxLength": 42,
                      "examples": ["0x52908400098527886E0F7030069857D2E4169EE7"],
                      "description": "0x and 40 hex digits; mixed case must carry a correct EIP-55 checksum."})
class WalletField(serializers.CharField):
    """A malformed address is a 400; a well-formed one with a wrong checksum, a 422 (common/errors.py)."""

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        try:
            return validate_address(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages, code=exc.error_list[0].code) from exc


# Exactly one of the two amounts (validate() below); the schema says so too.
# A wallet, or a payout partner with the recipient's account there (RecipientSerializer.validate).
component_extra("RecipientRequest", oneOf=[
    {"required": ["wallet_address"], "not": {"anyOf": [{"required": ["payout_partner"]}, {"required": ["account"]}]}},
    {"required": ["payout_partner", "account"], "not": {"required": ["wallet_address"]}},
    {"not": {"anyOf": [{"required": ["wallet_address"]}, {"required": ["payout_partner"]},
                       {"required": ["account"]}]}}])

component_extra("QuoteInputRequest", oneOf=[
    {"required": ["source_amount"], "not": {"required": ["target_amount"]}},
    {"required": ["target_amount"], "not": {"required": ["source_amount"]}}])


class SenderSerializer(serializers.Serializer):
    name = NameField()
    phone = PhoneField(max_length=20)
    email = serializers.EmailField(max_length=254)  # the column's length (Transfer.sender_email)


class RecipientSerializer(serializers.Serializer):
    """Paid to a wallet (`wallet_address`) or through a payout partner (`payout_partner` and the recipient's
    `account` there): at most one of the two (docs/api.md, "Payout partners"). Neither: the transfer waits, once paid
    and screened, in `awaiting_claim` until the recipient claims it by phone (docs/api.md, "Recipient claim")."""

    name = NameField()
    phone = PhoneField(max_length=20)
    wallet_address = WalletField(max_length=42, required=False)
    payout_partner = text_field(max_length=40, required=False,
                                           help_text="A payout partner's id or code: it pays the som out to the "
                                                     "recipient's `account` and confirms it.")
    account = text_field(max_length=64, required=False,
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
        elif "account" in attrs:
            raise serializers.ValidationError({"account": ["account goes with payout_partner."]})
        # Neither: the recipient claims it by phone and names the destination then (docs/states.md, awaiting_claim).
        return attrs


DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"


@extend_schema_field({"type": ["string", "null"], "format": "date", "pattern": DATE_PATTERN,
                      "description": "YYYY-MM-DD."})
class IsoDateField(serializers.DateField):
    """Only YYYY-MM-DD (Python's fromisoformat, under DRF's DateField, also takes "20260101" and week dates)."""

    def to_internal_value(self, value):
        if not isinstance(value, str) or not re.match(DATE_PATTERN, value):
            raise serializers.ValidationError("Give the date as YYYY-MM-DD.", code="invalid")
        try:
            return super().to_internal_value(value)
        except serializers.ValidationError:
            raise serializers.ValidationError("This date does not exist.", code="date_invalid") from None


@extend_schema_field({"type": "string", "minLength": 1, "maxLength": 300, "pattern": r"\S",
                      "description": "Postal address, not blank."})
class AddressLineField(serializers.CharField):
    def __init__(self, **kwargs):
        super().__init__(max_length=300, **kwargs)


class FundingInputSerializer(serializers.Serializer):
    method = serializers.ChoiceField(choices=Transfer.FundingMethod.choices, default=Transfer.FundingMethod.CARD,
                                     help_text="`card` (default): pay the PaymentIntent with Stripe.js. `balance`: "
                                               "funded at once from your prefunded balance in the quote's currency.")


class OriginatorSerializer(serializers.Serializer):
    name = NameField(required=False, help_text="Defaults to sender.name.")
    address = AddressLineField(required=False)
    date_of_birth = IsoDateField(required=False, allow_null=True)
    id_number = serializers.CharField(max_length=40, required=False, allow_blank=True)
    account = serializers.CharField(max_length=100, required=False, allow_blank=True,
                                    help_text="The sender's account or wallet reference with you, if any.")


class BeneficiarySerializer(serializers.Serializer):
    name = NameField(required=False, help_text="Defaults to recipient.name (the wallet is recipient.wallet_address).")
    country = serializers.RegexField(r"^[A-Za-z]{2}$", max_length=2, required=False,
                                     help_text="ISO 3166-1 alpha-2 code of the recipient's country.")


class TravelRuleSerializer(serializers.Serializer):
    """Required (originator.address, originator.date_of_birth or id_number, beneficiary.country) for USD 1,000 or
    more or the equivalent (docs/compliance.md); ignored below."""

    originator = OriginatorSerializer(required=False)
    beneficiary = BeneficiarySerializer(required=False)


def validate_reference(value):
    # Printable only: a reference is shown in dashboards, logs and CSV exports, where a control character misleads.
    # A character the schema's pattern lists is refused by its validator (400); one it cannot list (a rare space or
    # format character, an unassigned code point) fits the schema and is a 422 invalid-value.
    if not value.isprintable() and re.match(REFERENCE_PATTERN, value):
        raise serializers.ValidationError(REFERENCE_MESSAGE, code="text_characters")


class TransferInputSerializer(serializers.Serializer):
    quote_id = serializers.UUIDField()
    reference = serializers.CharField(
        max_length=64, required=False, allow_blank=True, validators=[RegexValidator(REFERENCE_PATTERN, REFERENCE_MESSAGE),
                                                                      validate_reference],
        help_text="Your own id for this transfer: up to 64 printable characters, unique among your transfers "
                  "(reusing one is 409 `reference-already-used`). Returned on the transfer; `?reference=` finds it.")
    sender = SenderSerializer()
    recipient = RecipientSerializer()
    funding = FundingInputSerializer(required=False)
    travel_rule = TravelRuleSerializer(required=False)


class SenderOutputSerializer(serializers.Serializer):
    name = serializers.CharField()
    phone = serializers.CharField(help_text="E.164.")
    email = serializers.EmailField()


class RecipientOutputSerializer(serializers.Serializer):
    name = serializers.CharField()
    phone = serializers.CharField(help_text="E.164.")
    wallet_address = serializers.CharField(help_text="EIP-55 checksum form (a payout partner's settlement address "
                                                     "when paid through one); empty until the recipient claims a "
                                                     "transfer sent to a phone only.")
    # Null unless the transfer is paid out by a payout partner (docs/api.md, "Payout partners").
    payout_partner = serializers.CharField(allow_null=True, help_text="The payout partner's code.")
    account = serializers.CharField(allow_null=True, help_text="The recipient's account at the payout partner.")
    payout_reference = serializers.CharField(allow_null=True, help_text="The reference the payout partner sees.")
    payout_status = serializers.ChoiceField(choices=PartnerPayout.Status.choices, allow_null=True,
                                            help_text="pending, awaiting, confirmed or failed.")


class FundingOutputSerializer(serializers.Serializer):
    method = serializers.ChoiceField(choices=Transfer.FundingMethod.choices)
    payment_intent_id = serializers.CharField(allow_null=True, help_text="Stripe PaymentIntent (card funding).")
    client_secret = serializers.CharField(allow_null=True, help_text="For Stripe.js on your page (card funding).")
    amount = serializers.DecimalField(max_digits=12, decimal_places=2, help_text="What the sender pays.")
    currency = serializers.CharField()
    card_attempts_left = serializers.IntegerField(allow_null=True, min_value=0,
                                                  help_text="Cards the pay page still takes (card funding).")
    payout_not_before = serializers.DateTimeField(allow_null=True,
                                                  help_text="A new sender's or a large transfer's payout delay.")


class SettlementOutputSerializer(serializers.Serializer):
    """The payout on-chain (onchain.selectors.Settlement): KGST, or USDKG for a USD target (quote.asset)."""

    chain_id = serializers.IntegerField()
    token_address = serializers.CharField()
    to_address = serializers.CharField()
    amount_base_units = serializers.CharField(help_text="Token base units as a string (exact past 2**53).")
    status = serializers.CharField()
    tx_hash = serializers.CharField(allow_null=True)
    block_number = serializers.IntegerField(allow_null=True)
    confirmations = serializers.IntegerField(min_value=0)
    required_confirmations = serializers.IntegerField(min_value=0)
    explorer_url = serializers.CharField(help_text="Empty until a transaction is sent.")


class TransferOutputSerializer(FieldsOnce, serializers.ModelSerializer):
    quote = QuoteOutputSerializer()
    sender = serializers.SerializerMethodField()
    recipient = serializers.SerializerMethodField()
    funding = serializers.SerializerMethodField()
    settlement = serializers.SerializerMethodField()
    sender_status_url = serializers.SerializerMethodField()
    recipient_status_url = serializers.SerializerMethodField()
    us_remittance = serializers.SerializerMethodField()

    class Meta:
        model = Transfer
        fields = ["id", "reference", "status", "quote", "sender", "recipient", "funding", "settlement",
                  "sender_status_url", "recipient_status_url", "failure_reason", "created_at", "funded_at",
                  "completed_at", "livemode", "us_remittance"]
        read_only_fields = fields

    @extend_schema_field(UsRemittanceSerializer(allow_null=True))
    def get_us_remittance(self, obj):
        # A USD card transfer: the receipt (cancel_until once paid); null otherwise (a balance-funded transfer is
        # the partner's own remittance to its customer).
        return us_remittance.disclosure(quote=obj.quote, transfer=obj).as_dict() if us_remittance.applies(obj) else None

    @extend_schema_field(SenderOutputSerializer)
    def get_sender(self, obj):
        return {"name": obj.sender_name, "phone": obj.sender_phone, "email": obj.sender_email}

    @extend_schema_field(RecipientOutputSerializer)
    def get_recipient(self, obj):
        recipient = {"name": obj.recipient_name, "phone": obj.recipient_phone, "wallet_address": obj.recipient_wallet,
                     "payout_partner": None, "account": None, "payout_reference": None, "payout_status": None}
        payout = getattr(obj, "partner_payout", None)
        if payout is not None:  # paid through a payout partner: wallet_address is the partner's settlement address
            recipient.update(payout_partner=payout.payout_partner.code, account=payout.recipient_account,
                             payout_reference=payout.reference, payout_status=payout.status)
        return recipient

    @extend_schema_field(FundingOutputSerializer)
    def get_funding(self, obj):
        # card_attempts_left: what the pay page still takes for this transfer (CARD_ATTEMPTS_PER_TRANSFER);
        # payout_not_before: a new sender's or a large transfer's payout delay, once funded.
        card = obj.funding_method == Transfer.FundingMethod.CARD
        return {"method": obj.funding_method, "payment_intent_id": obj.payment_intent_id or None,
                "client_secret": obj.payment_client_secret or None,
                "amount": str(obj.quote.source_amount), "currency": obj.quote.source_currency,
                "card_attempts_left": max(settings.CARD_ATTEMPTS_PER_TRANSFER - obj.card_attempts, 0) if card else None,
                "payout_not_before": obj.release_after.isoformat() if obj.release_after else None}

    @extend_schema_field(SettlementOutputSerializer(allow_null=True))
    def get_settlement(self, obj):
        # A list view hands in the whole page's settlements (one query for all); a single transfer reads its own.
        page = self.context.get("settlements")
        settlement = page.get(obj.pk) if page is not None else transfer_settlement(transfer=obj)
        return settlement.as_dict() if settlement else None

    def get_sender_status_url(self, obj) -> str:
        return f"{settings.PUBLIC_BASE_URL}/t/{obj.sender_token}"

    def get_recipient_status_url(self, obj) -> str:
        return f"{settings.PUBLIC_BASE_URL}/r/{obj.recipient_token}"
