from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from payments.webhooks import stripe_webhook
from staff.admin_site import StaffAdminSite

# Two-factor admin (django-otp): a staff session counts only once a TOTP device verified it.
admin.site.__class__ = StaffAdminSite

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/schema/", SpectacularAPIView.as_view(permission_classes=[], authentication_classes=[]),
         name="api-schema"),
    path("api/v1/docs/", SpectacularSwaggerView.as_view(url_name="api-schema", permission_classes=[],
                                                        authentication_classes=[]), name="api-docs"),
    path("api/v1/redoc/", SpectacularRedocView.as_view(url_name="api-schema", permission_classes=[],
                                                       authentication_classes=[]), name="api-redoc"),
    path("api/v1/", include("payments.api.urls")),
    path("webhooks/stripe", stripe_webhook, name="stripe-webhook"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("payments.web.urls")),
]
