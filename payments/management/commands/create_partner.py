from django.core.management.base import BaseCommand, CommandError

from payments.scopes import SCOPES, UnknownScopes
from payments.services.setup import partner_create


class Command(BaseCommand):
    help = "Create a partner (or reuse one by name) and print a new API key for it. The key is shown once."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--scopes", help=f"comma-separated, of: {', '.join(SCOPES)} (default: all but "
                                             f"payouts:confirm)")
        parser.add_argument("--test", action="store_true", help="a sandbox key (tlp_test_…) instead of a live one")

    def handle(self, *args, name, scopes=None, test=False, **options):
        name = name.strip()
        if not name or len(name) > 100:
            raise CommandError("NAME must be 1 to 100 characters.")
        try:
            partner, key = partner_create(name=name, scopes=scopes, livemode=not test)
        except UnknownScopes as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Partner: {partner.name} (id {partner.id})")
        self.stdout.write(f"API key (shown once, send as `Authorization: Bearer <key>` or `Api-Key <key>`): {key}")
