"""Russian and Kyrgyz: the sender pages and the messages next to form fields follow the chosen language.

The language is chosen with the header's switch (/language/<code>), which stores Django's language cookie;
a first visit without the cookie follows the browser's Accept-Language."""

import gettext
import html
import re
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext_lazy
from eth_utils import to_checksum_address

from payments.errors import CardRefused, QuoteExpired, TransferNotPayable
from payments.models import Quote, Transfer
from payments.services.quotes import quote_create

pytestmark = pytest.mark.django_db

WALLET = to_checksum_address("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed")
BAD_CHECKSUM = WALLET.swapcase().replace("0X", "0x")
LOCALE = Path(settings.BASE_DIR) / "locale"


def choose(client, code):
    response = client.get(f"/language/{code}", {"next": "/"})
    assert response.status_code == 302
    assert response.cookies["django_language"].value == code
    return client


def error_next_to(response, field):
    """The text of the error slot rendered beside `field` (the element with id "<field>-error")."""
    content = response.content.decode()
    match = re.search(rf'<p class="field-error" id="{re.escape(field)}-error"[^>]*>(.*?)</p>', content, re.S)
    assert match, f"no error slot for {field} in the page"
    return html.unescape(match.group(1)).strip()


@pytest.fixture
def quote(pricing):
    return quote_create(source_currency="RUB", source_amount=Decimal("10000.00"), partner=None)


def details_data(**overrides):
    data = {"sender_name": "Айбек Усенов", "sender_phone": "+7 916 123-45-67", "sender_email": "aibek@example.com",
            "recipient_name": "Гульнара Усенова", "recipient_phone": "+996 555 123 456",
            "recipient_wallet": WALLET, "idempotency_key": str(uuid.uuid4())}
    data.update(overrides)
    return data


# Russian -----------------------------------------------------------------------------------------

def test_start_page_in_russian(client, pricing):
    """After choosing RU in the header, the start page, its labels and the footer are Russian."""
    content = choose(client, "ru").get("/").content.decode()
    assert '<html lang="ru">' in content
    assert "Переводы в Кыргызстан" in content
    assert "Как это работает" in content
    assert ">Сумма</label>" in content
    assert "Send money to Kyrgyzstan" not in content


def test_bad_amount_gets_the_russian_error_next_to_the_field(client, pricing):
    """A negative amount posted to the start form is refused with the Russian message beside the amount field."""
    response = choose(client, "ru").post("/", {"source_currency": "RUB", "source_amount": "-5"})
    assert response.status_code == 200
    assert error_next_to(response, "source_amount") == "Введите сумму больше нуля."
    assert Quote.objects.count() == 0


def test_amount_outside_the_corridor_gets_the_service_message_in_russian(client, pricing):
    """The corridor limits come from the quote service; its message reaches the field in Russian, numbers included."""
    response = choose(client, "ru").get("/quote-preview", {"source_currency": "RUB", "source_amount": "100"})
    assert error_next_to(response, "source_amount") == "Отправьте от 500,00 до 500000,00 RUB."


def test_bad_wallet_checksum_gets_the_russian_error(client, quote):
    """A wallet address with a broken EIP-55 checksum is refused beside the wallet field in Russian."""
    response = choose(client, "ru").post(f"/send/{quote.id}/details", details_data(recipient_wallet=BAD_CHECKSUM))
    assert response.status_code == 200
    assert error_next_to(response, "recipient_wallet") == (
        "Неверная контрольная сумма адреса (сочетание заглавных и строчных букв): проверьте, нет ли опечатки.")
    assert error_next_to(response, "sender_phone") == ""
    assert Transfer.objects.count() == 0


def test_bad_phone_gets_the_russian_error(client, quote):
    """The phone validator's message is Russian too."""
    response = choose(client, "ru").post(f"/send/{quote.id}/details", details_data(sender_phone="12345"))
    assert error_next_to(response, "sender_phone") == "Введите номер телефона с кодом страны: +7…, +996… или +1…"


# Kyrgyz ------------------------------------------------------------------------------------------

def test_start_page_in_kyrgyz(client, pricing):
    """After choosing KY in the header, the start page is Kyrgyz."""
    content = choose(client, "ky").get("/").content.decode()
    assert '<html lang="ky">' in content
    assert "Кыргызстанга акча жөнөтүү" in content
    assert "Бул кантип иштейт" in content


def test_bad_amount_gets_the_kyrgyz_error_next_to_the_field(client, pricing):
    """A negative amount is refused with the Kyrgyz message beside the amount field."""
    response = choose(client, "ky").post("/", {"source_currency": "RUB", "source_amount": "-5"})
    assert error_next_to(response, "source_amount") == "Нөлдөн чоң сумманы киргизиңиз."


def test_bad_wallet_checksum_gets_the_kyrgyz_error(client, quote):
    """The wallet checksum message is Kyrgyz when KY is chosen."""
    response = choose(client, "ky").post(f"/send/{quote.id}/details", details_data(recipient_wallet=BAD_CHECKSUM))
    assert error_next_to(response, "recipient_wallet").startswith("Даректин текшерүү суммасы")


