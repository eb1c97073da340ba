from django.apps import AppConfig
from django.db.models.signals import post_migrate


class StaffConfig(AppConfig):
    name = "staff"
    verbose_name = "Staff oversight"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # After every `migrate` (every deployment) and every test-database flush, the role groups converge on
        # staff.roles. Listed after payments and onchain in INSTALLED_APPS, so their permissions exist by then.
        post_migrate.connect(_roles_sync, sender=self, dispatch_uid="staff.roles_sync")


def _roles_sync(sender, using="default", **kwargs):
    from staff.services import roles_sync

    roles_sync(strict=False, using=using)
