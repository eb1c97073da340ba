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
