"""Frozen identities (sender email or phone, card fingerprint, recipient wallet): list, add, lift.

Disputes and early fraud warnings freeze identities by themselves (payments.pipeline_disputes.card_dispute_record); this is
the operators' tool to see them, freeze one by hand, and lift one with a reason (docs/runbook.md, "Disputes and
freezes"). A lifted freeze stays in the table with who lifted it, when and why."""

from django.core.management.base import BaseCommand, CommandError

from payments.models import Freeze
from payments.services.fraud import freeze_lift, identities_freeze, normalise


class Command(BaseCommand):
    help = "List, add or lift frozen identities (email, phone, card fingerprint, wallet)."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        listing = sub.add_parser("list", help="active freezes (--all: lifted ones too)")
        listing.add_argument("--all", action="store_true")
        listing.add_argument("--kind", choices=Freeze.Kind.values)
        listing.add_argument("--value", help="exact value, e.g. an email or a wallet address")
        add = sub.add_parser("add", help="freeze one identity")
        add.add_argument("--kind", required=True, choices=Freeze.Kind.values)
        add.add_argument("--value", required=True)
        add.add_argument("--reason", required=True)
        lift = sub.add_parser("lift", help="lift a freeze by its id")
        lift.add_argument("freeze_id", type=int)
        lift.add_argument("--by", required=True, help="who decides (kept with the freeze)")
        lift.add_argument("--reason", required=True, help="why (kept with the freeze)")

    def handle(self, *args, action, **options):
        if action == "list":
            freezes = Freeze.objects.order_by("-created_at")
            if not options["all"]:
                freezes = freezes.filter(lifted_at__isnull=True)
            if options["kind"]:
                freezes = freezes.filter(kind=options["kind"])
            if options["value"]:
                freezes = freezes.filter(value=normalise(options["kind"] or "", options["value"]))
            for f in freezes[:500]:
                lifted = f" LIFTED {f.lifted_at:%Y-%m-%d %H:%M} by {f.lifted_by}: {f.lift_reason}" if f.lifted_at else ""
                self.stdout.write(f"{f.pk}\t{f.kind}\t{f.value}\t{f.created_at:%Y-%m-%d %H:%M}\t{f.source}\t"
                                  f"transfer {f.transfer_id or '-'}\t{f.reason}{lifted}")
        elif action == "add":
            created = identities_freeze(pairs=[(options["kind"], options["value"])], reason=options["reason"],
                                        source="operator")
            self.stdout.write(f"Frozen: {created[0].pk}" if created else "Already frozen.")
        else:
            try:
                freeze = freeze_lift(freeze_id=options["freeze_id"], by=options["by"], reason=options["reason"])
            except Freeze.DoesNotExist as exc:
                raise CommandError(f"No freeze {options['freeze_id']}.") from exc
            self.stdout.write(f"Lifted {freeze.pk} ({freeze.kind} {freeze.value}).")
