"""Forms of the sender web flow: they parse and validate input; prices and transfers stay in the services."""

import re
from decimal import Decimal

from django import forms
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from onchain.fields import validate_address
from payments.models import SOURCE_CURRENCIES
from payments.validators import validate_person_name, validate_phone

MAX_AMOUNT = Decimal("9999999999.99")


class ServiceErrorsMixin:
    """Show an ApplicationError from a service next to the field it names (`.field`), else above the form."""

    # Service field names (the API's dotted paths) → this form's field names.
    service_fields = {}

    def add_service_error(self, exc):
        errors = getattr(exc, "errors", None) or {exc.field: [exc.detail]}  # several fields at once, or one
        for service_field, messages in errors.items():
            field = self.service_fields.get(service_field, service_field)
            for message in messages:
                self.add_error(field if field in self.fields else None, message)

    def _described_by(self):
        # Each input points at its error slot (and help text), so screen readers read the message with the field.
        for name, field in self.fields.items():
            ids = [f"{name}-error"]
            if field.help_text:
                ids.append(f"id_{name}_helptext")
            field.widget.attrs.setdefault("aria-describedby", " ".join(ids))


def amount_normalise(text):
    """How people type money → a plain decimal string: `10 000`, `1,5`, `1 000,50`, `1,000.50`, `10,000`.

    With both separators the later one is the decimal point. A lone comma is a decimal comma unless every
    group after it has three digits (money has two decimals, so `10,000` can only mean ten thousand)."""
    text = re.sub(r"[\s\u00a0\u202f_']", "", text)
    if "," in text and "." in text:
        thousands = "." if text.rfind(",") > text.rfind(".") else ","
        text = text.replace(thousands, "").replace(",", ".")
    elif "," in text:
        text = text.replace(",", "") if re.fullmatch(r"[-+]?\d{1,3}(,\d{3})+", text) else text.replace(",", ".")
    return text


class AmountField(forms.DecimalField):
    def to_python(self, value):
        if isinstance(value, str):
            value = amount_normalise(value)
        return super().to_python(value)


