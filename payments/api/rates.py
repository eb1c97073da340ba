"""Partner API: the current rate of every active corridor, with the official rate and the fee structure
(services/rates.py corridor_rates)."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from payments.api import examples
from payments.services.rates import corridor_rates

MONEY = {"max_digits": 12, "decimal_places": 2}
RATE = {"max_digits": 18, "decimal_places": 8}


class CorridorRateOutputSerializer(serializers.Serializer):
    corridor = serializers.SerializerMethodField(help_text="`RUB-KGS`, `USD-KGS`, `RUB-USD`, `USD-USD`: the "
                                                             "list's `corridor` filter value.")
    source_currency = serializers.CharField(source="corridor.source_currency")
    target_currency = serializers.CharField(source="corridor.target_currency")
    available = serializers.SerializerMethodField(help_text="False when quotes are paused: see unavailable_reason.")
    unavailable_reason = serializers.CharField(allow_null=True, help_text="Why there is no rate now; null when there is.")
    rate = serializers.DecimalField(allow_null=True, help_text="Ours: the official rate less our margin, target units per "
                                    "source unit. Null when the official rate is missing or out of date.", **RATE)
    official_rate = serializers.DecimalField(allow_null=True, help_text="The National Bank's rate in effect (the last "
                                             "one known when it is out of date); into USD the cross of its RUB and "
                                             "USD rates, rounded up to 8 decimals; USD-USD exactly 1.", **RATE)
    official_rate_date = serializers.DateField(allow_null=True, help_text="The date the National Bank set it for (the "
                                               "older of the two for a cross); null for USD-USD.")
    min_amount = serializers.DecimalField(source="corridor.min_amount", **MONEY)
    max_amount = serializers.DecimalField(source="corridor.max_amount", **MONEY)
    fixed_fee = serializers.DecimalField(source="corridor.fixed_fee", **MONEY)
    percent_fee_bps = serializers.IntegerField(source="corridor.percent_fee_bps",
                                               help_text="Percent fee in basis points (100 = 1 %).")
    min_fee = serializers.DecimalField(source="corridor.min_fee", **MONEY)
    max_fee = serializers.DecimalField(source="corridor.max_fee", allow_null=True, help_text="Null: no cap.", **MONEY)

    def get_corridor(self, obj) -> str:
        return f"{obj.corridor.source_currency}-{obj.corridor.target_currency}"

    def get_available(self, obj) -> bool:
        return obj.rate is not None

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["unavailable_reason"] = instance.unavailable_reason or None
        return data


class RatesOutputSerializer(serializers.Serializer):
    rates = CorridorRateOutputSerializer(many=True)


class RatesApi(APIView):
    required_scopes = ["quotes"]

    @extend_schema(responses={200: RatesOutputSerializer}, operation_id="rates_list", tags=["rates"],
                   summary="Current rates and fees of every corridor", examples=examples.RATES,
                   description="The current rate of every active corridor: ours (after our margin) and the official "
                               "one with its date, and the fee and amount limits a quote applies. A corridor whose "
                               "official rate is missing or out of date is listed with `available: false` and the "
                               "reason, as quotes would refuse it. Fee: fixed + percent of the amount, kept within "
                               "[min_fee, max_fee].")
    def get(self, request):
        return Response(RatesOutputSerializer({"rates": corridor_rates()}).data)
