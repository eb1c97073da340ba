"""Refusals of the outgoing-webhook API (services/webhooks.py), rendered as problem details."""

from payments.errors import PaymentsError


class WebhookUrlRefused(PaymentsError):
    """Not https (in production) or resolving to a private, loopback, link-local or otherwise internal address."""

    status = 422
    code = "webhook-url-refused"
    title = "Webhook URL refused"

    def __init__(self, detail=None, *, field="url"):
        super().__init__(detail, field=field)


class WebhookEventTypeUnknown(PaymentsError):
    status = 422
    code = "webhook-event-type-unknown"
    title = "Unknown webhook event type"

    def __init__(self, detail=None, *, field="event_types"):
        super().__init__(detail, field=field)


class WebhookEndpointDisabled(PaymentsError):
    status = 409
    code = "webhook-endpoint-disabled"
    title = "Webhook endpoint disabled"
