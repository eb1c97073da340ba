"""Admin as our product (issue 12): admin home is an operations dashboard whose every figure links to the admin list
behind it, in a constant number of queries; one API-keys page; the hot-wallet list fits a laptop screen; a transfer,
its payout, batch and transaction link each other."""

import re
import uuid
from datetime import timedelta
from decimal import Decimal
from html import unescape

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from onchain.models import Batch, ChainTransaction, HotWallet, OperatorAlert, Payout
from onchain.services.treasury import treasury_check
from payments.models import Quote, ReconciliationItem, Transfer
from payments.services.quotes import quote_create
from tests.conftest import new_recipient
from tests.helpers import force_status, staff_login
from tests.security.factories import staff_user

pytestmark = pytest.mark.django_db
S = Transfer.Status


def bulk_transfers(n, *, status=S.COMPLETED, age=timedelta(0), **fields):
    """`n` transfers in `status`, created `age` ago, inserted in bulk (each with its own copy of one real quote)."""
    template = quote_create(source_currency="RUB", source_amount=Decimal("15000.00"))
    quotes = Quote.objects.bulk_create([Quote(**{f.attname: getattr(template, f.attname)
                                                 for f in Quote._meta.concrete_fields if f.attname != "id"})
                                        for _ in range(n)])
    wallet = new_recipient()
    rows = Transfer.objects.bulk_create([
        Transfer(quote=q, idempotency_key=str(uuid.uuid4()), request_fingerprint="f", sender_name="Aibek Usenov",
                 sender_phone="+79161234567", sender_email="aibek@example.com", recipient_name="Gulnara Usenova",
                 recipient_phone="+996555123456", recipient_wallet=wallet) for q in quotes])
    qs = Transfer.objects.filter(pk__in=[t.pk for t in rows])
    force_status(qs, status, **fields)
    qs.update(created_at=timezone.now() - age)
    return list(qs)


@pytest.fixture
def auditor(client):
    return staff_login(client, staff_user("auditor"))


def dashboard_links(page):
    """Every href inside the dashboard block."""
    html = page.content.decode()
    block = html[html.index('id="operations-dashboard"'):]
    block = block[:block.index('id="content-related"')] if 'id="content-related"' in block else block
    return [unescape(h) for h in re.findall(r'href="([^"]+)"', block)]


