"""One exception family for the domain, one handler that renders RFC 9457 problem details."""

from django.core.exceptions import PermissionDenied
from django.http import Http404, JsonResponse
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response

PROBLEM_BASE = "https://tulpar.example/problems/"

# Titles for DRF's own exceptions: one fixed text per problem type (DRF's default_detail may carry placeholders,
# 'Method "{method}" not allowed.'; the request's own words belong in `detail`). docs/api.md, Errors, lists them.
DRF_TITLES = {
    "parse-error": "Malformed request body",
    "authentication-failed": "Authentication failed",
    "not-authenticated": "Authentication required",
    "permission-denied": "Permission denied",
    "not-found": "Not found",
    "method-not-allowed": "Method not allowed",
    "not-acceptable": "Not acceptable",
    "unsupported-media-type": "Unsupported media type",
    "throttled": "Too many requests",
    "invalid-cursor": "Invalid cursor",
    "error": "Server error",
}


class ApplicationError(Exception):
    """A refusal the caller can act on; `code` names the problem type."""

    status = 422
    code = "unprocessable"
    title = "The request cannot be processed"

    def __init__(self, detail=None, *, field=None):
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.field = field


def problem(status, code, title, detail, **extra):
    body = {"type": PROBLEM_BASE + code, "title": title, "status": status, "detail": detail, **extra}
    return Response(body, status=status, content_type="application/problem+json")


def problem_response(status, code, title, detail, **extra):
    """The same problem detail as a plain Django response, for code that runs outside DRF (middleware)."""
    body = {"type": PROBLEM_BASE + code, "title": title, "status": status, "detail": detail, **extra}
    return JsonResponse(body, status=status, content_type="application/problem+json")


def api_not_found(request, exception=None):
    """Any path under /api/ that names no endpoint (an unknown path, an id that is not a UUID): a JSON 404
    problem, never Django's HTML page (or its debug page)."""
    return problem_response(404, "not-found", DRF_TITLES["not-found"],
                            f"No API endpoint at {request.path_info[:200]!r}; the schema is at /api/v1/schema/.")


def _flatten(errors, prefix=""):
    """DRF's nested error dict → a flat list of {"field", "message"} pairs (dotted paths)."""
    if isinstance(errors, dict):
        out = []
        for key, value in errors.items():
            name = key if key != "non_field_errors" else ""
            out += _flatten(value, f"{prefix}.{name}" if prefix and name else (name or prefix))
        return out
    if isinstance(errors, list):
        out = []
        for item in errors:
            out += _flatten(item, prefix) if isinstance(item, (dict, list)) else [{"field": prefix or None, "message": str(item)}]
        return out
    return [{"field": prefix or None, "message": str(errors)}]


# Validation error codes for a value that fits the published schema (type, pattern, length) but still is not valid:
# a phone number outside the numbering plan, a wrong EIP-55 checksum, a date that does not exist, a name with an
# unassigned code point. A request whose
# only errors are these is a 422 `invalid-value`; anything the schema itself refuses stays a 400 `validation-error`.
UNPROCESSABLE_CODES = {"phone_number_plan", "address_checksum", "date_invalid", "name_characters", "text_characters"}


def _codes(errors):
    if isinstance(errors, dict):
        return [c for value in errors.values() for c in _codes(value)]
    if isinstance(errors, list):
        return [c for item in errors for c in _codes(item)]
    return [getattr(errors, "code", None)]


def problem_exception_handler(exc, context):
    if isinstance(exc, ApplicationError):
        extra = {"errors": [{"field": exc.field, "message": exc.detail}]} if exc.field else {}
        if getattr(exc, "errors", None):  # several fields at once: {dotted field: [messages]}
            extra = {"errors": [{"field": f, "message": str(m)} for f, ms in exc.errors.items() for m in ms]}
        response = problem(exc.status, exc.code, exc.title, exc.detail, **extra)
        if getattr(exc, "retry_after", None):
            response["Retry-After"] = str(int(exc.retry_after))
        return response
    if isinstance(exc, Http404):
        exc = drf_exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = drf_exceptions.PermissionDenied()
    if isinstance(exc, drf_exceptions.ValidationError):
        errors = _flatten(exc.detail)
        detail = "; ".join(f"{e['field']}: {e['message']}" if e["field"] else e["message"] for e in errors)
        codes = _codes(exc.detail)
        if codes and all(code in UNPROCESSABLE_CODES for code in codes):
            return problem(422, "invalid-value", "Invalid value", detail, errors=errors)
        return problem(400, "validation-error", "Invalid request", detail, errors=errors)
    if isinstance(exc, drf_exceptions.APIException):
        code = exc.default_code.replace("_", "-")
        title = DRF_TITLES.get(code) or str(exc.default_detail).split("{")[0].strip() or "Error"
        response = problem(exc.status_code, code, title, str(exc.detail))
        if isinstance(exc, drf_exceptions.NotAuthenticated | drf_exceptions.AuthenticationFailed):
            response["WWW-Authenticate"] = 'Api-Key realm="api"'
            response.status_code = 401
            response.data["status"] = 401
        if getattr(exc, "wait", None):
            response["Retry-After"] = str(int(exc.wait))
        return response
    return None
