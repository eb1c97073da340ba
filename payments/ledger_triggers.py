"""The ledger's triggers on SQLite (`make run`): the same rules the ledger_triggers migration installs on PostgreSQL
(docs/ledger.md, "Enforcement"), as row-level triggers.

They are not installed by a migration: to alter a table SQLite rebuilds it (create a copy, drop the original, rename
the copy), and a trigger on another table that names the dropped one makes the rename fail ("error in trigger ...:
no such table"), while the rebuilt table's own triggers are lost. So `manage.py migrate` (payments' override of it)
drops them before it migrates and installs them again afterwards; every migration, ours or a later one that alters
a ledger table, runs on tables without them.
"""

_POSTED = "(SELECT posted FROM payments_journalentry WHERE id = {}.entry_id)"

# SQLite has row-level triggers only (one writer at a time, so no lock is needed either).
SQLITE = [
    """
    CREATE TRIGGER IF NOT EXISTS ledger_entry_insert BEFORE INSERT ON payments_journalentry WHEN NEW.posted BEGIN
        SELECT RAISE(ABORT, 'ledger: a journal entry is inserted unposted, its postings added, then posted');
    END
    """,
    """
    CREATE TRIGGER IF NOT EXISTS ledger_entry_update BEFORE UPDATE ON payments_journalentry WHEN OLD.posted BEGIN
        SELECT RAISE(ABORT, 'ledger: a posted journal entry cannot be changed or deleted');
    END
    """,
    """
    CREATE TRIGGER IF NOT EXISTS ledger_entry_post BEFORE UPDATE ON payments_journalentry
    WHEN NOT OLD.posted AND NEW.posted AND (
        NOT EXISTS (SELECT 1 FROM payments_posting WHERE entry_id = NEW.id)
        OR EXISTS (SELECT 1 FROM payments_posting p JOIN payments_ledgeraccount a ON a.id = p.account_id
                   WHERE p.entry_id = NEW.id GROUP BY a.currency HAVING sum(p.amount_minor) <> 0))
    BEGIN
        SELECT RAISE(ABORT, 'ledger: a journal entry is posted only with postings that balance in every currency');
    END
    """,
    """
    CREATE TRIGGER IF NOT EXISTS ledger_entry_delete BEFORE DELETE ON payments_journalentry WHEN OLD.posted BEGIN
        SELECT RAISE(ABORT, 'ledger: a posted journal entry cannot be changed or deleted');
    END
    """,
    f"""
    CREATE TRIGGER IF NOT EXISTS ledger_posting_insert BEFORE INSERT ON payments_posting WHEN {_POSTED.format("NEW")} BEGIN
        SELECT RAISE(ABORT, 'ledger: the journal entry is posted: no posting can be added to it');
    END
    """,
    f"""
    CREATE TRIGGER IF NOT EXISTS ledger_posting_update BEFORE UPDATE ON payments_posting
    WHEN {_POSTED.format("OLD")} OR {_POSTED.format("NEW")} BEGIN
        SELECT RAISE(ABORT, 'ledger: the journal entry is posted: its postings cannot be changed or deleted');
    END
    """,
    f"""
    CREATE TRIGGER IF NOT EXISTS ledger_posting_delete BEFORE DELETE ON payments_posting WHEN {_POSTED.format("OLD")} BEGIN
        SELECT RAISE(ABORT, 'ledger: the journal entry is posted: its postings cannot be changed or deleted');
    END
    """,
    """
    CREATE TRIGGER IF NOT EXISTS ledger_account_update BEFORE UPDATE OF id, code, currency, partner_id ON payments_ledgeraccount
    WHEN EXISTS (SELECT 1 FROM payments_posting p JOIN payments_journalentry e ON e.id = p.entry_id
                 WHERE p.account_id = OLD.id AND e.posted)
    BEGIN
        SELECT RAISE(ABORT, 'ledger: the account has posted postings: its code, currency and partner are fixed');
    END
    """,
]

NAMES = ("ledger_entry_insert", "ledger_entry_update", "ledger_entry_post", "ledger_entry_delete", "ledger_posting_insert",
         "ledger_posting_update", "ledger_posting_delete", "ledger_account_update")

TABLES = ("payments_journalentry", "payments_posting", "payments_ledgeraccount")


def sqlite_ledger_triggers_drop(connection):
    if connection.vendor != "sqlite":
        return
    with connection.cursor() as cursor:
        for name in NAMES:
            cursor.execute(f"DROP TRIGGER IF EXISTS {name}")


def sqlite_ledger_triggers_install(connection):
    """Installs the triggers once the ledger tables have their `posted` column (the ledger_triggers migration has run);
    does nothing on another engine, or on a database migrated back before it."""
    if connection.vendor != "sqlite":
        return False
    with connection.cursor() as cursor:
        if not set(TABLES) <= set(connection.introspection.table_names(cursor)):
            return False
        columns = {c.name for c in connection.introspection.get_table_description(cursor, "payments_journalentry")}
        if "posted" not in columns:
            return False
        for statement in SQLITE:
            cursor.execute(statement)
    return True
