from django.core.management.base import BaseCommand

from payments.services.setup import corridors_seed, rates_seed


class Command(BaseCommand):
    help = "Create the RUB→KGS and USD→KGS corridors and today's seed rates where missing."

    def handle(self, *args, **options):
        corridors_seed()
        rates_seed()
        self.stdout.write("Corridors and rates seeded.")
