from django.apps import AppConfig


class OnchainConfig(AppConfig):
    name = "onchain"
    verbose_name = "On-chain settlement"
    default_auto_field = "django.db.models.BigAutoField"
