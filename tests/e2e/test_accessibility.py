"""Everyone can use the sender's and recipient's pages: the whole sender flow in each language on a phone-sized
viewport, with axe-core run on every page and every error state (0 serious or critical violations) and a screenshot
per step under test-artifacts/<language>/; the forms work by keyboard alone, with a visible focus."""

import pytest

from payments.models import Transfer
from tests.browser import (
    PHONE,
    assert_accessible,
    axe_violations,
    page_in,
    pay_by_card,
    requires_chromium,
    screenshot,
)
from tests.conftest import new_recipient

pytestmark = [pytest.mark.django_db(transaction=True), requires_chromium]

SENDERS = {
    "en": ("John Smith", "+1 212 555 1234", "USD", "100"),
    "ru": ("Айбек Усенов", "+7 916 123-45-67", "RUB", "15000"),
    "ky": ("Айбек Усенов", "+7 916 765-43-21", "RUB", "9000"),
}


@pytest.fixture
def phone(browser):
    with page_in(browser, **PHONE) as phone_page:
        yield phone_page


def check(page, language, step):
    screenshot(page, language, step)
    assert_accessible(page, f"{language}/{step}")


@pytest.mark.parametrize("language", ["en", "ru", "ky"])
def test_the_sender_flow_is_accessible_in_each_language_on_a_phone(
        phone, language, pricing, chain, stripe_webhook_to):
    """Amount (empty, refused, previewed), details (refused, accepted), card, the sender's status, the cancel page and
    the recipient's status: every page in `language` passes axe and is photographed."""
    live = stripe_webhook_to.url
    name, phone_number, currency, amount = SENDERS[language]
    page = phone
    page.goto(f"{live}/language/{language}?next=/")
    assert page.locator("html").get_attribute("lang") == language
    check(page, language, "01-amount")

    page.fill("#id_source_amount", "-5")
    page.click("#amount-submit")
    page.locator("#source_amount-error").wait_for()
    check(page, language, "02-amount-refused")

    page.fill("#id_source_amount", amount)
    page.select_option("#id_source_currency", currency)
    page.locator("#quote-preview [data-role=target-amount]").wait_for()
    check(page, language, "03-amount-previewed")
    page.click("#amount-submit")

    page.wait_for_url("**/details")
    check(page, language, "04-details")
    page.fill("#id_sender_name", name)
    page.fill("#id_sender_phone", phone_number)
    page.fill("#id_sender_email", f"sender-{language}@example.com")
    page.fill("#id_recipient_name", "Гүлнара Усенова")
    page.fill("#id_recipient_phone", "+996 555 123 456")
    page.fill("#id_recipient_wallet", "0x52908400098527886e0F7030069857D2E4169EE7")  # a wrong checksum
    page.click("#details-submit")
    page.locator("#recipient_wallet-error").wait_for()
    check(page, language, "05-details-refused")

    page.fill("#id_recipient_wallet", new_recipient().lower())
    page.click("#details-submit")
    page.wait_for_url("**/pay")
    page.locator("#card-element input").first.wait_for()
    check(page, language, "06-pay")

    pay_by_card(page)
    page.wait_for_url("**/t/*")
    page.locator("#transfer-status").wait_for()
    check(page, language, "07-sender-status")

    transfer = Transfer.objects.get(sender_email=f"sender-{language}@example.com")
    page.goto(f"{live}/t/{transfer.sender_token}/cancel")
    check(page, language, "08-cancel")

    page.goto(f"{live}/r/{transfer.recipient_token}")
    page.locator("#transfer-status").wait_for()
    assert page.locator("html").get_attribute("lang") == language
    check(page, language, "09-recipient-status")


def test_the_amount_form_works_by_keyboard_alone_with_a_visible_focus(phone, pricing, live_server):
    """Tab reaches the amount, the currency and the button in that order, each showing a focus ring, and Enter
    submits: no pointer needed."""
    page = phone
    page.goto(f"{live_server.url}/language/en?next=/")
    order = []
    for _ in range(12):
        page.keyboard.press("Tab")
        focused = page.evaluate("""() => { const e = document.activeElement; const s = getComputedStyle(e);
            return {id: e.id, ring: s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0 || s.boxShadow !== 'none'}; }""")
        order.append(focused["id"])
        if focused["id"] in {"id_source_amount", "id_source_currency", "amount-submit"}:
            assert focused["ring"], f"no visible focus on #{focused['id']}"
    ids = [i for i in order if i in {"id_source_amount", "id_source_currency", "amount-submit"}]
    assert ids[:3] == ["id_source_amount", "id_source_currency", "amount-submit"], order
    page.focus("#id_source_amount")
    page.keyboard.type("5000")
    page.keyboard.press("Enter")
    page.wait_for_url("**/details")


def test_the_axe_check_finds_what_it_must(phone):
    """The harness itself: a page with an unlabelled input, an image without text and grey-on-white text fails with
    those rules named (so a clean page above is clean, not unchecked)."""
    phone.set_content('<!doctype html><html lang="en"><head><title>t</title></head><body><main>'
                      '<input type="text"><img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">'
                      '<p style="color:#ccc;background:#fff">faint</p></main></body></html>')
    found = {rule for rule, impact, *_ in axe_violations(phone)
             if impact in {"serious", "critical"}}
    assert {"label", "image-alt", "color-contrast"} <= found


def test_the_pages_work_without_javascript_up_to_the_card_field(browser, pricing, chain, live_server):
    """With JavaScript off the amount and details forms submit (server-side quote, errors beside the fields), the pay
    page loads, and both status pages and the cancel page render and cancel: only the card field needs scripts."""
    context = browser.new_context(java_script_enabled=False, **PHONE)
    page = context.new_page()
    try:
        page.goto(f"{live_server.url}/language/en?next=/")
        page.fill("#id_source_amount", "5000")
        page.click("#amount-submit")
        page.wait_for_url("**/details")
        page.fill("#id_sender_name", "John Smith")
        page.fill("#id_sender_phone", "+1 212 555 1234")
        page.fill("#id_sender_email", "nojs@example.com")
        page.fill("#id_recipient_name", "Aida")
        page.fill("#id_recipient_phone", "+996555123456")
        page.fill("#id_recipient_wallet", "not a wallet")
        page.click("#details-submit")
        assert page.locator("#recipient_wallet-error").is_visible()
        page.fill("#id_recipient_wallet", new_recipient())
        page.click("#details-submit")
        page.wait_for_url("**/pay")
        assert page.locator("#card-needs-javascript").is_visible()
        transfer = Transfer.objects.get(sender_email="nojs@example.com")
        for url in (f"/t/{transfer.sender_token}", f"/r/{transfer.recipient_token}"):
            page.goto(live_server.url + url)
            assert page.locator("#transfer-status").is_visible()
        page.goto(f"{live_server.url}/t/{transfer.sender_token}/cancel")
        page.locator("form[method=post] button[type=submit]").click()
        page.wait_for_url(f"**/t/{transfer.sender_token}")
        transfer.refresh_from_db()
        assert transfer.status == "cancelled"
    finally:
        context.close()
