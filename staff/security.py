"""Login protection helpers (settings name them)."""

from django.conf import settings


def client_ip(request):
    """The address django-axes counts failed logins for. Behind our proxy (STAFF_CLIENT_IP_FROM_PROXY) it is the last
    X-Forwarded-For hop, the one the proxy appended; earlier hops come from the client and could be forged to dodge
    the lockout. Otherwise REMOTE_ADDR."""
    if settings.STAFF_CLIENT_IP_FROM_PROXY:
        hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
        if hops:
            return hops[-1]
    return request.META.get("REMOTE_ADDR")
