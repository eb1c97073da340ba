"""Admin reads on a 1280-px laptop screen: the operations dashboard and the busiest change lists (hot wallets with
their balances, transfers, payouts, batches, alerts) fit the width: neither the page nor a list's own box scrolls
sideways (a box that does hides its last columns)."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from onchain.models import HotWallet
from onchain.services.alerts import alert_raise
from onchain.services.treasury import treasury_check
from tests.browser import requires_chromium, screenshot
from tests.helpers import staff_login

pytestmark = [pytest.mark.django_db(transaction=True), requires_chromium]

PAGES = ["/admin/", "/admin/onchain/hotwallet/", "/admin/payments/transfer/", "/admin/onchain/payout/",
         "/admin/onchain/batch/", "/admin/onchain/operatoralert/"]


def test_admin_pages_fit_a_1280_px_screen(browser, chain, pricing, live_server):
    """Every page listed is no wider than the 1280-px viewport (its hot-wallet list used to clip the balances)."""
    treasury_check(token_id=chain["token"].id)
    alert_raise(kind="low_gas", message="gas balance below the floor", wallet=HotWallet.objects.first())
    assert HotWallet.objects.exists()
    root = get_user_model().objects.create_superuser("layout", "layout@example.com", "a-long-password-123")
    client = staff_login(Client(), root)
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value,
                          "url": live_server.url}])
    page = context.new_page()
    try:
        for path in PAGES:
            page.goto(live_server.url + path)
            assert "/login/" not in page.url, page.url
            screenshot(page, "admin-1280", path.strip("/").replace("/", "-") or "home")
            overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{path} is {overflow}px wider than the screen"
            # A list scrolls inside its own box when too wide: its last columns are cut off at first sight.
            clipped = page.evaluate("() => [...document.querySelectorAll('.results, #content, #changelist')]"
                                    ".map(e => e.scrollWidth - e.clientWidth).filter(d => d > 1)")
            assert clipped == [], f"{path}: a box scrolls sideways by {clipped} px"
    finally:
        context.close()
