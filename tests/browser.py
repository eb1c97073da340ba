"""Browser fixtures shared by the end-to-end tests: Debian's Chromium driven by Playwright, axe-core (npm) for
accessibility checks, and screenshots under test-artifacts/ (kept out of git; CI keeps the folder)."""

import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
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
