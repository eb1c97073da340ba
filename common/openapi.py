"""The OpenAPI schema's shared parts: the problem details component, the error responses every operation gets
without asking, typed amount strings, and OpenAPI links between operations.

An endpoint adopts it with nothing (the AutoSchema below is the project's DEFAULT_SCHEMA_CLASS: 400/401/403/404/
406/415/429 are added where they can happen) and, for the refusals only it makes, one line in its `extend_schema`:
`responses={201: Out, **problem_responses(409, 422, 503)}`. A link is one call at import time:
`openapi_link("quotes_create", 201, "create_transfer", "transfers_create", request_body={"quote_id": "$response.body#/id"})`.
"""

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiExample, OpenApiResponse
from rest_framework import serializers

from common.errors import PROBLEM_BASE

PROBLEM_MEDIA_TYPE = "application/problem+json"

# What each status means for a caller of this API (the response's description in the schema).
STATUS_MEANINGS = {
    400: "Invalid request: the body, a header or a query parameter does not fit the schema (problem `errors` "
         "lists each field).",
    401: "No API key, or one that is not valid (`Authorization: Api-Key <key>`).",
    403: "The key may not do this.",
    404: "Not found (another partner's objects are not found either).",
    405: "Method not allowed on this path.",
    406: "The Accept header asks for something other than JSON.",
    409: "Conflicts with the object's current state.",
    413: "Request body too large.",
    415: "The body is not `application/json`.",
    422: "Understood, but refused by a business rule (see the problem `type`).",
    429: "Too many requests: wait `Retry-After` seconds.",
    503: "A service we depend on did not answer; nothing was changed, retry later.",
}


class ProblemFieldErrorSerializer(serializers.Serializer):
    field = serializers.CharField(allow_null=True, help_text="Dotted path of the field (`sender.phone`), or null "
                                                             "for the request as a whole.")
    message = serializers.CharField()


class ProblemDetailsSerializer(serializers.Serializer):
    """RFC 9457 problem details as common/errors.py renders them."""

    type = serializers.URLField(help_text=f"Stable URI naming the problem, `{PROBLEM_BASE}<code>`; the list is in "
                                          "docs/api.md, Errors.")
    title = serializers.CharField(help_text="Short summary of the problem type; the same for every occurrence.")
    status = serializers.IntegerField(min_value=100, max_value=599, help_text="The HTTP status code.")
    detail = serializers.CharField(help_text="What went wrong in this request, for a person.")
    instance = serializers.CharField(required=False, help_text="URI of this occurrence, when there is one.")
    errors = ProblemFieldErrorSerializer(many=True, required=False,
                                         help_text="Per-field messages (validation problems).")

    class Meta:
        ref_name = "ProblemDetails"


def problem_example(status, code, title, detail, **extra):
    return OpenApiExample(code, value={"type": PROBLEM_BASE + code, "title": title, "status": status,
                                       "detail": detail, **extra},
                          status_codes=[str(status)], response_only=True, media_type=PROBLEM_MEDIA_TYPE)


def problem_responses(*statuses, descriptions=None):
    """`{(status, "application/problem+json"): ProblemDetails}` for `extend_schema(responses=...)`."""
    descriptions = descriptions or {}
    return {(status, PROBLEM_MEDIA_TYPE): OpenApiResponse(
        ProblemDetailsSerializer, description=descriptions.get(status, STATUS_MEANINGS.get(status, "")))
        for status in statuses}


# OpenAPI links, added by `finish_schema` (a postprocessing hook): {operationId: {status: {name: link}}}.
LINKS = {}


def openapi_link(source, status, name, target, *, parameters=None, request_body=None, description=""):
    """Declare that the `status` response of operation `source` leads to operation `target` (runtime expressions
    like "$response.body#/id" in `parameters` and `request_body`; the body is merged into what a client sends)."""
    link = {"operationId": target, "description": description}
    if parameters:
        link["parameters"] = parameters
    if request_body:
        link["requestBody"] = request_body
    LINKS.setdefault(source, {}).setdefault(str(status), {})[name] = link


# Schema keywords a serializer cannot say (an exactly-one-of rule), merged into its component by `finish_schema`.
COMPONENT_EXTRAS = {}


def component_extra(component, **keywords):
    """Add JSON Schema keywords (`oneOf`, `not`, …) to the component named `component` ("QuoteInputRequest")."""
    COMPONENT_EXTRAS.setdefault(component, {}).update(keywords)


def finish_schema(result, generator, request, public):
    """Postprocessing hook: merges COMPONENT_EXTRAS into their components and LINKS into their responses."""
    schemas = result.get("components", {}).get("schemas", {})
    for name, keywords in COMPONENT_EXTRAS.items():
        if name in schemas:
            schemas[name].update(keywords)
    for methods in result.get("paths", {}).values():
        for operation in methods.values():
            for status, links in LINKS.get(operation.get("operationId"), {}).items():
                response = operation.get("responses", {}).get(status)
                if response is not None:
                    response.setdefault("links", {}).update(links)
    return result


class ProblemAutoSchema(AutoSchema):
    """drf-spectacular's AutoSchema, adding the problem responses that DRF and our middleware give on any
    operation: 400 (a body, a query or a header to check), 401/403/429 (authenticated operations), 404 (a path
    parameter), 406 (content negotiation), 415 (a request body). Views add their own with `problem_responses`."""

    def _automatic_problem_statuses(self):
        statuses = {406}
        if self.get_auth():
            statuses |= {401, 403, 429}
        if self.method in ("POST", "PUT", "PATCH") and self.get_request_serializer() is not None:
            statuses |= {400, 413, 415}
        parameters = self._get_parameters()
        if any(p.get("in") in ("query", "header") for p in parameters):
            statuses.add(400)
        if "{" in self.path:
            statuses.add(404)
        return statuses

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for status in sorted(self._automatic_problem_statuses()):
            if str(status) not in responses:
                responses[str(status)] = self._get_response_for_code(
                    OpenApiResponse(ProblemDetailsSerializer, description=STATUS_MEANINGS[status]), str(status),
                    [PROBLEM_MEDIA_TYPE], direction)
        return responses
