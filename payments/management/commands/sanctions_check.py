"""Screen a name (and optionally a wallet address) against the sanctions lists in force, as transfers are screened.

    manage.py sanctions_check --name "Усенов Айбек" [--dob 1970-05-01] [--nationality KG] [--address 0x...]
    manage.py sanctions_check --names-file names.txt     # one name per line, one JSON object per line

Prints {"name", "decision": "clear|hold|reject", "score", "hits": [...]} as JSON (docs/compliance.md "Matching").
In a names file, a line that cannot be screened prints decision "hold" with an "error" (never "clear"); blank
lines are skipped."""

import json

from django.core.management.base import BaseCommand, CommandError

from payments.sanctions.matching import ScreeningInputError
from payments.services.screening import HOLD, screening_lookup


class Command(BaseCommand):
    help = "Screen names (and a wallet address) against the sanctions lists; prints JSON."

    def add_arguments(self, parser):
        parser.add_argument("--name", help="the name to screen, in any word order, Latin or Cyrillic")
        parser.add_argument("--names-file", help="a UTF-8 file with one name per line")
        parser.add_argument("--dob", help="date of birth, YYYY-MM-DD or YYYY (raises or lowers the score)")
        parser.add_argument("--nationality", help="ISO 3166 two-letter country code (raises or lowers the score)")
        parser.add_argument("--address", help="a wallet address (0x... or a Tron T...), matched exactly")
        parser.add_argument("--limit", type=int, default=10, help="hits per name (10)")

    def handle(self, *args, name, names_file, dob, nationality, address, limit, **options):
        if limit < 1:
            raise CommandError("--limit is the number of hits to print per name: 1 or more.")
        if name is not None and names_file is not None:
            raise CommandError("Give --name or --names-file, not both.")
        if name is None and names_file is None and address is None:
            raise CommandError("Give --name, --names-file or --address.")
        if names_file is None:
            try:
                result = screening_lookup(name=name, birth_date=dob, nationality=nationality, address=address,
                                          limit=limit)
            except ScreeningInputError as exc:
                raise CommandError(str(exc)) from exc
            self.stdout.write(json.dumps(result, ensure_ascii=False))
            return
        try:
            with open(names_file, encoding="utf-8") as f:
                lines = f.read().splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"Cannot read {names_file}: {exc}") from exc
        for line in lines:
            if not line.strip():
                continue
            try:
                result = screening_lookup(name=line.strip(), birth_date=dob, nationality=nationality,
                                          address=address, limit=limit)
            except ScreeningInputError as exc:
                result = {"name": line.strip(), "decision": HOLD, "score": None, "hits": [], "error": str(exc)}
            self.stdout.write(json.dumps(result, ensure_ascii=False))
