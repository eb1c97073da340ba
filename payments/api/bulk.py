"""`POST /api/v1/transfers/bulk`: up to BULK_MAX_ITEMS transfers in one request, each with its own idempotency key in
the body, each answered on its own. Items run one after another through transfer_create, each committed (or refused)
on its own: a refused item does not undo the others, and a retried bulk request replays the items already made
(their keys) and runs the rest."""

import logging

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from common.errors import PROBLEM_BASE, ApplicationError, problem_exception_handler
from common.openapi import ProblemDetailsSerializer, component_extra, problem_responses
from payments.api import examples
from payments.api.idempotency import IDEMPOTENCY_KEY_OPTIONAL, KEY_SCHEMA, Idempotent
from payments.api.serializers import TransferInputSerializer, TransferOutputSerializer
from payments.errors import BulkRequestInvalid, BulkTooLarge, IdempotencyKeyInvalid
from payments.services.idempotency import key_parse, request_fingerprint
from payments.services.transfers import transfer_create

log = logging.getLogger(__name__)


class BulkItemSerializer(TransferInputSerializer):
    idempotency_key = serializers.RegexField(
        KEY_SCHEMA["pattern"], max_length=255, trim_whitespace=False, help_text="This item's own key: a retried bulk request "
                                            "replays the items already created instead of creating them again.")


class BulkInputSerializer(serializers.Serializer):
    items = BulkItemSerializer(many=True, min_length=1, max_length=settings.BULK_MAX_ITEMS,
                               help_text="1 to 100 transfers (more: 413 `bulk-too-large`).")


# DRF's ListSerializer checks min_length and max_length, but drf-spectacular does not say them in the schema.
component_extra("BulkInputRequest", properties={"items": {
    "type": "array", "items": {"$ref": "#/components/schemas/BulkItemRequest"}, "minItems": 1,
    "maxItems": settings.BULK_MAX_ITEMS, "description": "1 to 100 transfers (more: 413 `bulk-too-large`)."}})


class BulkResultSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="The item's position in `items`.")
    idempotency_key = serializers.CharField()
    status = serializers.IntegerField(help_text="201 created, 200 replayed (same key and body), 4xx/5xx refused.")
    transfer = TransferOutputSerializer(allow_null=True, help_text="When status is 200 or 201; null otherwise.")
    problem = ProblemDetailsSerializer(allow_null=True, help_text="RFC 9457 problem details when status is 4xx or "
                                                                  "5xx; null otherwise.")


class BulkOutputSerializer(serializers.Serializer):
    results = BulkResultSerializer(many=True)


def _items(data):
    """The items, or a refusal of the whole request (nothing is created): no items, too many, an item that is not
    an object or has no usable key, a key repeated inside the request."""
    items = data.get("items") if isinstance(data, dict) else None
    if not isinstance(items, list) or not items:
        raise BulkRequestInvalid(f'Send {{"items": [...]}} with 1 to {settings.BULK_MAX_ITEMS} transfers.',
                                 field="items")
    if len(items) > settings.BULK_MAX_ITEMS:
        raise BulkTooLarge(f"{len(items)} items: one request may carry at most {settings.BULK_MAX_ITEMS}; nothing "
                           "was created. Split them.", field="items")
    seen = {}
    for index, item in enumerate(items):
        name = f"items.{index}.idempotency_key"
        if not isinstance(item, dict):
            raise BulkRequestInvalid(f"Item {index} is not an object; nothing was created.", field=f"items.{index}")
        raw = item.get("idempotency_key")
        try:
            key = key_parse(raw if isinstance(raw, str) else None, required=True, name="idempotency_key")
        except IdempotencyKeyInvalid as exc:
            raise BulkRequestInvalid(f"Item {index}: {exc.detail} Nothing was created.", field=name) from exc
        if key in seen:
            raise BulkRequestInvalid(f"Items {seen[key]} and {index} share an idempotency_key; nothing was created.",
                                     field=name)
        seen[key] = index
    return items


def _problem(exc):
    response = problem_exception_handler(exc, None)
    return response.status_code, response.data


def _item_result(partner, index, item, *, livemode):
    key = key_parse(item["idempotency_key"], required=True, name="idempotency_key")
    body = {name: value for name, value in item.items() if name != "idempotency_key"}
    result = {"index": index, "idempotency_key": key, "transfer": None, "problem": None}
    try:
        data = TransferInputSerializer(data=body)
        data.is_valid(raise_exception=True)
        # The fingerprint of the item without its key: the same transfer sent alone with that key replays here.
        transfer, created = transfer_create(partner=partner, idempotency_key=key, fingerprint=request_fingerprint(body),
                                            livemode=livemode, **data.validated_data)
    except (ValidationError, ApplicationError) as exc:
        result["status"], result["problem"] = _problem(exc)
        return result
    except Exception:
        # One broken item must not lose the answers of the others (already committed): report it, go on.
        log.exception("bulk_item_failed partner=%s index=%s", partner.pk, index)
        result["status"] = 500
        result["problem"] = {"type": PROBLEM_BASE + "internal-error", "title": "Internal error", "status": 500,
                             "detail": "This item failed unexpectedly. Retry it with the same idempotency_key."}
        return result
    result["status"] = 201 if created else 200
    result["transfer"] = TransferOutputSerializer(transfer).data
    return result


class TransferBulkApi(Idempotent, APIView):
    required_scopes = ["transfers:create"]
    idempotency = "optional"

    @extend_schema(parameters=[IDEMPOTENCY_KEY_OPTIONAL], request=BulkInputSerializer,
                   responses={200: BulkOutputSerializer, **problem_responses(409, 422, descriptions={
                       409: "A request with this Idempotency-Key is still running (`idempotency-key-in-use`).",
                       422: "This Idempotency-Key was used with another body."})},
                   operation_id="transfers_bulk_create", tags=["transfers"], summary="Create up to 100 transfers",
                   examples=examples.BULK_CREATE,
                   description="Up to 100 transfers, each with its own `idempotency_key`, answered per item in order "
                               "(`status` 201 created, 200 replayed, 4xx/5xx with a `problem`). Items are independent: "
                               "a refused item does not undo the others. Retry the whole request with the same item "
                               "keys: items already made are replayed, never duplicated. No items or a repeated key: "
                               "400; over 100 items: 413; nothing is created then.")
    def post(self, request):
        items = _items(request.data)
        results = [_item_result(request.user, index, item, livemode=request.auth.livemode)
                   for index, item in enumerate(items)]
        response = Response({"results": results})
        # A request-level Idempotency-Key replays the whole answer only when no item failed for a passing reason.
        response.idempotency_storable = all(r["status"] < 500 and r["status"] not in (409, 429) for r in results)
        return response
