from django.core.management.base import BaseCommand

from staff.services import roles_sync


class Command(BaseCommand):
    help = "Make each staff role (operator, compliance officer, treasury, auditor) a group with exactly its permissions."

    def handle(self, *args, **options):
        for role, count in roles_sync(strict=True).items():
            if options["verbosity"]:
                self.stdout.write(f"{role}: {count} permissions")
