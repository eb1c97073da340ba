from django.urls import path

from payments.api import views
from payments.api.bulk import TransferBulkApi

urlpatterns = [
    path("quotes", views.QuoteCreateApi.as_view(), name="api-quotes"),
    path("transfers", views.TransferListCreateApi.as_view(), name="api-transfers"),
    path("transfers/bulk", TransferBulkApi.as_view(), name="api-transfers-bulk"),
    path("transfers/<uuid:pk>", views.TransferDetailApi.as_view(), name="api-transfer-detail"),
    path("transfers/<uuid:pk>/cancel", views.TransferCancelApi.as_view(), name="api-transfer-cancel"),
]

# Partner prefunded balances (payments/api/balances.py).
from payments.api import balances  # noqa: E402

urlpatterns += [
    path("balances", balances.BalancesApi.as_view(), name="api-balances"),
    path("balances/<str:currency>/statement", balances.BalanceStatementApi.as_view(), name="api-balance-statement"),
]

# The sandbox (test keys only; payments/api/sandbox.py).
from payments.api import sandbox  # noqa: E402

urlpatterns += [
    path("sandbox/transfers/<uuid:pk>/simulate", sandbox.SandboxSimulateApi.as_view(), name="api-sandbox-simulate"),
]

# Payout partners confirm or fail the payouts routed to them (payments/api/payouts.py).
from payments.api import payouts  # noqa: E402

urlpatterns += [
    path("payouts", payouts.PayoutListApi.as_view(), name="api-payouts"),
    path("payouts/<uuid:pk>/confirm", payouts.PayoutConfirmApi.as_view(), name="api-payout-confirm"),
    path("payouts/<uuid:pk>/fail", payouts.PayoutFailApi.as_view(), name="api-payout-fail"),
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

# Current rates per corridor (payments/api/rates.py).
from payments.api import rates  # noqa: E402

urlpatterns += [path("rates", rates.RatesApi.as_view(), name="api-rates")]
