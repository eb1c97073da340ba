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

# Current rates per corridor (payments/api/rates.py).
from payments.api import rates  # noqa: E402

urlpatterns += [path("rates", rates.RatesApi.as_view(), name="api-rates")]
