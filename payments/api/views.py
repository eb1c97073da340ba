"""Partner API: each view parses input, calls one service and renders the result."""

import re

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import generics, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from common.openapi import openapi_link, problem_responses
from common.pagination import SafeCursorPagination
from payments import pipeline
from payments.api import examples
from payments.api.serializers import (
    QuoteInputSerializer,
    QuoteOutputSerializer,
    TransferInputSerializer,
    TransferOutputSerializer,
)
from payments.models import Transfer
from payments.selectors import transfer_settlements
from payments.services.quotes import quote_create
from payments.services.transfers import request_fingerprint, transfer_create

# Printable ASCII with at least one non-space character: surrounding spaces are not part of a header's value.
IDEMPOTENCY_KEY_PATTERN = r"^[\x20-\x7e]*[\x21-\x7e][\x20-\x7e]*$"
IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key", {"type": "string", "minLength": 1, "maxLength": 255, "pattern": IDEMPOTENCY_KEY_PATTERN},
    OpenApiParameter.HEADER, required=True,
    description="1 to 255 printable ASCII characters (a UUID is a good choice), unique per transfer; the same key "
                "and body return the same transfer.")
TRANSFER_ID = OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The transfer's id.")

# Stateful clients (and schemathesis) follow these: a quote's id into a transfer, a transfer's id into its reads.
openapi_link("quotes_create", 201, "create_transfer", "transfers_create",
             request_body={"quote_id": "$response.body#/id"}, description="Make a transfer with this quote.")
for _status in (200, 201):
    openapi_link("transfers_create", _status, "get_transfer", "transfers_retrieve",
                 parameters={"id": "$response.body#/id"}, description="Read this transfer.")
    openapi_link("transfers_create", _status, "cancel_transfer", "transfers_cancel",
                 parameters={"id": "$response.body#/id"}, description="Cancel this transfer.")
openapi_link("transfers_retrieve", 200, "cancel_transfer", "transfers_cancel",
             parameters={"id": "$response.body#/id"}, description="Cancel this transfer.")


class QuoteCreateApi(APIView):
    @extend_schema(request=QuoteInputSerializer, operation_id="quotes_create", tags=["quotes"],
                   summary="Get a quote", examples=examples.QUOTE_CREATE,
                   responses={201: QuoteOutputSerializer, **problem_responses(422, 503)})
    def post(self, request):
        data = QuoteInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        quote = quote_create(partner=request.user, **data.validated_data)
        return Response(QuoteOutputSerializer(quote).data, status=status.HTTP_201_CREATED)


class TransferCursorPagination(SafeCursorPagination):
    # CursorPagination orders by its own `ordering` (DRF's default "-created" is not a Transfer field);
    # the id makes the order total for transfers created in the same microsecond.
    ordering = ("-created_at", "-id")


def _transfers(partner):
    return Transfer.objects.filter(partner=partner).select_related("quote")


@extend_schema_view(get=extend_schema(operation_id="transfers_list", tags=["transfers"], summary="List your transfers",
                                     description="Newest first, by cursor: follow `next` as given.",
                                     examples=examples.TRANSFER_LIST))
class TransferListCreateApi(generics.ListAPIView):
    serializer_class = TransferOutputSerializer
    pagination_class = TransferCursorPagination

    def get_queryset(self):
        return _transfers(self.request.user)

    def get_serializer(self, *args, **kwargs):
        if args and isinstance(args[0], list):  # a page of transfers: their settlements in one read
            kwargs.setdefault("context", self.get_serializer_context())["settlements"] = transfer_settlements(
                transfers=args[0])
        return super().get_serializer(*args, **kwargs)

    @extend_schema(parameters=[IDEMPOTENCY_HEADER], request=TransferInputSerializer, operation_id="transfers_create",
                   tags=["transfers"], summary="Create a transfer from a quote", examples=examples.TRANSFER_CREATE,
                   description="201 with the new transfer; 200 with the same transfer when the Idempotency-Key and "
                               "body were sent before.",
                   responses={201: TransferOutputSerializer, 200: TransferOutputSerializer,
                              **problem_responses(403, 404, 409, 422, 503, descriptions={
                                  403: "The key may not do this, or the sender, card or wallet is frozen "
                                       "(`transfer-refused`).",
                                  404: "No such quote (`quote-not-found`)."})})
    def post(self, request):
        raw = request.headers.get("Idempotency-Key", "")
        key = raw.strip()
        if len(raw) > 255 or not re.match(IDEMPOTENCY_KEY_PATTERN, key):
            raise ValidationError({"Idempotency-Key": ["Send an Idempotency-Key header of 1 to 255 printable ASCII "
                                                       "characters."]})
        data = TransferInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        transfer, created = transfer_create(
            partner=request.user, idempotency_key=key, fingerprint=request_fingerprint(request.data),
            **data.validated_data)
        return Response(TransferOutputSerializer(transfer).data,
                        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class TransferCancelApi(APIView):
    @extend_schema(request=None, responses={200: TransferOutputSerializer, **problem_responses(409, 503)},
                   operation_id="transfers_cancel", tags=["transfers"], summary="Cancel a transfer",
                   parameters=[TRANSFER_ID], examples=examples.TRANSFER_CANCEL,
                   description="Cancel before settlement. Unpaid: the card payment is cancelled, status `cancelled`. "
                               "Paid: refunded in full, status `refunding`, then `refunded`. Cancelling again answers "
                               "with the transfer as it is; once settlement has started, 409 "
                               "`transfer-not-cancellable` and nothing changes.")
    def post(self, request, pk):
        # Another partner's transfer is not found (404), as for reads: no hint that it exists.
        transfer = get_object_or_404(_transfers(request.user), pk=pk)
        transfer = pipeline.transfer_cancel(transfer_id=transfer.pk, reason="cancelled by the sender")
        return Response(TransferOutputSerializer(_transfers(request.user).get(pk=transfer.pk)).data)


@extend_schema_view(get=extend_schema(operation_id="transfers_retrieve", tags=["transfers"], summary="Read a transfer",
                                     parameters=[TRANSFER_ID], examples=examples.TRANSFER_READ))
class TransferDetailApi(generics.RetrieveAPIView):
    serializer_class = TransferOutputSerializer

    def get_queryset(self):
        # Another partner's transfer is simply not found (no hint that it exists).
        return _transfers(self.request.user)
