"""Measure and store each token's gas per payout (onchain.services.token_gas): run after registering a token or
its batch contract, or after the token's issuer upgrades it.

    manage.py token_gas            # every token with a batch contract
    manage.py token_gas KGST       # by symbol
"""

from django.core.management.base import BaseCommand, CommandError

from onchain.errors import OnchainError
from onchain.models import Token
from onchain.services.token_gas import token_gas_measure


class Command(BaseCommand):
    help = "Estimate each token's gas per payout on its chain and store it (the batch gas limit uses it)."

    def add_arguments(self, parser):
        parser.add_argument("symbols", nargs="*", help="token symbols (default: every token with a batch contract)")

    def handle(self, *args, symbols, **options):
        tokens = Token.objects.exclude(batch_contract="").order_by("pk")
        if symbols:
            tokens = tokens.filter(symbol__in=symbols)
        if not tokens:
            raise CommandError("no such token with a batch contract")
        for token in tokens:
            try:
                figure = token_gas_measure(token_id=token.pk)
            except OnchainError as exc:
                raise CommandError(str(exc)) from exc
            self.stdout.write(f"{token}: {figure} gas per payout")
