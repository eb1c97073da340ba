"""Partner API: each view parses input, calls one service and renders the result."""

from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from common.pagination import SafeCursorPagination
from payments import pipeline, scopes
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


class QuoteCreateApi(Idempotent, APIView):
    required_scopes = {"POST": [scopes.QUOTES]}
    idempotency = "optional"

    @extend_schema(parameters=[IDEMPOTENCY_KEY_OPTIONAL], request=QuoteInputSerializer,
                   responses={201: QuoteOutputSerializer}, operation_id="quotes_create")
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
        if raw is not None and not (raw.isdigit() and 1 <= int(raw) <= self.max_page_size):
            raise ValidationError({"limit": [f"A page holds 1 to {self.max_page_size} transfers."]})
        return super().get_page_size(request)


def _transfers(request):
    """The key's partner's transfers in the key's mode: a test key never sees a live transfer, nor a live key a test
    one (not found, as another partner's)."""
    return Transfer.objects.filter(partner=request.user, livemode=request.auth.livemode).select_related(
        "quote", "partner_payout__payout_partner")


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

    @extend_schema(parameters=LIST_PARAMETERS, operation_id="transfers_list")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_serializer(self, *args, **kwargs):
        if args and isinstance(args[0], list):  # a page of transfers: their settlements in one read
            kwargs.setdefault("context", self.get_serializer_context())["settlements"] = transfer_settlements(
                transfers=args[0])
        return super().get_serializer(*args, **kwargs)

    @extend_schema(parameters=[IDEMPOTENCY_KEY_REQUIRED], request=TransferInputSerializer,
                   responses={201: TransferOutputSerializer, 200: TransferOutputSerializer},
                   operation_id="transfers_create")
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

    @extend_schema(parameters=[IDEMPOTENCY_KEY_OPTIONAL], request=None, responses={200: TransferOutputSerializer},
                   operation_id="transfers_cancel",
                   description="Cancel before settlement. Unpaid: the card payment is cancelled, status `cancelled`. "
                               "Paid: refunded in full, status `refunding`, then `refunded`. A transfer under review (`held`) "
                               "is not cancelled by the sender: 409 `transfer-not-cancellable`. Cancelling again answers "
                               "with the transfer as it is; once settlement has started, 409 "
                               "`transfer-not-cancellable` and nothing changes.")
    def post(self, request, pk):
        # Another partner's transfer is not found (404), as for reads: no hint that it exists.
        transfer = get_object_or_404(_transfers(request), pk=pk)
        transfer = pipeline.transfer_cancel(transfer_id=transfer.pk, reason="cancelled by the sender")
        return Response(TransferOutputSerializer(_transfers(request).get(pk=transfer.pk)).data)


class TransferDetailApi(generics.RetrieveAPIView):
    required_scopes = {"GET": [scopes.TRANSFERS_READ]}
    serializer_class = TransferOutputSerializer

    def get_queryset(self):
        # Another partner's transfer is simply not found (no hint that it exists).
        return _transfers(self.request)
