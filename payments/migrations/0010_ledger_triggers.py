"""The database keeps the books: a journal entry is inserted unposted, its postings are added, then it is marked
posted; marking it posted is refused unless it has postings and they sum to zero in every currency, and once posted
the entry, its postings and the identity of the accounts they name can no longer change (docs/ledger.md,
"Enforcement"). On PostgreSQL this migration installs the triggers.

One design on both engines: SQLite (`make run`) has no deferred triggers, so a deferred constraint trigger on
PostgreSQL would mean two designs to test and explain; the posted flag gives the same rule, checked at the same
moment, on both. Every refusal says "ledger:" and is an integrity error on both (SQLSTATE 23000; SQLite's
RAISE(ABORT) is a constraint error).

On SQLite the same rules are row-level triggers that `manage.py migrate` installs after every run
(payments/ledger_triggers.py: SQLite rebuilds a table to alter it, which its triggers would refuse or lose).
"""

from django.db import migrations, models

# PostgreSQL: statement-level triggers over transition tables, so a batch (ledger_post_payouts: hundreds of entries,
# twice as many postings) is checked by a few queries per statement rather than a few per row.
POSTGRESQL = [
    """
    CREATE OR REPLACE FUNCTION ledger_entry_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF EXISTS (SELECT 1 FROM inserted WHERE posted) THEN
            RAISE EXCEPTION 'ledger: a journal entry is inserted unposted, its postings added, then posted'
                USING ERRCODE = '23000';
        END IF;
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER ledger_entry_inserted AFTER INSERT ON payments_journalentry REFERENCING NEW TABLE AS inserted
        FOR EACH STATEMENT EXECUTE FUNCTION ledger_entry_inserted()
    """,
    """
    CREATE OR REPLACE FUNCTION ledger_entry_updated() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        bad text;
    BEGIN
        SELECT string_agg(id::text, ', ') INTO bad FROM before_rows WHERE posted;
        IF bad IS NOT NULL THEN
            RAISE EXCEPTION 'ledger: journal entry % is posted: it cannot be changed or deleted', bad
                USING ERRCODE = '23000';
        END IF;
        SELECT string_agg(id::text, ', ') INTO bad FROM after_rows n
            WHERE n.posted AND NOT EXISTS (SELECT 1 FROM payments_posting p WHERE p.entry_id = n.id);
        IF bad IS NOT NULL THEN
            RAISE EXCEPTION 'ledger: journal entry % has no postings', bad USING ERRCODE = '23000';
        END IF;
        SELECT string_agg(entry_id::text || ' in ' || currency, ', ') INTO bad FROM (
            SELECT p.entry_id, a.currency FROM after_rows n
            JOIN payments_posting p ON p.entry_id = n.id JOIN payments_ledgeraccount a ON a.id = p.account_id
            WHERE n.posted GROUP BY p.entry_id, a.currency HAVING sum(p.amount_minor) <> 0) AS c;
        IF bad IS NOT NULL THEN
            RAISE EXCEPTION 'ledger: journal entry % does not balance', bad USING ERRCODE = '23000';
        END IF;
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER ledger_entry_updated AFTER UPDATE ON payments_journalentry
        REFERENCING OLD TABLE AS before_rows NEW TABLE AS after_rows
        FOR EACH STATEMENT EXECUTE FUNCTION ledger_entry_updated()
    """,
    """
    CREATE OR REPLACE FUNCTION ledger_entry_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF EXISTS (SELECT 1 FROM deleted WHERE posted) THEN
            RAISE EXCEPTION 'ledger: a posted journal entry cannot be changed or deleted' USING ERRCODE = '23000';
        END IF;
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER ledger_entry_deleted AFTER DELETE ON payments_journalentry REFERENCING OLD TABLE AS deleted
        FOR EACH STATEMENT EXECUTE FUNCTION ledger_entry_deleted()
    """,
    # The entries the statement's postings belong to are locked FOR SHARE first: a posting written while another
    # transaction posts its entry waits for that transaction and then sees the entry posted (and the posting
    # transaction, waiting on this lock, then counts the new posting in its sum).
    """
    CREATE OR REPLACE FUNCTION ledger_postings_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        touched bigint[];
        bad text;
    BEGIN
        IF TG_OP = 'INSERT' THEN
            SELECT array_agg(DISTINCT entry_id) INTO touched FROM after_rows;
        ELSIF TG_OP = 'DELETE' THEN
            SELECT array_agg(DISTINCT entry_id) INTO touched FROM before_rows;
        ELSE
            SELECT array_agg(DISTINCT entry_id) INTO touched FROM (
                SELECT entry_id FROM before_rows UNION SELECT entry_id FROM after_rows) AS t;
        END IF;
        PERFORM 1 FROM payments_journalentry WHERE id = ANY (touched) ORDER BY id FOR SHARE;
        SELECT string_agg(id::text, ', ') INTO bad FROM payments_journalentry WHERE id = ANY (touched) AND posted;
        IF bad IS NOT NULL THEN
            RAISE EXCEPTION 'ledger: journal entry % is posted: its postings cannot be added, changed or deleted',
                bad USING ERRCODE = '23000';
        END IF;
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER ledger_postings_inserted AFTER INSERT ON payments_posting REFERENCING NEW TABLE AS after_rows
        FOR EACH STATEMENT EXECUTE FUNCTION ledger_postings_changed()
    """,
    """
    CREATE TRIGGER ledger_postings_updated AFTER UPDATE ON payments_posting
        REFERENCING OLD TABLE AS before_rows NEW TABLE AS after_rows
        FOR EACH STATEMENT EXECUTE FUNCTION ledger_postings_changed()
    """,
    """
    CREATE TRIGGER ledger_postings_deleted AFTER DELETE ON payments_posting REFERENCING OLD TABLE AS before_rows
        FOR EACH STATEMENT EXECUTE FUNCTION ledger_postings_changed()
    """,
    """
    CREATE OR REPLACE FUNCTION ledger_account_guard() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF EXISTS (SELECT 1 FROM payments_posting p JOIN payments_journalentry e ON e.id = p.entry_id
                   WHERE p.account_id = OLD.id AND e.posted) THEN
            RAISE EXCEPTION 'ledger: account % has posted postings: its code, currency and partner are fixed',
                OLD.id USING ERRCODE = '23000';
        END IF;
        RETURN NEW;
    END $$
    """,
    """
    CREATE TRIGGER ledger_account_guard BEFORE UPDATE OF id, code, currency, partner_id ON payments_ledgeraccount
        FOR EACH ROW EXECUTE FUNCTION ledger_account_guard()
    """,
]

