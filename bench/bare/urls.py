"""The product's URL map plus POST /bench/bare."""

from django.urls import path
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from bench.bare.models import BareRow
from gateway.urls import urlpatterns as product_urlpatterns


class BareInput(serializers.Serializer):
    currency = serializers.ChoiceField(choices=["RUB", "USD"])
    amount = serializers.DecimalField(max_digits=12, decimal_places=2)
    note = serializers.CharField(max_length=100)


class BarePostApi(APIView):
    """Validates three fields and inserts one row. DRF's defaults of our settings apply, as to every API view: the
    partner's API key and its rate limit, our JSON parser and renderer, the problem-details handler."""

    def post(self, request):
        data = BareInput(data=request.data)
        data.is_valid(raise_exception=True)
        row = BareRow.objects.create(**data.validated_data)
        return Response({"id": row.id}, status=status.HTTP_201_CREATED)


urlpatterns = [*product_urlpatterns, path("bench/bare", BarePostApi.as_view())]
