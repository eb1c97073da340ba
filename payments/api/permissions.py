"""Scopes: every partner API view declares `required_scopes`, a list (every method) or a dict by HTTP method
({"GET": [...], "POST": [...]}); the key must hold all of them. A view or a method that declares none is refused
(fail closed): a new endpoint is unreachable until it says which scope it needs."""

from rest_framework import permissions

from common.errors import ApplicationError


class ScopeMissing(ApplicationError):
    status = 403
    code = "insufficient-scope"
    title = "The API key lacks a scope this request needs"


class LiveKeyRequired(ApplicationError):
    status = 403
    code = "live-key-required"
    title = "This endpoint takes live keys only"


class ScopesUndeclared(ApplicationError):
    status = 403
    code = "scopes-undeclared"
    title = "This endpoint declares no scopes"


def scopes_required(view, method):
    """The scopes `view` declares for `method` (HEAD as GET), or None when it declares none."""
    declared = getattr(view, "required_scopes", None)
    if isinstance(declared, dict):
        declared = declared.get(method, declared.get("GET") if method == "HEAD" else None)
    return None if declared is None else list(declared)


def _implements(view, method):
    name = method.lower()
    return name in view.http_method_names and callable(getattr(view, name, None))


class HasRequiredScopes(permissions.BasePermission):
    def has_permission(self, request, view):
        if request.auth is None:
            return False  # DRF answers 401 with the authentication's challenge
        if not _implements(view, request.method):
            return True  # DRF's own method check answers 405 (a scope refusal would hide that the method is wrong)
        # Objects that are not kept per mode (payout partners' payouts, webhook endpoints and their events): a test
        # key must not reach live ones.
        if getattr(view, "live_keys_only", False) and not request.auth.livemode:
            raise LiveKeyRequired("Use a live key here: payouts and webhook endpoints are not kept per mode (a "
                                  "sandbox transfer's events reach your endpoints with `livemode: false`).")
        required = scopes_required(view, request.method)
        if not required:
            raise ScopesUndeclared(f"{request.method} on this endpoint is not open to API keys.")
        missing = [s for s in required if s not in request.auth.scopes]
        if missing:
            exc = ScopeMissing(f"This API key lacks the scope{'s' if len(missing) > 1 else ''} "
                               f"{', '.join(missing)}; ask for a key that has it.", field="scopes")
            exc.errors = {"scopes": [f"missing: {s}" for s in missing]}
            raise exc
        return True
