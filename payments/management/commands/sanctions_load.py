"""`manage.py sanctions_load FORMAT FILE...`: load a published sanctions list as the new current version of its
source (payments/sanctions/load.py). Any file that cannot be loaded is a CommandError and changes nothing."""

import getpass
from datetime import date

from django.core.management.base import BaseCommand, CommandError

from payments.errors import SanctionsListInvalid
from payments.models import SanctionsListVersion
from payments.sanctions.formats import PARSERS
from payments.sanctions.load import sanctions_list_load


class Command(BaseCommand):
    help = ("Load a sanctions list. Formats: ofac-csv (SDN.CSV [ALT.CSV] [ADD.CSV]), ofac-xml (sdn_advanced.xml), "
            "un-xml, eu-xml, eu-csv, opensanctions (FollowTheMoney JSON lines). The previous version stays in force "
            "until the new one has loaded completely.")

    def add_arguments(self, parser):
        parser.add_argument("format", help=f"one of: {', '.join(PARSERS)}")
        parser.add_argument("files", nargs="+", help="the list's file(s)")
        parser.add_argument("--source", choices=SanctionsListVersion.Source.values,
                            help="store under this source instead of the format's own (e.g. sample)")
        parser.add_argument("--encoding", default="utf-8", help="of CSV and JSON files (XML says its own)")
        parser.add_argument("--published", help="the list's publication date, YYYY-MM-DD, when the file does not say")
        parser.add_argument("--by", default=None, help="who loads it (default: the OS user)")

    def handle(self, *args, format, files, source, encoding, published, by, **options):  # noqa: A002
        published_on = None
        if published:
            try:
                published_on = date.fromisoformat(published)
            except ValueError as exc:
                raise CommandError(f"--published {published!r}: give a date as YYYY-MM-DD") from exc
        try:
            version, created = sanctions_list_load(file_format=format, paths=files, source=source, encoding=encoding,
                                                   published_on=published_on, loaded_by=by or _user())
        except SanctionsListInvalid as exc:
            raise CommandError(f"{exc} — nothing loaded; the previous version stays in force.") from exc
        if not created:
            self.stdout.write(f"{version.get_source_display()}: these files are already the current version "
                              f"(#{version.pk}); nothing changed.")
            return
        self.stdout.write(f"{version.get_source_display()} version #{version.pk} is now current: "
                          f"{version.entry_count} entries, {version.name_count} names ({version.alias_count} aliases), "
                          f"{version.address_count} digital-currency addresses; published "
                          f"{version.published_on or 'date not given'}.")


def _user():
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "manage.py"