def test_home_is_a_dashboard_whose_figures_open_the_rows_they_count(auditor, pricing, chain, settings):
    """Admin home shows each section (stuck, review queue, states by age, treasury with gas per wallet, today per
    corridor, reconciliation, alerts) under our own header; every link opens an admin list that accepts its filters
    (no "?e=1" refusal), and the stuck and held links list exactly the transfers counted."""
    now = timezone.now()
    stuck = bulk_transfers(1, status=S.FUNDED, age=timedelta(hours=2), funded_at=now - timedelta(hours=1))[0]
    fresh = bulk_transfers(1, status=S.FUNDED, funded_at=now)[0]
    held = bulk_transfers(2, status=S.HELD, age=timedelta(days=2))
    late = bulk_transfers(1, status=S.SETTLING, age=timedelta(hours=3))[0]
    Transfer.objects.filter(pk=late.pk).update(updated_at=now - timedelta(hours=1))
    bulk_transfers(3, status=S.COMPLETED)
    treasury_check(token_id=chain["token"].pk)  # measures the float and each wallet's gas into the database
    HotWallet.objects.filter(pk=chain["wallet"].pk).update(low_gas_wei=10**30)
    OperatorAlert.objects.create(kind=OperatorAlert.Kind.LOW_GAS, wallet=chain["wallet"], message="gas low")
    ReconciliationItem.objects.create(kind=ReconciliationItem.Kind.CARD_PAYMENT, subject="pi_1", currency="RUB",
                                      expected=Decimal(0), actual=Decimal("10.00"), detail="unbooked")

    page = auditor.get("/admin/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "tulpar operations" in html
    for section in ["ops-stuck", "ops-review", "ops-states", "ops-treasury", "ops-corridors", "ops-reconciliation",
                    "ops-alerts"]:
        assert f'id="{section}"' in html, section
    assert "RUB → KGS" in html and "below floor" in html and "low gas balance" in html

    links = dashboard_links(page)
    assert len(links) > 20
    for link in set(links):
        response = auditor.get(link)
        assert response.status_code == 200, link  # an unknown lookup redirects to ?e=1

    def listed(link):
        return {str(t.pk) for t in (stuck, fresh, late, *held) if str(t.pk) in auditor.get(link).content.decode()}

    stuck_link = next(h for h in links if "funded_at__lt" in h)
    assert listed(stuck_link) == {str(stuck.pk)}
    assert listed(next(h for h in links if "updated_at__lt" in h)) == {str(late.pk)}
    assert listed(next(h for h in links if "/heldtransfer/" in h)) == {str(t.pk) for t in held}


def test_people_who_are_not_staff_do_not_see_the_dashboard(client, pricing):
    """Anonymous visitors and logged-in users without staff status are sent to the admin login, not shown figures."""
    bulk_transfers(1, status=S.HELD)
    assert client.get("/admin/").status_code == 302
    user = get_user_model().objects.create_user("someone", "someone@example.com", "a-long-password-123")
    client.force_login(user)
    response = client.get("/admin/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_staff_without_view_permission_gets_no_figures(client, pricing):
    """A staff member in no role (no view permission on transfers) sees admin home without the dashboard."""
    staff_login(client, staff_user())
    page = client.get("/admin/")
    assert page.status_code == 200 and 'id="operations-dashboard"' not in page.content.decode()


def test_the_dashboard_reads_in_the_same_number_of_queries_however_many_transfers(auditor, pricing):
    """The page's queries do not grow with the history: 10 transfers and 110 (in every open state, and finished)
    cost the same number of queries."""
    def queries():
        with CaptureQueriesContext(connection) as captured:
            assert auditor.get("/admin/").status_code == 200
        return len(captured)

    for status in (S.HELD, S.FUNDED, S.SETTLING, S.COMPLETED, S.EXPIRED):
        bulk_transfers(2, status=status)
    few = queries()
    for status in (S.HELD, S.FUNDED, S.SETTLING, S.COMPLETED, S.EXPIRED):
        bulk_transfers(20, status=status, age=timedelta(hours=5))
    assert queries() == few
    assert few <= 25


def test_admin_index_has_one_api_keys_page(client):
    """The key library's own admin is unregistered: admin home lists a single API-keys entry (ours, per partner)."""
    root = get_user_model().objects.create_superuser("root", "root@example.com", "a-long-password-123")
    staff_login(client, root)
    html = client.get("/admin/").content.decode()
    assert len(re.findall(r">[^<]*API keys</a>", html)) == 1
    assert "/admin/rest_framework_api_key/" not in html
    assert client.get("/admin/payments/partnerapikey/").status_code == 200


def test_transfer_payout_batch_and_transaction_pages_link_each_other(client, pricing, chain):
    """A settling transfer's page links to its payout, batch and transaction; the payout links back to the transfer
    and on to its batch; the batch to its payouts and transfers; the transaction to its batch."""
    staff_login(client, staff_user("auditor"))
    transfer = bulk_transfers(1, status=S.SETTLING)[0]
    token, wallet = chain["token"], chain["wallet"]
    batch = Batch.objects.create(token=token, wallet=wallet, nonce=1, mode="direct", count=1, total_base_units=5)
    tx = ChainTransaction.objects.create(batch=batch, wallet=wallet, nonce=1, tx_hash="0x" + "ab" * 32, raw_tx=b"",
                                         to_address=token.address, data=b"", gas_limit=21000, max_fee_per_gas=1,
                                         max_priority_fee_per_gas=1)
    payout = Payout.objects.create(reference=str(transfer.pk), token=token, to_address=transfer.recipient_wallet,
                                   amount_base_units=5, batch=batch, status=Payout.Status.BATCHED)
    Transfer.objects.filter(pk=transfer.pk).update(payout_reference=str(transfer.pk))

    def links(url):
        page = client.get(url)
        assert page.status_code == 200, url
        return [unescape(h) for h in re.findall(r'href="([^"]+)"', page.content.decode())]

    from_transfer = links(f"/admin/payments/transfer/{transfer.pk}/change/")
    for target in (f"/admin/onchain/payout/{payout.pk}/change/", f"/admin/onchain/batch/{batch.pk}/change/",
                   f"/admin/onchain/chaintransaction/{tx.pk}/change/"):
        assert target in from_transfer, target
    from_payout = links(f"/admin/onchain/payout/{payout.pk}/change/")
    back = next(h for h in from_payout if "payout_reference__exact" in h)
    assert str(transfer.pk) in client.get(back).content.decode()
    assert f"/admin/onchain/batch/{batch.pk}/change/" in from_payout
    from_batch = links(f"/admin/onchain/batch/{batch.pk}/change/")
    to_transfers = next(h for h in from_batch if "payout_reference__in" in h)
    assert str(transfer.pk) in client.get(to_transfers).content.decode()
    assert any(f"batch__id__exact={batch.pk}" in h for h in from_batch)
    assert f"/admin/onchain/batch/{batch.pk}/change/" in links(f"/admin/onchain/chaintransaction/{tx.pk}/change/")


def test_hot_wallet_list_shows_short_addresses_and_compact_balances(client, chain):
    """The hot-wallet list fits a laptop screen: the address shortened (in full on hover), one state column, the
    float and gas compact (no long decimals), and no halt-reason column."""
    staff_login(client, staff_user("auditor"))
    wallet = chain["wallet"]
    html = client.get("/admin/onchain/hotwallet/").content.decode()
    assert f'title="{wallet.address}"' in html and f">{wallet.address}<" not in html
    assert "column-halt_reason" not in html and "column-state" in html
    gas = re.search(r'class="field-gas_short">([^<]*)<', html).group(1)
    assert re.fullmatch(r"\d+(\.\d+)?[kMB]?( \(low\))?", gas), gas
    assert re.search(r'class="field-float_short">\d+(\.\d\d)[kMB]? KGST<', html)


def test_every_transfer_status_is_counted_somewhere_on_the_dashboard():
    """A new status (as `awaiting_claim` was) must be placed in the open or the final counts, or operators stop
    seeing the money in it."""
    from payments.selectors_dashboard import FINAL, OPEN

    assert set(OPEN) | set(FINAL) == set(Transfer.Status.values) and not set(OPEN) & set(FINAL)
