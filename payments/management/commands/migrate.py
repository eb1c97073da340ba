"""`migrate`, plus the ledger's SQLite triggers: dropped before migrating and installed again afterwards, so a
migration that rebuilds a ledger table on SQLite neither fails on them nor loses them (payments/ledger_triggers.py).
On PostgreSQL this is Django's migrate unchanged (its ledger triggers come from a migration)."""

from django.core.management.commands.migrate import Command as DjangoMigrate
from django.db import connections

from payments.ledger_triggers import sqlite_ledger_triggers_drop, sqlite_ledger_triggers_install


class Command(DjangoMigrate):
    def handle(self, *args, **options):
        if options.get("plan") or options.get("check_unapplied"):
            return super().handle(*args, **options)
        connection = connections[options["database"]]
        sqlite_ledger_triggers_drop(connection)
        try:
            return super().handle(*args, **options)
        finally:
            sqlite_ledger_triggers_install(connection)
