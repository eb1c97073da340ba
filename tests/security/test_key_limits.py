"""Issue 10 (keys): a key's own rate limit is counted in Redis, so a gunicorn process and this process share one
count for the key; past it, 429 problem details with Retry-After from either."""

import os
import time

import httpx
import pytest
from rest_framework.test import APIClient

from payments.models import Partner
from payments.services.api_keys import api_key_create
from tests.conftest import wait_for
from tests.payments.test_api import assert_problem

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_keys_own_limit_is_one_count_across_processes(gunicorn, settings):
    """Limit 4 a minute: two requests through gunicorn and two here pass, the fifth (gunicorn) and the sixth (here)
    are 429 with Retry-After. A second key of the same partner is not throttled."""
    settings.RATE_LIMIT_NAMESPACE = os.environ.get("RATE_LIMIT_NAMESPACE", "tulpar")  # gunicorn's namespace
    partner = Partner.objects.get(name="hostile")
    _, raw = api_key_create(partner=partner, rate_limit_per_minute=4)
    _, other = api_key_create(partner=partner)
    # All six requests in one fixed window: start early enough in a minute.
    wait_for(lambda: time.time() % 60 < 40, timeout=30, what="the start of a rate-limit window")
    remote = httpx.Client(base_url=gunicorn.url, headers={"Authorization": f"Bearer {raw}"}, timeout=10)
    local = APIClient()
    local.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert [remote.get("/api/v1/transfers").status_code for _ in range(2)] == [200, 200]
    assert [local.get("/api/v1/transfers").status_code for _ in range(2)] == [200, 200]
    response = remote.get("/api/v1/transfers")
    assert response.status_code == 429 and response.headers["content-type"].startswith("application/problem+json")
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    refused = local.get("/api/v1/transfers")
    assert_problem(refused, 429, "throttled")
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert httpx.get(f"{gunicorn.url}/api/v1/transfers", headers={"Authorization": f"Api-Key {other}"},
                     timeout=10).status_code == 200
