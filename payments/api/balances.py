"""Partner API: the partner's own prefunded balances and their statements (services/balances.py)."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from common.pagination import SafeCursorPagination
from payments import scopes
from payments.api import examples
from payments.models import SOURCE_CURRENCIES, Posting
from payments.services.balances import balance_movements, balance_statement, balances_list

AMOUNT = {"max_digits": 20, "decimal_places": 2}


class BalanceOutputSerializer(serializers.Serializer):
    currency = serializers.ChoiceField(choices=SOURCE_CURRENCIES)
    balance = serializers.DecimalField(source="amount", help_text="What we hold for you: funds transfers.", **AMOUNT)


class BalancesOutputSerializer(serializers.Serializer):
    balances = BalanceOutputSerializer(many=True)


class MovementOutputSerializer(serializers.Serializer):
    entry_id = serializers.IntegerField(help_text="The journal entry that moved the balance.")
    kind = serializers.CharField(help_text="`topup`, `withdrawal`, `funding` (a transfer paid from the balance) or "
                                           "`refund` (a transfer's money back to the balance).")
    amount = serializers.DecimalField(help_text="Signed: + into the balance, − out of it.", **AMOUNT)
    currency = serializers.CharField()
    balance_after = serializers.DecimalField(help_text="The balance right after this movement.", **AMOUNT)
    reference = serializers.CharField(help_text="Your bank transfer's reference (top-ups and withdrawals).")
    transfer_id = serializers.UUIDField(allow_null=True, help_text="The transfer (fundings and refunds).")
    created_at = serializers.DateTimeField(source="at")


class BalancesApi(APIView):
    required_scopes = {"GET": [scopes.BALANCES_READ]}

    @extend_schema(responses={200: BalancesOutputSerializer}, operation_id="balances_list", tags=["balances"],
                   summary="Your prefunded balances", examples=examples.BALANCES,
                   description="Live money only: a test key (sandbox) sees no balances.")
    def get(self, request):
        balances = balances_list(partner=request.user) if request.auth.livemode else []
        return Response(BalancesOutputSerializer({"balances": balances}).data)


class StatementCursorPagination(SafeCursorPagination):
    # Postings on one balance get their ids in commit order (services/balances.py takes the account's lock).
    ordering = ("-id",)


class BalanceStatementApi(generics.ListAPIView):
    required_scopes = {"GET": [scopes.BALANCES_READ]}
    serializer_class = MovementOutputSerializer
    pagination_class = StatementCursorPagination

    def get_queryset(self):
        currency = self.kwargs["currency"].upper()
        if currency not in dict(SOURCE_CURRENCIES):
            raise NotFound(f"No balances are kept in {currency[:3]!r}: use one of "
                           f"{', '.join(dict(SOURCE_CURRENCIES))}.")
        if not self.request.auth.livemode:
            return Posting.objects.none()  # the sandbox never moves a balance
        return balance_statement(partner=self.request.user, currency=currency)

    @extend_schema(operation_id="balances_statement", tags=["balances"], summary="A balance's movements",
                   description="Newest first, by cursor: follow `next` as given.", examples=examples.STATEMENT,
                   parameters=[OpenApiParameter(
        "currency", OpenApiTypes.STR, OpenApiParameter.PATH, enum=list(dict(SOURCE_CURRENCIES)),
        description="The balance's currency.")])
    def get(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(MovementOutputSerializer(balance_movements(page), many=True).data)
