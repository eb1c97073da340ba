"""Management commands: create_partner prints a working key once; bad input changes nothing."""

from io import StringIO

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from payments.models import Corridor, Partner, PartnerAPIKey, Rate

pytestmark = pytest.mark.django_db


def test_create_partner_prints_a_key_that_authenticates(client):
    """The printed key works as `Authorization: Api-Key <key>` and is stored only hashed."""
    out = StringIO()
    call_command("create_partner", "Zolotaya Korona", stdout=out)
    key = out.getvalue().strip().rsplit(" ", 1)[-1]
    assert Partner.objects.filter(name="Zolotaya Korona").exists()
    assert not PartnerAPIKey.objects.filter(hashed_key__contains=key.split(".")[1]).exists()
    response = client.get("/api/v1/transfers", HTTP_AUTHORIZATION=f"Api-Key {key}")
    assert response.status_code == 200


@pytest.mark.parametrize("name", ["", "   ", "x" * 101])
def test_create_partner_refuses_bad_names(name):
    """An empty or over-long name is refused with a clear error and creates nothing."""
    with pytest.raises(CommandError, match="1 to 100 characters"):
        call_command("create_partner", name)
    assert not Partner.objects.exists()


def test_seed_rates_is_idempotent():
    """Seeding twice leaves one corridor per (source, target) pair and one rate per currency and day."""
    call_command("seed_rates", stdout=StringIO())
    call_command("seed_rates", stdout=StringIO())
    assert Corridor.objects.count() == len(settings.CORRIDOR_DEFAULTS) == 4
    assert Rate.objects.count() == 2


@pytest.mark.django_db
def test_make_runs_demo_key_file_is_kept_only_if_it_works_in_this_database():
    """devsetup keeps var/demo_api_key only when that key authenticates the demo partner here: a key written for
    another database (a test run, a dropped database), a revoked one or another partner's is replaced, so the key
    `make run` prints always works."""
    from payments.management.commands.devsetup import _key_works
    from payments.models import PartnerAPIKey
    from payments.services.setup import partner_create

    demo, raw = partner_create(name="demo")
    other, other_raw = partner_create(name="other")
    assert _key_works(raw, demo)
    assert not _key_works(other_raw, demo)
    assert not _key_works("tlp_live_AbCd1234.not-a-key-of-this-database", demo)
    PartnerAPIKey.objects.filter(partner=demo).update(revoked=True)
    assert not _key_works(raw, demo)
