"""Partner API: outgoing webhook endpoints (with their signing secrets), the events sent and their deliveries, replay
and a test ping (services/webhooks.py). Another partner's endpoints and events are not found (404)."""

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import generics, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from common.openapi import openapi_link, problem_responses
from common.pagination import SafeCursorPagination
from payments.api import examples
from payments.api.serializers import text_field
from payments.models import WebhookDelivery, WebhookEndpoint, WebhookEvent
from payments.services import webhooks
from payments.services.webhook_net import url_check

SCOPES = ["webhooks:manage"]
ENDPOINT_ID = OpenApiParameter("id", OpenApiTypes.STR, OpenApiParameter.PATH, description="The endpoint's id (`ep_…`).")
EVENT_ID = OpenApiParameter("msg_id", OpenApiTypes.STR, OpenApiParameter.PATH,
                            description="The event's id (`msg_…`), its deliveries' `webhook-id`.")
TAGS_ENDPOINTS, TAGS_EVENTS = ["webhook-endpoints"], ["webhook-events"]
URL_REFUSED = {422: "The URL is refused (`webhook-url-refused`) or an event type is unknown "
                    "(`webhook-event-type-unknown`); nothing stored."}

# A created endpoint leads to its reads and changes; an event to its deliveries and a replay.
for _target, _name in (("webhook_endpoints_retrieve", "get_endpoint"), ("webhook_endpoints_update", "update_endpoint"),
                       ("webhook_endpoints_rotate_secret", "rotate_secret"), ("webhook_endpoints_test", "test_endpoint"),
                       ("webhook_endpoints_delete", "delete_endpoint")):
    openapi_link("webhook_endpoints_create", 201, _name, _target, parameters={"id": "$response.body#/id"})
for _source, _status in (("webhook_endpoints_test", 202), ("webhook_events_retrieve", 200)):
    openapi_link(_source, _status, "get_deliveries", "webhook_events_deliveries",
                 parameters={"msg_id": "$response.body#/id"}, description="This event's deliveries.")
openapi_link("webhook_endpoints_test", 202, "get_event", "webhook_events_retrieve",
             parameters={"msg_id": "$response.body#/id"}, description="The test event.")
for _source in ("webhook_endpoints_retrieve", "webhook_endpoints_update"):
    openapi_link(_source, 200, "enable_endpoint", "webhook_endpoints_enable", parameters={"id": "$response.body#/id"},
                 description="Re-enable this endpoint when it is disabled.")
for _source, _status in (("webhook_endpoints_test", 202), ("webhook_events_retrieve", 200)):
    openapi_link(_source, _status, "replay_event", "webhook_events_replay", parameters={"msg_id": "$response.body#/id"},
                 description="Send this event again.")


class WebhookEndpointInputSerializer(serializers.Serializer):
    url = text_field(max_length=2000, help_text="https, resolving to public addresses only.")
    description = text_field(max_length=200, required=False, allow_blank=True, default="")
    event_types = serializers.ListField(
        child=text_field(max_length=60), required=False, default=list, max_length=50,
        help_text='Types to receive; empty or ["*"]: all. Unknown types are refused.')


class WebhookEndpointUpdateSerializer(WebhookEndpointInputSerializer):
    url = text_field(max_length=2000, required=False)
    description = text_field(max_length=200, required=False, allow_blank=True)
    event_types = serializers.ListField(child=text_field(max_length=60), required=False, max_length=50)


class WebhookEndpointOutputSerializer(serializers.ModelSerializer):
    event_types = serializers.ListField(child=serializers.CharField(), help_text='Types sent to it; empty or ["*"]: '
                                                                             'all.')

    class Meta:
        model = WebhookEndpoint
        fields = ["id", "url", "description", "event_types", "enabled", "disabled_reason", "disabled_at",
                  "created_at", "updated_at"]
        read_only_fields = fields


class WebhookEndpointCreatedSerializer(WebhookEndpointOutputSerializer):
    secret = serializers.CharField(help_text="The `whsec_` signing secret, shown this once.")

    class Meta(WebhookEndpointOutputSerializer.Meta):
        fields = [*WebhookEndpointOutputSerializer.Meta.fields, "secret"]
        read_only_fields = fields


class RotateInputSerializer(serializers.Serializer):
    overlap_seconds = serializers.IntegerField(required=False, min_value=0, max_value=7 * 24 * 3600,
                                               help_text="How long the current secrets keep signing too.")


class SecretSerializer(serializers.Serializer):
    secret = serializers.CharField(help_text="The new `whsec_` secret, shown this once.")


@extend_schema_field({"type": "object", "additionalProperties": True,
                      "description": "The `data` of the signed body: its members depend on the event's type."})
class EventPayloadField(serializers.JSONField):
    pass


class WebhookEventOutputSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="msg_id", help_text="The `webhook-id` header of its deliveries.")
    payload = EventPayloadField()

    class Meta:
        model = WebhookEvent
        fields = ["id", "type", "payload", "created_at"]
        read_only_fields = fields