class AmountForm(ServiceErrorsMixin, forms.Form):
    """The amount and which side it fixes: "I send" (the amount is what the sender pays, in their currency) or
    "They receive" (the amount is the som the recipient gets exactly). The input keeps its name `source_amount`
    either way (links and scripts post it); `quote_kwargs()` hands the service the right one."""

    # The service names the receive-fixed amount `target_amount`; here it is the same input.
    service_fields = {"target_amount": "source_amount"}

    direction = forms.ChoiceField(
        label=_("I choose"), choices=[("send", _("what I send")), ("receive", _("what they receive"))],
        initial="send", required=False, widget=forms.RadioSelect,
        error_messages={"invalid_choice": _("Choose whether you fix the amount you send or the som they receive.")})
    source_currency = forms.ChoiceField(
        label=_("Currency"), choices=[(code, code) for code, _name in SOURCE_CURRENCIES], initial="RUB",
        error_messages={"invalid_choice": _("Choose rubles (RUB) or US dollars (USD)."),
                        "required": _("Choose the currency you send.")})
    # What the recipient receives: som (KGST on BNB Chain) or dollars (USDKG on Ethereum). Optional in the post
    # (older links and scripts send none): som.
    target_currency = forms.ChoiceField(
        label=_("They receive"), required=False, initial="KGS", widget=forms.RadioSelect,
        choices=[("KGS", _("som (KGST on BNB Chain)")), ("USD", _("US dollars (USDKG on Ethereum)"))],
        error_messages={"invalid_choice": _("Choose what the recipient receives: som (KGS) or US dollars (USD).")})
    source_amount = AmountField(
        label=_("Amount"), max_digits=12, decimal_places=2, min_value=Decimal("0.01"), max_value=MAX_AMOUNT,
        error_messages={
            "required": _("Enter the amount you want to send."),
            "invalid": _("Enter the amount as a number, for example 10000 or 150.50."),
            "min_value": _("Enter an amount above zero."),
            "max_value": _("This amount is too large."),
            "max_digits": _("This amount is too large."),
            "max_whole_digits": _("This amount is too large."),
            "max_decimal_places": _("Use at most two decimals (kopecks or cents)."),
        },
        widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off", "placeholder": "10000"}))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._described_by()
        # Live preview: htmx asks for the price fragment as the sender types or switches currency.
        live = {"hx-get": reverse("web:quote_preview"), "hx-target": "#quote-preview",
                "hx-sync": "closest form:replace"}
        target = "[name=target_currency]:checked"
        self.fields["source_amount"].widget.attrs.update(
            live, **{"hx-trigger": "input changed delay:300ms", "hx-include": "#id_source_currency"})
        self.fields["source_currency"].widget.attrs.update(
            live, **{"hx-trigger": "change", "hx-include": f"#id_source_amount, [name=direction], {target}"})
        self.fields["source_amount"].widget.attrs["hx-include"] += f", [name=direction], {target}"
        self.fields["direction"].widget.attrs.update(
            live, **{"hx-trigger": "change", "hx-include": f"#id_source_amount, #id_source_currency, {target}"})
        self.fields["target_currency"].widget.attrs.update(
            live, **{"hx-trigger": "change", "hx-include": "#id_source_amount, #id_source_currency, [name=direction]"})

    def clean_direction(self):
        return self.cleaned_data.get("direction") or "send"

    def clean_target_currency(self):
        return self.cleaned_data.get("target_currency") or "KGS"

    def quote_kwargs(self):
        """quote_price / quote_create's arguments for the chosen direction and target currency."""
        data = self.cleaned_data
        key = "target_amount" if data["direction"] == "receive" else "source_amount"
        return {"source_currency": data["source_currency"], "target_currency": data["target_currency"],
                key: data["source_amount"]}


class DetailsForm(ServiceErrorsMixin, forms.Form):
    """Sender and recipient; with `travel_rule=True` (USD 1,000 or more, or the equivalent) also the travel rule's
    originator and beneficiary data (services/travel_rule.py says what is required; its messages land here)."""

    service_fields = {"recipient.wallet_address": "recipient_wallet", "recipient.phone": "recipient_phone",
                      "recipient.name": "recipient_name", "sender.name": "sender_name",
                      "sender.phone": "sender_phone", "sender.email": "sender_email",
                      "travel_rule.originator.address": "originator_address",
                      "travel_rule.originator.date_of_birth": "originator_date_of_birth",
                      "travel_rule.beneficiary.country": "beneficiary_country"}
    travel_rule_fields = ("originator_address", "originator_date_of_birth", "originator_id_number",
                          "beneficiary_country")

    sender_name = forms.CharField(label=_("Your full name"), max_length=140, validators=[validate_person_name],
                                  widget=forms.TextInput(attrs={"autocomplete": "name"}))
    sender_phone = forms.CharField(label=_("Your phone"), max_length=30,
                                   widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "tel",
                                                                 "placeholder": "+7 900 123-45-67"}))
    sender_email = forms.EmailField(label=_("Your email"), max_length=254,
                                    error_messages={"invalid": _("Enter a valid email address.")},
                                    help_text=_("Only used about this transfer."),
                                    widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    recipient_name = forms.CharField(label=_("Recipient's full name"), max_length=140,
                                     validators=[validate_person_name], widget=forms.TextInput(attrs={"autocomplete": "off"}))
    recipient_phone = forms.CharField(label=_("Recipient's phone"), max_length=30,
                                      widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "off",
                                                                    "placeholder": "+996 555 123 456"}))
    recipient_wallet = forms.CharField(
        label=_("Recipient's wallet address"), required=False,
        help_text=_("A BEP-20 (BNB Smart Chain) address that starts with 0x. The som arrive there as KGST. "
                    "Leave it empty if you do not know it: the recipient gets an SMS and chooses where to receive."),
        widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "off", "spellcheck": "false",
                                      "placeholder": "0x…", "class": "mono"}))
    # The travel rule's extra fields (shown and required only at or above its threshold).
    originator_address = forms.CharField(label=_("Your address"), max_length=300, required=False,
                                         help_text=_("Street, city and country where you live."),
                                         widget=forms.TextInput(attrs={"autocomplete": "street-address"}))
    originator_date_of_birth = forms.DateField(
        label=_("Your date of birth"), required=False, help_text=_("Or give your ID document number below."),
        error_messages={"invalid": _("Enter the date as YYYY-MM-DD.")},
        widget=forms.DateInput(attrs={"type": "date", "autocomplete": "bday"}, format="%Y-%m-%d"))
    originator_id_number = forms.CharField(label=_("Your ID document number"), max_length=40, required=False,
                                           widget=forms.TextInput(attrs={"autocomplete": "off"}))
    beneficiary_country = forms.CharField(label=_("Recipient's country"), max_length=2, required=False,
                                          initial="KG", help_text=_("Two-letter code, for example KG."),
                                          widget=forms.TextInput(attrs={"autocomplete": "off", "size": 2}))
    # Generated when the form is first shown: a double submit replays the first transfer instead of making two.
    idempotency_key = forms.UUIDField(widget=forms.HiddenInput,
                                      error_messages={"required": _("This form is out of date: reload the page."),
                                                      "invalid": _("This form is out of date: reload the page.")})

    def __init__(self, *args, travel_rule=False, target_currency="KGS", **kwargs):
        super().__init__(*args, **kwargs)
        self.travel_rule = travel_rule
        if target_currency == "USD":  # dollars are paid as USDKG on Ethereum: an Ethereum address
            self.fields["recipient_wallet"].help_text = _(
                "An Ethereum (ERC-20) address that starts with 0x. The dollars arrive there as USDKG. Leave it empty "
                "if you do not know it: the recipient gets an SMS and chooses where to receive.")
        if not travel_rule:
            for name in self.travel_rule_fields:
                del self.fields[name]
        self._described_by()

    @property
    def travel_rule_visible_fields(self):
        return [self[name] for name in self.travel_rule_fields if name in self.fields]

    def clean_sender_phone(self):
        return validate_phone(self.cleaned_data["sender_phone"])

    def clean_recipient_phone(self):
        return validate_phone(self.cleaned_data["recipient_phone"])

    def clean_recipient_wallet(self):
        # Pasted addresses often carry spaces or line breaks; the checksum form is what gets stored.
        wallet = "".join(self.cleaned_data["recipient_wallet"].split())
        return validate_address(wallet) if wallet else ""  # empty: the recipient claims it (services/claims.py)

    def service_payload(self):
        """The body transfer_create takes, in the API's shape (its fingerprint covers exactly this)."""
        data = self.cleaned_data
        return {
            "sender": {"name": data["sender_name"], "phone": data["sender_phone"], "email": data["sender_email"]},
            "recipient": {"name": data["recipient_name"], "phone": data["recipient_phone"],
                          **({"wallet_address": data["recipient_wallet"]} if data["recipient_wallet"] else {})},
            **({"travel_rule": {
                "originator": {"address": data["originator_address"],
                               "date_of_birth": data["originator_date_of_birth"],
                               "id_number": data["originator_id_number"]},
                "beneficiary": {"country": data["beneficiary_country"].strip().upper()},
            }} if self.travel_rule else {}),
        }


