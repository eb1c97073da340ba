"""The Idempotency-Key layer of the partner API's POSTs (payments/services/idempotency.py does the work).

A view opts in by mixing in `Idempotent` before its DRF base and setting `idempotency = "required"` (a POST without
the header is a 400) or `"optional"` (used when sent). The key is claimed after authentication, permissions and
throttling (so refusals there never touch a key) and once the body has parsed; the rendered response is stored as the
bytes the client received, and a replay answers those bytes with `Idempotent-Replayed: true`."""

import logging

from django.db import DatabaseError
from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter

from payments.models import IdempotencyRecord
from payments.services.idempotency import (
    HEADER,
    idempotency_claim,
    idempotency_complete,
    idempotency_release,
    key_parse,
    request_fingerprint,
)

log = logging.getLogger(__name__)

# Printable ASCII with at least one non-space character: surrounding spaces are not part of a header's value.
KEY_SCHEMA = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"^[\x20-\x7e]*[\x21-\x7e][\x20-\x7e]*$"}
IDEMPOTENCY_KEY_REQUIRED = OpenApiParameter(
    HEADER, KEY_SCHEMA, OpenApiParameter.HEADER, required=True,
    description="1 to 255 characters, unique per request (a UUID). The same key and body replay the first response "
                "byte for byte (with `Idempotent-Replayed: true`); another body is 422; while the first request "
                "runs, 409. Kept at least 24 hours.")
IDEMPOTENCY_KEY_OPTIONAL = OpenApiParameter(
    HEADER, KEY_SCHEMA, OpenApiParameter.HEADER, required=False,
    description="Optional: when sent, the same key and body replay the first response (see `transfers_create`).")


class _Replay(Exception):
    def __init__(self, response):
        super().__init__("idempotent replay")
        self.response = response


def replay_response(record):
    response = HttpResponse(bytes(record.response_body), status=record.response_status,
                            headers=record.response_headers)
    response["Idempotent-Replayed"] = "true"
    return response


class Idempotent:
    idempotency = "optional"
    idempotency_key = None
    _idempotency_record = None

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if request.method != "POST" or not self.idempotency:
            return
        self.idempotency_key = key_parse(request.headers.get(HEADER), required=self.idempotency == "required")
        if self.idempotency_key is None:
            return
        record = idempotency_claim(partner=request.user, livemode=request.auth.livemode, key=self.idempotency_key,
                                   method=request.method,
                                   path=request.path, fingerprint=request_fingerprint(request.data))
        if record.state == IdempotencyRecord.State.DONE:
            raise _Replay(replay_response(record))
        self._idempotency_record = record

    def handle_exception(self, exc):
        if isinstance(exc, _Replay):
            return exc.response
        return super().handle_exception(exc)

    def dispatch(self, request, *args, **kwargs):
        try:
            response = super().dispatch(request, *args, **kwargs)
        except BaseException:
            # An unexpected exception (a 500): the key must not stay locked, a retry runs again.
            if self._idempotency_record is not None:
                try:
                    idempotency_release(record=self._idempotency_record)
                except DatabaseError:  # the lease runs out instead
                    log.exception("idempotency_release_failed record=%s", self._idempotency_record.pk)
            raise
        if self._idempotency_record is not None:
            if hasattr(response, "render") and not response.is_rendered:
                response.render()
            try:
                idempotency_complete(record=self._idempotency_record, status=response.status_code,
                                     headers=response.headers, body=response.content,
                                     storable=getattr(response, "idempotency_storable", True))
            except DatabaseError:
                # The answer stands; the record stays in flight until its lease ends, then a retry runs again.
                log.exception("idempotency_store_failed record=%s", self._idempotency_record.pk)
        return response