class WebhookAttemptSerializer(serializers.Serializer):
    number = serializers.IntegerField()
    status_code = serializers.IntegerField(allow_null=True)
    response_snippet = serializers.CharField()
    error = serializers.CharField()
    duration_ms = serializers.IntegerField()
    created_at = serializers.DateTimeField()


class WebhookDeliveryOutputSerializer(serializers.ModelSerializer):
    attempt_log = WebhookAttemptSerializer(many=True)

    class Meta:
        model = WebhookDelivery
        fields = ["endpoint", "state", "attempts", "next_attempt_at", "delivered_at", "last_status_code",
                  "last_error", "attempt_log"]
        read_only_fields = fields


class ReplayAcceptedSerializer(serializers.Serializer):
    deliveries = serializers.IntegerField(min_value=0, help_text="How many deliveries were queued.")


class ReplayInputSerializer(serializers.Serializer):
    endpoint_id = text_field(max_length=40, required=False, help_text="Only to this endpoint (default: all subscribed).")


def _endpoints(partner):
    return WebhookEndpoint.objects.filter(partner=partner)


def _events(partner):
    return WebhookEvent.objects.filter(partner=partner)


class EndpointCursorPagination(SafeCursorPagination):
    ordering = ("created_at",)


class WebhookEndpointListCreateApi(generics.ListAPIView):
    required_scopes = SCOPES
    live_keys_only = True
    serializer_class = WebhookEndpointOutputSerializer
    pagination_class = EndpointCursorPagination

    def get_queryset(self):
        return _endpoints(self.request.user)

    @extend_schema(operation_id="webhook_endpoints_list", tags=TAGS_ENDPOINTS, summary="List your webhook endpoints",
                   examples=examples.WEBHOOK_ENDPOINT_LIST)
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(request=WebhookEndpointInputSerializer,
                   responses={201: WebhookEndpointCreatedSerializer, **problem_responses(422, descriptions=URL_REFUSED)},
                   operation_id="webhook_endpoints_create", tags=TAGS_ENDPOINTS, summary="Add a webhook endpoint",
                   examples=examples.WEBHOOK_ENDPOINT_CREATE,
                   description="The URL must be https and resolve to public addresses only; unknown event types "
                               "are refused (422 problem, nothing stored). The answer carries the signing secret, "
                               "shown this once.")
    def post(self, request):
        data = WebhookEndpointInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint, secret = webhooks.endpoint_create(partner=request.user, **data.validated_data)
        endpoint.secret = secret
        return Response(WebhookEndpointCreatedSerializer(endpoint).data, status=status.HTTP_201_CREATED)


class WebhookEndpointDetailApi(APIView):
    required_scopes = SCOPES
    live_keys_only = True

    @extend_schema(responses={200: WebhookEndpointOutputSerializer}, operation_id="webhook_endpoints_retrieve",
                   tags=TAGS_ENDPOINTS, summary="Read a webhook endpoint", parameters=[ENDPOINT_ID],
                   examples=examples.WEBHOOK_ENDPOINT_READ)
    def get(self, request, pk):
        return Response(WebhookEndpointOutputSerializer(get_object_or_404(_endpoints(request.user), pk=pk)).data)

    @extend_schema(request=WebhookEndpointUpdateSerializer,
                   responses={200: WebhookEndpointOutputSerializer, **problem_responses(422, descriptions=URL_REFUSED)},
                   operation_id="webhook_endpoints_update", tags=TAGS_ENDPOINTS, summary="Change a webhook endpoint",
                   parameters=[ENDPOINT_ID], examples=examples.WEBHOOK_ENDPOINT_UPDATE)
    def patch(self, request, pk):
        endpoint = get_object_or_404(_endpoints(request.user), pk=pk)
        data = WebhookEndpointUpdateSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        endpoint = webhooks.endpoint_update(endpoint=endpoint, **data.validated_data)
        return Response(WebhookEndpointOutputSerializer(endpoint).data)

    @extend_schema(responses={204: None}, operation_id="webhook_endpoints_delete", tags=TAGS_ENDPOINTS,
                   summary="Delete a webhook endpoint", parameters=[ENDPOINT_ID],
                   examples=examples.WEBHOOK_ENDPOINT_DELETE)
    def delete(self, request, pk):
        get_object_or_404(_endpoints(request.user), pk=pk).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookEndpointRotateApi(APIView):
    required_scopes = SCOPES
    live_keys_only = True

    @extend_schema(request=RotateInputSerializer, responses={200: SecretSerializer},
                   operation_id="webhook_endpoints_rotate_secret", tags=TAGS_ENDPOINTS,
                   summary="Rotate an endpoint's signing secret", parameters=[ENDPOINT_ID],
                   examples=examples.WEBHOOK_ENDPOINT_ROTATE,
                   description="A new secret signs from now on; the current ones keep signing as well (several "
                               "signatures in `webhook-signature`) until `overlap_seconds` from now (default 24 h).")
    def post(self, request, pk):
        endpoint = get_object_or_404(_endpoints(request.user), pk=pk)
        data = RotateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        secret = webhooks.endpoint_rotate_secret(endpoint=endpoint,
                                                 overlap_seconds=data.validated_data.get("overlap_seconds"))
        return Response(SecretSerializer({"secret": secret}).data)


