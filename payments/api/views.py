"""Partner API: each view parses input, calls one service and renders the result."""


from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import generics, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from common.openapi import openapi_link, problem_responses
from common.pagination import SafeCursorPagination
from payments import pipeline_cancel, scopes
from payments.api import examples
from payments.api.filters import LIST_PARAMETERS, transfer_list_filters
from payments.api.idempotency import IDEMPOTENCY_KEY_OPTIONAL, IDEMPOTENCY_KEY_REQUIRED, Idempotent
from payments.api.serializers import (
    QuoteInputSerializer,
    QuoteOutputSerializer,
    TransferInputSerializer,
    TransferOutputSerializer,
)
from payments.models import Transfer
from payments.selectors import transfer_settlements, transfers_of_partner
from payments.services.quotes import quote_create
from payments.services.transfers import request_fingerprint, transfer_create

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

class QuoteCreateApi(Idempotent, APIView):
    required_scopes = {"POST": [scopes.QUOTES]}
    idempotency = "optional"

    @extend_schema(parameters=[IDEMPOTENCY_KEY_OPTIONAL], request=QuoteInputSerializer, operation_id="quotes_create",
                   tags=["quotes"], summary="Get a quote", examples=examples.QUOTE_CREATE,
                   responses={201: QuoteOutputSerializer, **problem_responses(409, 422, 503)})
    def post(self, request):
        data = QuoteInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        quote = quote_create(partner=request.user, livemode=request.auth.livemode, **data.validated_data)
        return Response(QuoteOutputSerializer(quote).data, status=status.HTTP_201_CREATED)


class TransferCursorPagination(SafeCursorPagination):
    # CursorPagination orders by its own `ordering` (DRF's default "-created" is not a Transfer field);
    # the id makes the order total for transfers created in the same microsecond.
    ordering = ("-created_at", "-id")
    page_size_query_param, max_page_size = "limit", 100

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is not None and not (raw.isascii() and raw.isdigit() and len(raw) <= 3
                                    and 1 <= int(raw) <= self.max_page_size):
            raise ValidationError({"limit": [f"A page holds 1 to {self.max_page_size} transfers."]})
        return super().get_page_size(request)


def _transfers(request):
    """The key's partner's transfers in the key's mode: a test key never sees a live transfer, nor a live key a test
    one (not found, as another partner's)."""
    return Transfer.objects.filter(partner=request.user, livemode=request.auth.livemode).select_related(
        "quote", "partner_payout__payout_partner")


@extend_schema_view(get=extend_schema(operation_id="transfers_list", tags=["transfers"], summary="List your transfers",
                                     description="Newest first, by cursor: follow `next` as given.",
                                     parameters=LIST_PARAMETERS, examples=examples.TRANSFER_LIST))
class TransferListCreateApi(Idempotent, generics.ListAPIView):
    required_scopes = {"GET": [scopes.TRANSFERS_READ], "POST": [scopes.TRANSFERS_CREATE]}
    idempotency = "required"  # a transfer moves money: a retry must never make a second one
    serializer_class = TransferOutputSerializer
    pagination_class = TransferCursorPagination

    def get_queryset(self):
        if self.request.method != "GET":
            return _transfers(self.request)
        # Parsed before any query runs: a bad filter is a 400 and reads nothing.
        return transfers_of_partner(partner=self.request.user, livemode=self.request.auth.livemode,
                                    **transfer_list_filters(self.request.query_params))

    def get_serializer(self, *args, **kwargs):
        if args and isinstance(args[0], list):  # a page of transfers: their settlements in one read
            kwargs.setdefault("context", self.get_serializer_context())["settlements"] = transfer_settlements(
                transfers=args[0])
        return super().get_serializer(*args, **kwargs)

    @extend_schema(parameters=[IDEMPOTENCY_KEY_REQUIRED], request=TransferInputSerializer,
                   operation_id="transfers_create", tags=["transfers"], summary="Create a transfer from a quote",
                   examples=examples.TRANSFER_CREATE,
                   description="201 with the new transfer (and `Location`); the same Idempotency-Key and body replay "
                               "that first answer byte for byte (`Idempotent-Replayed: true`).",
                   responses={201: TransferOutputSerializer, 200: TransferOutputSerializer,
                              **problem_responses(403, 404, 409, 422, 503, descriptions={
                                  403: "The key may not do this, or the sender, card or wallet is frozen "
                                       "(`transfer-refused`).",
                                  404: "No such quote (`quote-not-found`)."})})
    def post(self, request):
        data = TransferInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        # The key's record (api/idempotency.py) replays a finished request; the transfer's own unique key is the
        # inner guarantee (a record expired or taken over after a crash still finds the transfer made with the key).
        transfer, created = transfer_create(
            partner=request.user, idempotency_key=self.idempotency_key, fingerprint=request_fingerprint(request.data),
            livemode=request.auth.livemode, **data.validated_data)
        if not created:
            return Response(TransferOutputSerializer(transfer).data, status=status.HTTP_200_OK)
        return Response(TransferOutputSerializer(transfer).data, status=status.HTTP_201_CREATED,
                        headers={"Location": reverse("api-transfer-detail", args=[transfer.pk])})


class TransferCancelApi(Idempotent, APIView):
    required_scopes = {"POST": [scopes.TRANSFERS_CREATE]}
    idempotency = "optional"

    @extend_schema(parameters=[IDEMPOTENCY_KEY_OPTIONAL, TRANSFER_ID], request=None,
                   responses={200: TransferOutputSerializer, **problem_responses(409, 422, 503)},
                   operation_id="transfers_cancel", tags=["transfers"], summary="Cancel a transfer",
                   examples=examples.TRANSFER_CANCEL,
                   description="Cancel before settlement. Unpaid: the card payment is cancelled, status `cancelled`. "
                               "Paid: refunded in full, status `refunding`, then `refunded`. A transfer under review (`held`) "
                               "is not cancelled by the sender: 409 `transfer-not-cancellable`. Cancelling again answers "
                               "with the transfer as it is; once settlement has started, 409 "
                               "`transfer-not-cancellable` and nothing changes.")
    def post(self, request, pk):
        # Another partner's transfer is not found (404), as for reads: no hint that it exists.
        transfer = get_object_or_404(_transfers(request), pk=pk)
        transfer = pipeline_cancel.transfer_cancel(transfer_id=transfer.pk, reason="cancelled by the sender")
        return Response(TransferOutputSerializer(_transfers(request).get(pk=transfer.pk)).data)


@extend_schema_view(get=extend_schema(operation_id="transfers_retrieve", tags=["transfers"], summary="Read a transfer",
                                     parameters=[TRANSFER_ID], examples=examples.TRANSFER_READ))
class TransferDetailApi(generics.RetrieveAPIView):
    required_scopes = {"GET": [scopes.TRANSFERS_READ]}
    serializer_class = TransferOutputSerializer

    def get_queryset(self):
        # Another partner's transfer is simply not found (no hint that it exists).
        return _transfers(self.request)
