"""History of values (django-simple-history): a change to a corridor, a rate or a limit made in admin keeps the old
and new values, the user and the reason; a halt keeps its reason; admin refuses a form without a reason; history is
not editable (no revert, a POST to a past version is refused); and no history table holds a secret column."""

from decimal import Decimal

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.db import connection

from onchain.models import HotWallet
from payments.models import Corridor, LimitTier, Rate
from tests.helpers import staff_login
from tests.payments.test_admin_pricing import form_data

pytestmark = pytest.mark.django_db


@pytest.fixture
def treasurer(client):
    user = get_user_model().objects.create_superuser("treasurer", "t@example.com", "a-long-password-123")
    return staff_login(client, user)


def test_a_corridor_change_keeps_old_and_new_values_who_and_why(treasurer, pricing):
    """Raising the USD margin in admin adds a history row with the new margin, the treasurer and the reason typed;
    the row before it still holds the old margin. Without a reason the form is refused beside the field, unsaved."""
    corridor = Corridor.objects.get(source_currency="USD", target_currency="KGS")
    old_margin = corridor.margin_bps
    url = f"/admin/payments/corridor/{corridor.pk}/change/"
    refused = treasurer.post(url, form_data(corridor, margin_bps=old_margin + 25, change_reason=""))
    assert refused.status_code == 200
    assert "Give a reason" in " ".join(refused.context["adminform"].form.errors["change_reason"])
    assert Corridor.objects.get(pk=corridor.pk).margin_bps == old_margin

    saved = treasurer.post(url, form_data(corridor, margin_bps=old_margin + 25, change_reason="NBKR spread widened"))
    assert saved.status_code == 302
    new, old = corridor.history.order_by("-history_date", "-history_id")[:2]
    assert (new.margin_bps, new.history_user.username, new.history_change_reason) == (
        old_margin + 25, "treasurer", "NBKR spread widened")
    assert old.margin_bps == old_margin
    assert [c.field for c in new.diff_against(old).changes] == ["margin_bps"]

    page = treasurer.get(f"/admin/payments/corridor/{corridor.pk}/history/").content.decode()
    assert "NBKR spread widened" in page and "treasurer" in page


def test_a_limit_change_and_a_manual_rate_carry_user_and_reason(treasurer, pricing):
    """A tier limit edited in admin and a manual rate typed in admin (its reason asked by the staff action) each
    leave a history row with the user and the reason."""
    tier = LimitTier.objects.get(source_currency="RUB", tier=0)
    data = {"source_currency": "RUB", "tier": 0, "per_transfer": str(tier.per_transfer),
            "per_day": str(tier.per_day), "per_30_days": str(tier.per_30_days + 1), "change_reason": "board decision 12"}
    assert treasurer.post(f"/admin/payments/limittier/{tier.pk}/change/", data).status_code == 302
    row = tier.history.latest()
    assert (row.per_30_days, row.history_user.username, row.history_change_reason) == (
        tier.per_30_days + 1, "treasurer", "board decision 12")

    response = treasurer.post("/admin/payments/rate/add/", {"source_currency": "USD", "rate": "87.6000",
                                                            "reason": "NBKR feed down, rate from nbkr.kg"})
    assert response.status_code == 302
    rate = Rate.objects.filter(source="manual").get()
    row = rate.history.get()
    assert (row.rate, row.history_type, row.history_user.username, row.history_change_reason) == (
        Decimal("87.6"), "+", "treasurer", "NBKR feed down, rate from nbkr.kg")


def test_history_is_not_editable(treasurer, pricing):
    """A past version's page shows no revert button, and posting it (what revert would do) is refused: the corridor
    keeps its current values and no history row is added."""
    corridor = Corridor.objects.get(source_currency="USD", target_currency="KGS")
    url = f"/admin/payments/corridor/{corridor.pk}/change/"
    treasurer.post(url, form_data(corridor, margin_bps=corridor.margin_bps + 5, change_reason="first"))
    first = corridor.history.order_by("history_id").first()
    version = f"/admin/payments/corridor/{corridor.pk}/history/{first.history_id}/"
    page = treasurer.get(version)
    assert page.status_code == 200 and "Revert" not in page.content.decode()
    rows = corridor.history.count()
    refused = treasurer.post(version, form_data(corridor, change_reason="revert"))
    assert refused.status_code == 403
    assert Corridor.objects.get(pk=corridor.pk).margin_bps == corridor.margin_bps + 5
    assert corridor.history.count() == rows


def test_a_halt_keeps_its_reason_and_nonces_stay_out_of_history(treasurer, chain):
    """Halting a wallet (a staff action with a reason) adds a history row with the user and that reason; the nonce,
    claimed on every batch, is not a history column."""
    wallet = chain["wallet"]
    treasurer.post("/admin/onchain/hotwallet/", {"action": "halt", "_selected_action": [wallet.pk], "post": "yes",
                                                 "reason": "gas top-up in progress"})
    row = HotWallet.objects.get(pk=wallet.pk).history.latest()
    assert (row.halted, row.history_user.username, row.history_change_reason) == (
        True, "treasurer", "gas top-up in progress")
    assert "next_nonce" not in {f.name for f in row._meta.fields}


# Every column that holds a secret (or its hash) in the project: none may be copied into a history table.
SECRET_COLUMNS = {"hashed_key", "secret_encrypted", "password", "id_number_hash", "key", "raw_tx"}
TRACKED = {"payments.corridor", "payments.rate", "payments.limittier", "payments.partner", "payments.payoutpartner",
           "onchain.chain", "onchain.token", "onchain.hotwallet", "auth.group", "auth.group_permissions"}


def test_history_tables_hold_no_secret_columns():
    """The history tables are exactly those of the tracked models (API keys, webhook secrets, users and sender
    documents are not copied), and no history table has a column that holds a secret or its hash."""
    history = [m for m in apps.get_models() if m.__name__.startswith("Historical")
               and hasattr(m, "instance_type")]
    assert {m.instance_type._meta.label_lower for m in history} == TRACKED
    with connection.cursor() as cursor:
        for model in history:
            columns = {c.name for c in connection.introspection.get_table_description(cursor, model._meta.db_table)}
            assert columns and not columns & SECRET_COLUMNS, (model._meta.db_table, columns & SECRET_COLUMNS)
            assert not any("secret" in c or "hash" in c for c in columns), (model._meta.db_table, columns)


def test_an_auditor_reads_pages_and_history_without_changing_them(client, pricing, chain):
    """View-only staff (the auditor role) open a corridor's, a limit's and a wallet's page and their history (the
    reason field shows read-only), and cannot post a change."""
    from tests.security.factories import staff_user

    staff_login(client, staff_user("auditor"))
    corridor = Corridor.objects.get(source_currency="USD", target_currency="KGS")
    tier = LimitTier.objects.get(source_currency="RUB", tier=0)
    for url in [f"/admin/payments/corridor/{corridor.pk}/change/", f"/admin/payments/corridor/{corridor.pk}/history/",
                f"/admin/payments/limittier/{tier.pk}/change/", f"/admin/onchain/hotwallet/{chain['wallet'].pk}/change/",
                f"/admin/onchain/hotwallet/{chain['wallet'].pk}/history/"]:
        assert client.get(url).status_code == 200, url
    refused = client.post(f"/admin/payments/corridor/{corridor.pk}/change/",
                          form_data(corridor, margin_bps=1, change_reason="x"))
    assert refused.status_code == 403 and Corridor.objects.get(pk=corridor.pk).margin_bps == corridor.margin_bps