class WebhookEndpointEnableApi(APIView):
    required_scopes = SCOPES
    live_keys_only = True

    @extend_schema(request=None, responses={200: WebhookEndpointOutputSerializer, **problem_responses(
                       422, descriptions={422: "The URL is refused now (`webhook-url-refused`)."})},
                   operation_id="webhook_endpoints_enable", tags=TAGS_ENDPOINTS, summary="Re-enable a webhook endpoint",
                   parameters=[ENDPOINT_ID], examples=examples.WEBHOOK_ENDPOINT_ENABLE,
                   description="Re-enable a disabled endpoint (its URL is checked again); its pending deliveries "
                               "go out now.")
    def post(self, request, pk):
        endpoint = get_object_or_404(_endpoints(request.user), pk=pk)
        url_check(endpoint.url)
        return Response(WebhookEndpointOutputSerializer(webhooks.endpoint_enable(endpoint=endpoint)).data)


class WebhookEndpointTestApi(APIView):
    required_scopes = SCOPES
    live_keys_only = True

    @extend_schema(request=None, responses={202: WebhookEventOutputSerializer}, operation_id="webhook_endpoints_test",
                   tags=TAGS_ENDPOINTS, summary="Send a test event", parameters=[ENDPOINT_ID],
                   examples=examples.WEBHOOK_ENDPOINT_TEST,
                   description="Send a `webhook.test` event to this endpoint.")
    def post(self, request, pk):
        endpoint = get_object_or_404(_endpoints(request.user), pk=pk)
        event = webhooks.endpoint_ping(endpoint=endpoint)
        return Response(WebhookEventOutputSerializer(event).data, status=status.HTTP_202_ACCEPTED)


class EventCursorPagination(SafeCursorPagination):
    ordering = ("-id",)


class WebhookEventListApi(generics.ListAPIView):
    required_scopes = SCOPES
    live_keys_only = True
    serializer_class = WebhookEventOutputSerializer
    pagination_class = EventCursorPagination

    def get_queryset(self):
        return _events(self.request.user)

    @extend_schema(operation_id="webhook_events_list", tags=TAGS_EVENTS, summary="List the events sent to you",
                   description="Newest first, by cursor: follow `next` as given.",
                   examples=examples.WEBHOOK_EVENT_LIST)
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class WebhookEventDetailApi(APIView):
    required_scopes = SCOPES
    live_keys_only = True

    @extend_schema(responses={200: WebhookEventOutputSerializer}, operation_id="webhook_events_retrieve",
                   tags=TAGS_EVENTS, summary="Read an event", parameters=[EVENT_ID],
                   examples=examples.WEBHOOK_EVENT_READ)
    def get(self, request, msg_id):
        return Response(WebhookEventOutputSerializer(get_object_or_404(_events(request.user), msg_id=msg_id)).data)


class WebhookEventDeliveriesApi(APIView):
    required_scopes = SCOPES
    live_keys_only = True

    @extend_schema(responses={200: WebhookDeliveryOutputSerializer(many=True)},
                   operation_id="webhook_events_deliveries", tags=TAGS_EVENTS,
                   summary="An event's deliveries and their attempts", parameters=[EVENT_ID],
                   examples=examples.WEBHOOK_EVENT_DELIVERIES)
    def get(self, request, msg_id):
        event = get_object_or_404(_events(request.user), msg_id=msg_id)
        deliveries = event.deliveries.order_by("pk").prefetch_related("attempt_log")
        return Response(WebhookDeliveryOutputSerializer(deliveries, many=True).data)


class WebhookEventReplayApi(APIView):
    required_scopes = SCOPES
    live_keys_only = True

    @extend_schema(
        request=ReplayInputSerializer, responses={202: ReplayAcceptedSerializer}, operation_id="webhook_events_replay",
        tags=TAGS_EVENTS, summary="Send an event again", parameters=[EVENT_ID], examples=examples.WEBHOOK_EVENT_REPLAY,
        description="Send the event again with the same `webhook-id`, to one endpoint or to every enabled endpoint "
                    "subscribed to it.")
    def post(self, request, msg_id):
        event = get_object_or_404(_events(request.user), msg_id=msg_id)
        data = ReplayInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint = None
        if data.validated_data.get("endpoint_id"):
            endpoint = get_object_or_404(_endpoints(request.user), pk=data.validated_data["endpoint_id"])
        ids = webhooks.event_replay(event=event, endpoint=endpoint)
        return Response({"deliveries": len(ids)}, status=status.HTTP_202_ACCEPTED)
