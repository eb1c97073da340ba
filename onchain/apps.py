from django.apps import AppConfig


class OnchainConfig(AppConfig):
    name = "onchain"
    verbose_name = "On-chain settlement"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # eth_account imports py_ecc, which raises the process's recursion limit to 100,000 when first imported.
        # Import it at start-up (not lazily in some request or task), so that CommonConfig.ready(), which runs after
        # this, undoes it for the life of the process.
        import eth_account  # noqa: F401
