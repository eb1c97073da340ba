"""The product's URL map plus POST /bench/bare (`make bench-quotes`) and GET/POST /bench/noop (`make bench-api`).
Served only under bench.bare.settings: the product's settings never route here."""

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

    required_scopes = ["quotes"]  # the scope check runs as on every API view

    def post(self, request):
        data = BareInput(data=request.data)
        data.is_valid(raise_exception=True)
        row = BareRow.objects.create(**data.validated_data)
        return Response({"id": row.id}, status=status.HTTP_201_CREATED)


class NoopApi(APIView):
    """The bare DRF baseline of `make bench-api`: no database at all. GET answers a small object; POST validates the
    three fields of BareInput and answers 201. Authentication, the key's rate limit, parser and renderer as every
    API view of ours."""

    required_scopes = ["quotes"]  # the scope check runs as on every API view

    def get(self, request):
        return Response({"id": "noop", "status": "ok"})

    def post(self, request):
        data = BareInput(data=request.data)
        data.is_valid(raise_exception=True)
        return Response({"id": "noop", **data.validated_data}, status=status.HTTP_201_CREATED)


urlpatterns = [*product_urlpatterns, path("bench/bare", BarePostApi.as_view()), path("bench/noop", NoopApi.as_view())]
