from django.apps import AppConfig


class OnchainConfig(AppConfig):
    name = "onchain"
    verbose_name = "On-chain settlement"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Staff actions on wallets and alerts, which admin runs and a second person may approve (staff/services.py).
        from onchain import guarded
        from staff.actions import guarded_actions_register

        guarded_actions_register(*guarded.ACTIONS)
