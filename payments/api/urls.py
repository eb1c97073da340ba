from django.urls import path

from payments.api import views

urlpatterns = [
    path("quotes", views.QuoteCreateApi.as_view(), name="api-quotes"),
    path("transfers", views.TransferListCreateApi.as_view(), name="api-transfers"),
    path("transfers/<uuid:pk>", views.TransferDetailApi.as_view(), name="api-transfer-detail"),
    path("transfers/<uuid:pk>/cancel", views.TransferCancelApi.as_view(), name="api-transfer-cancel"),
]

# Partner prefunded balances (payments/api/balances.py).
from payments.api import balances  # noqa: E402

urlpatterns += [
    path("balances", balances.BalancesApi.as_view(), name="api-balances"),
    path("balances/<str:currency>/statement", balances.BalanceStatementApi.as_view(), name="api-balance-statement"),
]

# Outgoing webhooks (payments/api/webhooks.py).
from payments.api import webhooks  # noqa: E402

urlpatterns += [
    path("webhook-endpoints", webhooks.WebhookEndpointListCreateApi.as_view(), name="api-webhook-endpoints"),
    path("webhook-endpoints/<str:pk>", webhooks.WebhookEndpointDetailApi.as_view(), name="api-webhook-endpoint"),
    path("webhook-endpoints/<str:pk>/rotate-secret", webhooks.WebhookEndpointRotateApi.as_view(),
         name="api-webhook-endpoint-rotate"),
    path("webhook-endpoints/<str:pk>/enable", webhooks.WebhookEndpointEnableApi.as_view(),
         name="api-webhook-endpoint-enable"),
    path("webhook-endpoints/<str:pk>/test", webhooks.WebhookEndpointTestApi.as_view(), name="api-webhook-endpoint-test"),
    path("webhook-events", webhooks.WebhookEventListApi.as_view(), name="api-webhook-events"),
    path("webhook-events/<str:msg_id>", webhooks.WebhookEventDetailApi.as_view(), name="api-webhook-event"),
    path("webhook-events/<str:msg_id>/deliveries", webhooks.WebhookEventDeliveriesApi.as_view(),
         name="api-webhook-event-deliveries"),
    path("webhook-events/<str:msg_id>/replay", webhooks.WebhookEventReplayApi.as_view(),
         name="api-webhook-event-replay"),
]
