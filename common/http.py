"""Middleware at the HTTP edge: the request-body size limit and the Permissions-Policy header."""

import io

from django.conf import settings
from django.core.handlers.wsgi import LimitedStream
from django.shortcuts import render

from common.errors import problem_response

_READ_CHUNK = 64 * 1024


class RequestBodyLimitMiddleware:
    """Refuse a request body over REQUEST_BODY_MAX_BYTES with 413 before anything reads it.

    A declared Content-Length is checked up front (nothing is read). A chunked body has no Content-Length, and
    Django on its own reads only Content-Length bytes, i.e. none of it: where the server decodes the chunks
    (gunicorn says so with `wsgi.input_terminated`) at most limit + 1 bytes are read to count it, and a body
    within the limit is handed on to Django whole; where it does not (Django's runserver), 411.

    API and webhook paths (PROBLEM_DETAILS_PATH_PREFIXES) get RFC 9457 problem details, the web forms a page."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        limit = settings.REQUEST_BODY_MAX_BYTES
        declared = request.META.get("CONTENT_LENGTH")
        if declared:
            try:
                length = int(declared)
            except ValueError:
                length = -1
            if length < 0:
                return self._refuse(request, 400, "bad-content-length", "Invalid Content-Length",
                                    "The Content-Length header is not a byte count.")
            if length > limit:
                return self._too_large(request, limit)
        elif "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
            if not request.META.get("wsgi.input_terminated"):
                return self._refuse(request, 411, "length-required", "Length required",
                                    "Send the body with a Content-Length header.")
            body = self._read_at_most(request.META["wsgi.input"], limit + 1)
            if len(body) > limit:
                return self._too_large(request, limit)
            # Django built its input stream from the (absent) Content-Length; give it the body we read.
            request.META["CONTENT_LENGTH"] = str(len(body))
            request._stream = LimitedStream(io.BytesIO(body), len(body))
        return self.get_response(request)

    @staticmethod
    def _read_at_most(stream, size):
        parts, total = [], 0
        while total < size:
            part = stream.read(min(_READ_CHUNK, size - total))
            if not part:
                break
            parts.append(part)
            total += len(part)
        return b"".join(parts)

    def _too_large(self, request, limit):
        return self._refuse(request, 413, "payload-too-large", "Request body too large",
                            f"The request body is larger than {limit} bytes.", limit=limit)

    @staticmethod
    def _refuse(request, status, code, title, detail, **context):
        if request.path_info.startswith(tuple(settings.PROBLEM_DETAILS_PATH_PREFIXES)):
            return problem_response(status, code, title, detail)
        return render(request, "request_refused.html", {"status": status, "title": title, **context}, status=status)


class PermissionsPolicyMiddleware:
    """Set the Permissions-Policy header (settings.PERMISSIONS_POLICY: feature → allowed origins, empty for none) on
    every response that has not set its own."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.header = ", ".join(
            f"{feature}=({' '.join(_origin(o) for o in origins)})" for feature, origins in settings.PERMISSIONS_POLICY.items())

    def __call__(self, request):
        response = self.get_response(request)
        if self.header:
            response.headers.setdefault("Permissions-Policy", self.header)
        return response


def _origin(origin):
    return origin if origin in ("self", "*") else f'"{origin}"'