class PayForm(ServiceErrorsMixin, forms.Form):
    """What the pay page's script posts: the id of the card Stripe.js tokenised (`tok_…` or `pm_…`)."""

    service_fields = {"card": "card_token"}

    card_token = forms.RegexField(
        regex=r"^(tok|pm|card|src)_[A-Za-z0-9_]{1,250}$", max_length=255, widget=forms.HiddenInput,
        error_messages={"required": _("Enter your card details."),
                        "invalid": _("The card details could not be read: enter them again.")})


class ClaimSendForm(forms.Form):
    """The recipient asks for a one-time code (sent to the phone the sender gave); no input but the button."""


class ClaimForm(ServiceErrorsMixin, forms.Form):
    """The recipient's one-time code and where to be paid: a wallet, or a payout partner and the account there."""

    service_fields = {"recipient.payout_partner": "payout_partner", "recipient.wallet_address": "wallet_address"}

    code = forms.RegexField(label=_("Code from the SMS"), regex=r"^\s*[0-9]{6}\s*$", max_length=12,
                            error_messages={"required": _("Enter the 6-digit code from the SMS."),
                                            "invalid": _("Enter the 6-digit code from the SMS.")},
                            widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "one-time-code"}))
    wallet_address = forms.CharField(
        label=_("Your wallet address"), required=False, max_length=120,
        help_text=_("A BEP-20 (BNB Smart Chain) address that starts with 0x. Or choose a payout partner below."),
        widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "off", "spellcheck": "false",
                                      "placeholder": "0x…", "class": "mono"}))
    payout_partner = forms.ChoiceField(label=_("Or get it paid out by"), required=False)
    account = forms.CharField(label=_("Your account or phone at the payout partner"), required=False, max_length=64,
                              widget=forms.TextInput(attrs={"autocomplete": "off"}))

    def __init__(self, *args, partners=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["payout_partner"].choices = [("", _("— none: pay to my wallet —"))] + [
            (p.code, p.name) for p in partners]
        self._described_by()

    def clean_wallet_address(self):
        wallet = "".join(self.cleaned_data["wallet_address"].split())
        return validate_address(wallet) if wallet else ""

    def clean(self):
        data = super().clean()
        wallet, partner, account = data.get("wallet_address"), data.get("payout_partner"), data.get("account", "")
        if wallet and partner:
            self.add_error("payout_partner", _("Give a wallet address or choose a payout partner, not both."))
        elif partner and not account.strip():
            self.add_error("account", _("Give your account or phone number at the payout partner."))
        elif not partner and "wallet_address" in data and not wallet:
            self.add_error("wallet_address", _("Give a wallet address or choose a payout partner."))
        return data
