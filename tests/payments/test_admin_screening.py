"""Admin's "screen a name" form: staff who may view transfers screen a name and see the hits with scores; staff
without that permission are refused; bad input shows next to its field; the admin index links the form."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from tests.helpers import staff_login

pytestmark = pytest.mark.django_db
URL = "/admin/screening/"


@pytest.fixture
def auditor(client):
    user = get_user_model().objects.create_user("audit", "audit@example.com", "a-long-password-123", is_staff=True)
    user.groups.add(Group.objects.get(name="auditor"))
    return staff_login(client, user)


def test_staff_screen_a_name_and_see_the_hits(auditor):
    """A listed name written in the other script and order is held, its hits listed with their scores and rules."""
    page = auditor.get(URL, {"name": "Санкционов Иван"}).content.decode()
    assert 'data-decision="hold"' in page
    assert "Иван Санкционов" in page and "Ivan Sanctionov" in page
    assert "reordered" in page and 'data-score="1.0"' in page


def test_a_clean_name_is_clear_and_a_denylisted_wallet_rejects(auditor):
    """A clean name is clear with no hits; the denylisted A7A5 contract rejects."""
    assert 'data-decision="clear"' in auditor.get(URL, {"name": "Gulnara Usenova"}).content.decode()
    page = auditor.get(URL, {"address": "0x6fa0be17e4bea2fcfa22ef89bf8ac9aab0ab0fc9"}).content.decode()
    assert 'data-decision="reject"' in page


def test_bad_input_shows_next_to_its_field(auditor):
    """A name of punctuation or a malformed date is an error on the form, never a decision."""
    page = auditor.get(URL, {"name": "...."}).content.decode()
    assert "no letters to screen" in page and "data-decision" not in page
    page = auditor.get(URL, {"name": "Ivan Sanctionov", "birth_date": "31.12.1970"}).content.decode()
    assert "not a date of birth" in page and "data-decision" not in page


def test_staff_without_the_permission_are_refused(client):
    """Staff who may not view transfers get 403; anonymous visitors go to the login page."""
    assert client.get(URL).status_code == 302
    user = get_user_model().objects.create_user("nobody", "n@example.com", "a-long-password-123", is_staff=True)
    assert staff_login(client, user).get(URL, {"name": "Ivan"}).status_code == 403


def test_the_admin_index_links_the_form(auditor):
    assert URL in auditor.get("/admin/").content.decode()
