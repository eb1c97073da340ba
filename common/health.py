"""Liveness for the image's HEALTHCHECK and the compose smoke test (deploy/image-smoke.sh): the process answers.

Minimal on purpose: it touches no database or broker, so a slow dependency never gets a live web container
restarted. Readiness (database, Redis, chains, ...) is a separate concern (issue 12's /readyz)."""

from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe


@never_cache
@require_safe
def healthz(request):
    return JsonResponse({"status": "ok"})
