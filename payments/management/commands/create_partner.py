from django.core.management.base import BaseCommand, CommandError

from payments.services.setup import partner_create


class Command(BaseCommand):
    help = "Create a partner (or reuse one by name) and print a new API key for it. The key is shown once."

    def add_arguments(self, parser):
        parser.add_argument("name")

    def handle(self, *args, name, **options):
        name = name.strip()
        if not name or len(name) > 100:
            raise CommandError("NAME must be 1 to 100 characters.")
        partner, key = partner_create(name=name)
        self.stdout.write(f"Partner: {partner.name} (id {partner.id})")
        self.stdout.write(f"API key (shown once, send as `Authorization: Api-Key <key>`): {key}")
