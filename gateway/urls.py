from csp.decorators import csp_update
from django.contrib import admin
from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView

from common.errors import api_not_found
from common.health import healthz
from payments.admin_screening import screen_name_view
from payments.webhooks import stripe_webhook
from staff.admin_site import StaffAdminSite

# Two-factor admin (django-otp): a staff session counts only once a TOTP device verified it.
admin.site.__class__ = StaffAdminSite

# The API docs add to the site's CSP (settings.CONTENT_SECURITY_POLICY) only what their bundles need; scripts stay
# 'self'. Swagger UI draws its icons as data: images; Redoc also injects <style> elements and runs its search in a
# blob: worker. The templates are overridden in templates/drf_spectacular/ to drop inline styles and Google Fonts.
SWAGGER_CSP = {"img-src": ["data:"]}
REDOC_CSP = {"img-src": ["data:"], "style-src": ["'unsafe-inline'"], "worker-src": ["blob:"]}

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/screening/", admin.site.admin_view(screen_name_view), name="admin-screen-name"),
    path("admin/", admin.site.urls),
    path("api/v1/schema/", SpectacularAPIView.as_view(permission_classes=[], authentication_classes=[]),
         name="api-schema"),
    # The split view loads its start-up script from this same URL (?script) instead of inlining it.
    path("api/v1/docs/", csp_update(SWAGGER_CSP)(SpectacularSwaggerSplitView.as_view(
        url_name="api-schema", permission_classes=[], authentication_classes=[])), name="api-docs"),
    path("api/v1/redoc/", csp_update(REDOC_CSP)(SpectacularRedocView.as_view(
        url_name="api-schema", permission_classes=[], authentication_classes=[])), name="api-redoc"),
    path("api/v1/", include("payments.api.urls")),
    # Whatever else is under /api/ (an unknown path, a transfer id that is not a UUID) is a JSON 404 problem, in
    # DEBUG too; before the web pages so no HTML page or APPEND_SLASH redirect answers an API client.
    re_path(r"^api/", csrf_exempt(api_not_found)),
    path("webhooks/stripe", stripe_webhook, name="stripe-webhook"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("payments.web.urls")),
]
