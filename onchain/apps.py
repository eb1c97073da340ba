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

        # Staff actions on wallets and alerts, which admin runs and a second person may approve (staff/services.py).
        from onchain import guarded
        from staff.actions import guarded_actions_register

        guarded_actions_register(*guarded.ACTIONS)
