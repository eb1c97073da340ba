from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "payments"
    verbose_name = "Payments"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Start-up wiring, not a signal: onchain reports final and failed payouts to the transfers' state machine.
        from django.core import checks

        from onchain.api import payout_listener_register
        from payments import guarded, guarded_keys, guarded_limits, guarded_payout_partners, guarded_recon
        from payments.pipeline import TransferPayoutListener
        from payments.providers.stripe_rail import api_version_check
        from staff.actions import guarded_actions_register

        payout_listener_register(TransferPayoutListener())
        checks.register(api_version_check, "payments")
        # Staff actions on transfers, which admin runs and a second person may approve (staff/services.py).
        guarded_actions_register(*guarded.ACTIONS)
        guarded_actions_register(*guarded_recon.ACTIONS)
        guarded_actions_register(*guarded_limits.ACTIONS)
        guarded_actions_register(*guarded_keys.ACTIONS)
        guarded_actions_register(*guarded_payout_partners.ACTIONS)
        # Outgoing webhooks: an outbox event in the transaction of each transfer status change (common.status).
        from payments.services import webhook_events

        webhook_events.connect()
        # Notifications to senders and recipients: an outbox row in the same transaction (services/notifications.py).
        from payments.services import notifications

        notifications.connect()
