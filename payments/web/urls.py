from django.urls import path

from payments.web import claim, views

app_name = "web"
urlpatterns = [
    path("", views.start, name="start"),
    path("quote-preview", views.quote_preview, name="quote_preview"),
    path("send/<uuid:quote_id>/details", views.details, name="details"),
    path("t/<str:token>/pay", views.pay, name="pay"),
    path("t/<str:token>/cancel", views.cancel, name="cancel"),
    path("t/<str:token>", views.sender_status, name="sender_status"),
    path("r/<str:token>/claim", claim.claim, name="claim"),
    path("r/<str:token>", views.recipient_status, name="recipient_status"),
    path("language/<str:code>", views.language, name="language"),
]