POSTGRESQL_REVERSE = [
    "DROP TRIGGER IF EXISTS ledger_account_guard ON payments_ledgeraccount",
    "DROP TRIGGER IF EXISTS ledger_postings_inserted ON payments_posting",
    "DROP TRIGGER IF EXISTS ledger_postings_updated ON payments_posting",
    "DROP TRIGGER IF EXISTS ledger_postings_deleted ON payments_posting",
    "DROP TRIGGER IF EXISTS ledger_entry_inserted ON payments_journalentry",
    "DROP TRIGGER IF EXISTS ledger_entry_updated ON payments_journalentry",
    "DROP TRIGGER IF EXISTS ledger_entry_deleted ON payments_journalentry",
    "DROP FUNCTION IF EXISTS ledger_account_guard()",
    "DROP FUNCTION IF EXISTS ledger_postings_changed()",
    "DROP FUNCTION IF EXISTS ledger_entry_inserted()",
    "DROP FUNCTION IF EXISTS ledger_entry_updated()",
    "DROP FUNCTION IF EXISTS ledger_entry_deleted()",
]

def _run(statements):
    def run(apps, schema_editor):
        vendor = schema_editor.connection.vendor
        if vendor == "sqlite":
            return  # installed after every migrate (payments/ledger_triggers.py says why)
        if vendor != "postgresql":
            raise RuntimeError(f"The ledger's triggers are written for PostgreSQL and SQLite, not {vendor}.")
        for statement in statements:
            schema_editor.execute(statement, params=None)  # None: '%' is not a placeholder
    return run


class Migration(migrations.Migration):

    dependencies = [
        ('payments', '0009_pricing'),
    ]

    operations = [
        migrations.AddField(
            model_name='journalentry',
            name='posted',
            field=models.BooleanField(db_default=False, default=False),
        ),
        # Every entry written before this migration was balanced by the service and is part of the books.
        migrations.RunSQL("UPDATE payments_journalentry SET posted = TRUE", migrations.RunSQL.noop),
        migrations.RunPython(_run(POSTGRESQL), _run(POSTGRESQL_REVERSE)),
    ]
