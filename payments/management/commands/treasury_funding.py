"""Book tokens the treasury put into a payout float (or took out of it) outside payouts: the opening balance, a top-up
of the batch contract or a hot wallet, a sweep. `--currency KGS` (default) is the KGST float in som, `--currency USD`
the USDKG float in dollars. The treasury reconciliation compares each float with its chain, so every such movement
must be booked (docs/runbook.md, "Reconciliation differences"). One entry per reference and float: the same reference
again changes nothing."""

from decimal import Decimal, InvalidOperation

from django.core.management.base import BaseCommand, CommandError

from payments.assets import ASSETS
from payments.errors import PaymentsError
from payments.services.reconciliation import treasury_funding_record


class Command(BaseCommand):
    help = "Book a treasury funding (+) or withdrawal (-) of a payout float (KGST in som, USDKG in dollars)."

    def add_arguments(self, parser):
        parser.add_argument("amount", help="in the float's currency, e.g. 1000000.00; negative for a withdrawal")
        parser.add_argument("--currency", choices=sorted(ASSETS), default="KGS",
                            help="KGS: the KGST float (default); USD: the USDKG float")
        parser.add_argument("--reference", required=True, help="the funding transaction's hash, or a bank reference")
        parser.add_argument("--by", required=True, help="who books it (kept in the entry's memo)")
        parser.add_argument("--reason", required=True, help="why (kept in the entry's memo)")

    def handle(self, *args, amount, reference, by, reason, currency="KGS", **options):
        try:
            amount = Decimal(amount)
            entry = treasury_funding_record(amount=amount, reference=reference, memo=f"{by}: {reason}",
                                            currency=currency)
        except (InvalidOperation, ValueError) as exc:
            raise CommandError(f"not an amount in {currency} (two decimals at most): {amount}") from exc
        except PaymentsError as exc:  # zero
            raise CommandError(exc.detail) from exc
        self.stdout.write(f"{entry.kind} {entry.reference}: {amount} {currency} (entry {entry.pk})")