def test_bad_email_gets_our_kyrgyz_message(client, quote):
    """The email message is our own (Django's Kyrgyz catalog garbles it), so it reads correctly in Kyrgyz."""
    response = choose(client, "ky").post(f"/send/{quote.id}/details", details_data(sender_email="aibek@"))
    assert error_next_to(response, "sender_email") == "Туура электрондук почта дарегин киргизиңиз."


def test_browser_language_is_used_before_any_choice(client, pricing):
    """Without the cookie, Accept-Language picks the language (here Kyrgyz), errors included."""
    response = client.post("/", {"source_currency": "RUB", "source_amount": "-5"}, HTTP_ACCEPT_LANGUAGE="ky,ru;q=0.8")
    assert '<html lang="ky">' in response.content.decode()
    assert error_next_to(response, "source_amount") == "Нөлдөн чоң сумманы киргизиңиз."


def test_english_stays_the_default(client, pricing):
    """With no cookie and no Accept-Language the site is English, with the English wording the other tests pin."""
    response = client.post("/", {"source_currency": "RUB", "source_amount": "-5"})
    assert '<html lang="en">' in response.content.decode()
    assert error_next_to(response, "source_amount") == "Enter an amount above zero."


# Service errors and catalogs ---------------------------------------------------------------------

def test_service_error_details_are_plain_strings_in_the_active_language():
    """An error's detail is fixed as a plain str when raised (it goes into JSON problem bodies); its title follows
    the language it is rendered in."""
    with translation.override("ru"):
        default = QuoteExpired()
        given = TransferNotPayable(gettext_lazy("Quote expired"))
    assert type(default.detail) is str and default.detail == "Срок действия расчёта истёк"
    assert type(given.detail) is str and given.detail == "Срок действия расчёта истёк"  # a lazy one is fixed too
    with translation.override("ky"):
        assert str(CardRefused.title) == "Бул картаны колдонууга болбойт"
    assert str(CardRefused.title) == "This card cannot be used"


def _po_entries(path):
    """msgid → (msgid_plural or None, list of msgstr: one, or one per plural form, fuzzy?) from a .po file."""
    entries = {}
    for block in path.read_text(encoding="utf-8").split("\n\n"):
        fuzzy = any(line.startswith("#,") and "fuzzy" in line for line in block.splitlines())
        parts, key = {}, None
        for line in block.splitlines():
            match = re.match(r'^(msgid|msgid_plural|msgstr(?:\[\d\])?) "(.*)"$', line)
            if match:
                key = match.group(1)
                parts[key] = match.group(2)
            elif line.startswith('"') and key:
                parts[key] += line[1:-1]
        if parts.get("msgid"):
            unescape = lambda s: s.encode("latin-1", "backslashreplace").decode("unicode_escape")  # noqa: E731
            strs = [unescape(v) for k, v in sorted(parts.items()) if k.startswith("msgstr")]
            plural = unescape(parts["msgid_plural"]) if "msgid_plural" in parts else None
            entries[unescape(parts["msgid"])] = (plural, strs, fuzzy)
    return entries


@pytest.mark.parametrize("code", ["ru", "ky"])
def test_catalog_is_complete_and_compiled(code):
    """Every message is translated, none is fuzzy, and the committed .mo holds exactly the .po's translations."""
    po = _po_entries(LOCALE / code / "LC_MESSAGES" / "django.po")
    assert len(po) > 150
    assert not [msgid for msgid, (_plural, _strs, fuzzy) in po.items() if fuzzy]
    assert not [msgid for msgid, (_plural, strs, _fuzzy) in po.items() if not strs or not all(strs)]
    with open(LOCALE / code / "LC_MESSAGES" / "django.mo", "rb") as mo_file:
        mo = gettext.GNUTranslations(mo_file)
    for msgid, (plural, strs, _fuzzy) in po.items():
        assert (mo.ngettext(msgid, plural, 1) if plural else mo.gettext(msgid)) == strs[0], msgid
        placeholders = set(re.findall(r"%\(\w+\)s", msgid))
        for text in strs:
            assert set(re.findall(r"%\(\w+\)s", text)) == placeholders, msgid


@pytest.mark.parametrize(("code", "choice", "error"), [
    ("ru", "доллары США (USDKG в Ethereum)", "Выберите, что получит получатель: сомы (KGS) или доллары США (USD)."),
    ("ky", "АКШ доллары (Ethereum тармагында USDKG)", "Алуучу эмне аларын тандаңыз: сом (KGS) же АКШ доллары (USD).")])
def test_the_som_or_dollars_choice_and_its_error_are_translated(client, pricing, code, choice, error):
    """The start page's som-or-dollars choice and the refusal of an unsupported target speak the chosen language."""
    chosen = choose(client, code)
    assert choice in chosen.get("/").content.decode()
    response = chosen.post("/", {"source_currency": "RUB", "source_amount": "10000", "target_currency": "EUR"})
    assert error_next_to(response, "target_currency") == error
    assert Quote.objects.count() == 0
