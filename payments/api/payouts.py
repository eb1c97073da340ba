"""Payout partner API: the payouts a bank or wallet provider must pay out, and its confirmation or failure of each
(payments/services/payout_partners.py; docs/api.md, "Payout partners")."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import generics, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from common.openapi import problem_responses
from common.pagination import SafeCursorPagination
from payments.api import examples
from payments.api.serializers import text_field
from payments.services import payout_partners as service

SCOPES = ["payouts:confirm"]
PAYOUT_ID = OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH,
                             description="The payout's id (its transfer's id).")


class PayoutRecipientSerializer(serializers.Serializer):
    name = serializers.CharField()
    phone = serializers.CharField(help_text="E.164.")
    account = serializers.CharField(help_text="The recipient's account number or phone with you.")


class PayoutOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="transfer_id", help_text="The transfer's id: confirm or fail the payout by it.")
    reference = serializers.CharField(help_text="Short reference of this payout, as you show it to the recipient.")
    payout_partner = serializers.CharField(source="payout_partner.code")
    amount = serializers.DecimalField(source="transfer.quote.target_amount", max_digits=14, decimal_places=2,
                                      help_text="What you pay the recipient, in KGS (1 KGST = 1 KGS received).")
    currency = serializers.CharField(source="transfer.quote.target_currency")
    tx_hash = serializers.CharField(help_text="The on-chain transaction that brought the KGST to your address.")
    recipient = serializers.SerializerMethodField()
    status = serializers.ChoiceField(choices=["awaiting", "confirmed", "failed"],
                                     help_text="`awaiting` (yours to pay out), `confirmed` or `failed`.")
    sent_at = serializers.DateTimeField(help_text="When the KGST was final at your settlement address.")
    confirmed_at = serializers.DateTimeField(allow_null=True)
    failed_at = serializers.DateTimeField(allow_null=True)
    failure_reason = serializers.CharField()

    @extend_schema_field(PayoutRecipientSerializer)
    def get_recipient(self, obj):
        return {"name": obj.transfer.recipient_name, "phone": obj.transfer.recipient_phone,
                "account": obj.recipient_account}


class PayoutFailInputSerializer(serializers.Serializer):
    reason = text_field(max_length=300, help_text="Why the person could not be paid (account closed, …).")


class PayoutCursorPagination(SafeCursorPagination):
    ordering = ("sent_at", "pk")


class PayoutListApi(generics.ListAPIView):
    """Payouts waiting for your confirmation, oldest first."""

    required_scopes = SCOPES
    live_keys_only = True
    serializer_class = PayoutOutputSerializer
    pagination_class = PayoutCursorPagination

    def get_queryset(self):
        return service.payouts_awaiting(operator=self.request.user)

    @extend_schema(operation_id="payouts_list", tags=["payouts"], summary="Payouts awaiting your confirmation",
                   examples=examples.PAYOUT_LIST)
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class PayoutConfirmApi(APIView):
    required_scopes = SCOPES
    live_keys_only = True

    @extend_schema(request=None, responses={200: PayoutOutputSerializer, **problem_responses(409, descriptions={
                       409: "Already failed (`payout-already-decided`) or its KGST is not final with you yet "
                            "(`payout-not-sent`)."})},
                   operation_id="payouts_confirm", tags=["payouts"], summary="Confirm you paid the recipient",
                   parameters=[PAYOUT_ID], examples=examples.PAYOUT_CONFIRM,
                   description="You paid the recipient: the transfer completes. Confirming again answers the same; "
                               "after a failure, 409 `payout-already-decided`; another partner's payout, 404.")
    def post(self, request, pk):
        service.payout_confirm(operator=request.user, transfer_id=pk)
        return Response(PayoutOutputSerializer(service.payout_get(operator=request.user, transfer_id=pk)).data)


class PayoutFailApi(APIView):
    required_scopes = SCOPES
    live_keys_only = True

    @extend_schema(request=PayoutFailInputSerializer, responses={
                       200: PayoutOutputSerializer, **problem_responses(409, descriptions={
                           409: "Already confirmed (`payout-already-decided`) or its KGST is not final with you yet "
                                "(`payout-not-sent`)."})},
                   operation_id="payouts_fail", tags=["payouts"], summary="Report that you could not pay out",
                   parameters=[PAYOUT_ID], examples=examples.PAYOUT_FAIL,
                   description="You could not pay the recipient: the transfer goes to `payout_failed` for our "
                               "operators. Failing again answers the same; after a confirmation, 409.")
    def post(self, request, pk):
        data = PayoutFailInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        service.payout_fail(operator=request.user, transfer_id=pk, reason=data.validated_data["reason"])
        return Response(PayoutOutputSerializer(service.payout_get(operator=request.user, transfer_id=pk)).data)
