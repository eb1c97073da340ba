"""Sandbox API: move a test transfer through its states (payments/services/sandbox.py; docs/api.md "Sandbox")."""

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from common.openapi import problem_responses
from payments import scopes
from payments.api import examples
from payments.api.serializers import TransferOutputSerializer
from payments.api.views import TRANSFER_ID
from payments.models import Transfer
from payments.services.sandbox import EVENTS, SandboxLiveRefused, sandbox_simulate


class SimulateInputSerializer(serializers.Serializer):
    event = serializers.ChoiceField(choices=EVENTS, help_text="funded, held, failed (rejected) or completed.")


class SandboxSimulateApi(APIView):
    # Moving a transfer is what its creator does (a test key only: nothing real can move).
    required_scopes = {"POST": [scopes.TRANSFERS_CREATE]}

    @extend_schema(request=SimulateInputSerializer,
                   responses={200: TransferOutputSerializer, **problem_responses(403, 409, descriptions={
                       403: "The key may not do this, or it is a live key (`sandbox-live-key`).",
                       409: "The transfer's status does not allow this move (`sandbox-move-refused`)."})},
                   operation_id="sandbox_transfers_simulate", tags=["sandbox"], summary="Simulate a test transfer's event",
                   parameters=[TRANSFER_ID], examples=examples.SANDBOX_SIMULATE,
                   description="Test keys only. Moves a test transfer as if its payment, screening or payout happened: "
                               "`funded` (from awaiting_funding), `held` (from awaiting_funding or funded), `failed` "
                               "(rejected; from awaiting_funding, funded or held), `completed` (from any of those or "
                               "settling). A live key: 403 `sandbox-live-key`; a move the status does not allow: 409 "
                               "`sandbox-move-refused`; nothing changes.")
    def post(self, request, pk):
        if request.auth.livemode:
            raise SandboxLiveRefused("The sandbox needs a test key (tlp_test_…); nothing was changed.")
        data = SimulateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        transfer = sandbox_simulate(transfer_id=pk, event=data.validated_data["event"], partner=request.user)
        if transfer is None:
            raise Http404
        transfer = Transfer.objects.select_related("quote").get(pk=transfer.pk)
        return Response(TransferOutputSerializer(transfer).data)
