"""Partner authentication: `Authorization: Api-Key <key>` or `Authorization: Bearer <key>`, keys stored hashed
(payments/services/api_keys.py). Scopes are checked by payments/api/permissions.py."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, throttling

from common.ratelimit import client_ip, rate_limit_exceeded, rate_limit_hit
from payments.models import PartnerAPIKey
from payments.services.api_keys import api_key_touch

# Generated clients send a bearer token without help; the custom `Api-Key` prefix must be typed by hand.
SCHEMES = ("Api-Key", "Bearer")


class PartnerApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Api-Key"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        # Guessing keys: an address past its failures gets 429 before any key is even looked up.
        ip = client_ip(request)
        wait = rate_limit_exceeded(scope="api-auth-failures", ident=ip)
        if wait:
            raise exceptions.Throttled(wait=wait, detail="Too many requests with invalid API keys.")
        scheme, _, key = header.partition(" ")
        if scheme not in SCHEMES or not key.strip():
            rate_limit_hit(scope="api-auth-failures", ident=ip)
            raise exceptions.AuthenticationFailed(
                "Use the header `Authorization: Api-Key <key>` or `Authorization: Bearer <key>`.")
        try:
            api_key = PartnerAPIKey.objects.get_from_key(key.strip())
        except PartnerAPIKey.DoesNotExist:
            api_key = None
        if api_key is None or api_key.has_expired or api_key.revoked or not api_key.partner.is_active:
            rate_limit_hit(scope="api-auth-failures", ident=ip)
            raise exceptions.AuthenticationFailed("The API key is not valid.")
        api_key_touch(api_key)
        return api_key.partner, api_key

    def authenticate_header(self, request):
        return f'{self.keyword} realm="api"'


class PartnerKeyThrottle(throttling.BaseThrottle):
    """Every request of a partner key counts against `api-key` (shared across processes; the key's own
    rate_limit_per_minute if set); 429 with Retry-After."""

    def allow_request(self, request, view):
        if request.auth is None:
            return True  # unauthenticated requests are refused (401) or counted per IP by the authentication
        self._wait = rate_limit_hit(scope="api-key", ident=f"key:{request.auth.pk}",
                                    limit=request.auth.rate_limit_per_minute)
        return self._wait is None

    def wait(self):
        return self._wait


class PartnerApiKeyScheme(OpenApiAuthenticationExtension):
    """Documents both header forms in the OpenAPI schema (either one authenticates)."""

    target_class = "payments.api.auth.PartnerApiKeyAuthentication"
    name = ["ApiKey", "BearerKey"]

    def get_security_requirement(self, auto_schema):
        return [{name: []} for name in self.name]  # either scheme, not both at once

    def get_security_definition(self, auto_schema):
        return [
            {"type": "apiKey", "in": "header", "name": "Authorization",
             "description": "Send `Authorization: Api-Key <key>`: the value is the word `Api-Key`, one space and your "
                            "key, e.g. `Api-Key tlp_live_AbCd1234.…` (test keys: `tlp_test_…`; set the whole string as "
                            "the API key in a generated client). Keys come from `manage.py api_key create` or "
                            "`manage.py create_partner NAME`; see docs/api.md. A missing or wrong key is a 401 problem."},
            {"type": "http", "scheme": "bearer",
             "description": "The same key as a bearer token: `Authorization: Bearer <key>`."},
        ]
