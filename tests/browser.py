"""Browser tests' shared parts: Debian's Chromium driven by Playwright (one module-scoped `browser` fixture, the skip
marker), a page that fails its test on a JavaScript error, the card step as Stripe.js (localstripe's) shows it,
axe-core (npm) for accessibility checks, and screenshots under test-artifacts/ (git-ignored). Test modules and
conftest files import the fixtures from here."""

import contextlib
import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
AXE_JS = ROOT / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
# A mid-range phone (CSS pixels): where our senders are.
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}
# WCAG 2.1 A and AA plus axe's best practices; a violation of impact serious or critical fails the page.
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]
BLOCKING = {"serious", "critical"}

requires_chromium = pytest.mark.skipif(not shutil.which("chromium"),
                                       reason="Debian's chromium is not installed (make test installs it)")


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


def axe_violations(page):
    """axe-core's violations on the page as it is now: [(rule id, impact, help, [selectors])]. Injected through the
    DevTools protocol (page.evaluate), so the page's Content-Security-Policy stays as it is."""
    page.evaluate(AXE_JS.read_text())
    result = page.evaluate("tags => axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: "
                           "['violations']})", AXE_TAGS)
    return [(v["id"], v["impact"], v["help"], [", ".join(n["target"]) for n in v["nodes"]][:5])
            for v in result["violations"]]


def assert_accessible(page, label):
    """No serious or critical axe violation on the page; minor and moderate ones are printed for the record."""
    found = axe_violations(page)
    blocking = [v for v in found if v[1] in BLOCKING]
    for v in found:
        if v not in blocking:
            print(f"axe {label}: {v[1]} {v[0]}: {v[2]} {v[3]}")
    assert blocking == [], f"{label}: {blocking}"


def screenshot(page, folder, step):
    """A full-page PNG of the step under test-artifacts/<folder>/, named by step number and name."""
    target = ARTIFACTS / folder
    target.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target / f"{re.sub(r'[^a-z0-9_-]+', '-', step.lower())}.png"), full_page=True)


@contextlib.contextmanager
def page_in(browser, **context_options):
    """A page in a context of its own (locale, viewport, ...) that fails its test on any JavaScript error."""
    context = browser.new_context(**context_options)
    errors = []
    try:
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        yield page
    finally:
        context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


@pytest.fixture
def page(browser):
    """An en-US page that fails its test on any JavaScript error."""
    with page_in(browser, locale="en-US") as en_page:
        yield en_page


def pay_by_card(page, number="4242424242424242"):
    """On the pay page: the card typed into Stripe.js's (localstripe's) inputs, Pay, and the 3-D Secure step that
    localstripe asks for every card that supports it."""
    card = page.locator("#card-element")
    card.locator("input[placeholder=number]").fill(number)
    card.locator("input[placeholder=exp_month]").fill("12")
    card.locator("input[placeholder=exp_year]").fill("30")
    card.locator("input[placeholder=cvc]").fill("123")
    card.locator("input[placeholder=postal_code]").fill("10001")
    page.click("#pay-button")
    page.get_by_role("button", name="Complete authentication").click()
