"""Partner authentication: `Authorization: Api-Key <key>`, keys stored hashed."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from payments.models import PartnerAPIKey


class PartnerApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Api-Key"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _, key = header.partition(" ")
        if scheme != self.keyword or not key.strip():
            raise exceptions.AuthenticationFailed("Use the header `Authorization: Api-Key <key>`.")
        try:
            api_key = PartnerAPIKey.objects.get_from_key(key.strip())
        except PartnerAPIKey.DoesNotExist:
            api_key = None
        if api_key is None or api_key.has_expired or api_key.revoked or not api_key.partner.is_active:
            raise exceptions.AuthenticationFailed("The API key is not valid.")
        return api_key.partner, api_key

    def authenticate_header(self, request):
        return f'{self.keyword} realm="api"'


class PartnerApiKeyScheme(OpenApiAuthenticationExtension):
    """Documents the scheme in the OpenAPI schema."""

    target_class = "payments.api.auth.PartnerApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "Authorization",
                "description": "`Api-Key <key>`; keys come from `manage.py create_partner NAME`."}
