"""Book KGST the treasury put into the float (or took out of it) outside payouts: the opening balance, a top-up of
the batch contract or a hot wallet, a sweep. The treasury reconciliation compares the ledger's float with the chain,
so every such movement must be booked (docs/runbook.md, "Reconciliation differences"). One entry per reference: the
same reference again changes nothing."""

from decimal import Decimal, InvalidOperation

from django.core.management.base import BaseCommand, CommandError

from payments.errors import PaymentsError
from payments.services.reconciliation import treasury_funding_record


class Command(BaseCommand):
    help = "Book a treasury funding (+) or withdrawal (-) of the KGST float, in som, under a reference."

    def add_arguments(self, parser):
        parser.add_argument("amount", help="som (KGS), e.g. 1000000.00; negative for a withdrawal")
        parser.add_argument("--reference", required=True, help="the funding transaction's hash, or a bank reference")
        parser.add_argument("--by", required=True, help="who books it (kept in the entry's memo)")
        parser.add_argument("--reason", required=True, help="why (kept in the entry's memo)")

    def handle(self, *args, amount, reference, by, reason, **options):
        try:
            amount = Decimal(amount)
            entry = treasury_funding_record(amount=amount, reference=reference, memo=f"{by}: {reason}")
        except (InvalidOperation, ValueError) as exc:
            raise CommandError(f"not an amount in som (two decimals at most): {amount}") from exc
        except PaymentsError as exc:  # zero
            raise CommandError(exc.detail) from exc
        self.stdout.write(f"{entry.kind} {entry.reference}: {amount} KGS (entry {entry.pk})")
