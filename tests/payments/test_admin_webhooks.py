"""Outgoing webhooks in admin: the pages show endpoints, events and the delivery log without any secret; replay and
re-enable actions schedule deliveries again."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from payments.models import WebhookDelivery, WebhookEndpoint, WebhookSecret
from payments.services import webhooks
from tests.helpers import staff_login

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(client):
    user = get_user_model().objects.create_superuser("ops", "ops@example.com", "a-long-password-123")
    return staff_login(client, user)


def test_webhook_pages_list_the_log_and_never_show_a_secret(operator, partner):
    endpoint, secret = webhooks.endpoint_create(partner=partner, url="https://93.184.215.14/hooks")
    event = webhooks.endpoint_ping(endpoint=endpoint)
    delivery = event.deliveries.get()
    for url in ["/admin/payments/webhookendpoint/", f"/admin/payments/webhookendpoint/{endpoint.pk}/change/",
                "/admin/payments/webhookevent/", f"/admin/payments/webhookevent/{event.pk}/change/",
                "/admin/payments/webhookdelivery/", f"/admin/payments/webhookdelivery/{delivery.pk}/change/"]:
        response = operator.get(url)
        assert response.status_code == 200, url
        page = response.content.decode()
        assert secret not in page and secret.removeprefix("whsec_") not in page
        assert WebhookSecret.objects.get().secret_encrypted not in page


def test_replay_and_reenable_actions(operator, partner):
    """Replay makes a delivered delivery pending again (same event); re-enable turns a disabled endpoint back on with
    its pending deliveries due now."""
    endpoint, _ = webhooks.endpoint_create(partner=partner, url="https://93.184.215.14/hooks")
    event = webhooks.endpoint_ping(endpoint=endpoint)
    WebhookDelivery.objects.filter(event=event).update(state="delivered")
    response = operator.post("/admin/payments/webhookevent/", {"action": "replay", "_selected_action": [event.pk]})
    assert response.status_code == 302
    assert WebhookDelivery.objects.get(event=event).state == "pending"
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(enabled=False, disabled_reason="failing")
    response = operator.post("/admin/payments/webhookendpoint/", {"action": "reenable",
                                                                   "_selected_action": [endpoint.pk]})
    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.enabled and endpoint.disabled_reason == ""


def test_enabling_an_enabled_endpoint_changes_nothing(partner):
    """Enabling an endpoint that is already on leaves its pending deliveries' attempts and schedule alone (a caller
    repeating it must not skip the backoff or keep a delivery from ever failing)."""
    endpoint, _ = webhooks.endpoint_create(partner=partner, url="https://93.184.215.14/hooks")
    event = webhooks.endpoint_ping(endpoint=endpoint)
    later = timezone.now() + timedelta(hours=2)
    WebhookDelivery.objects.filter(event=event).update(attempts=4, next_attempt_at=later)
    webhooks.endpoint_enable(endpoint=endpoint)
    delivery = WebhookDelivery.objects.get(event=event)
    assert (delivery.attempts, delivery.next_attempt_at) == (4, later)
