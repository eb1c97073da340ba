"""The database refuses to keep unbalanced or altered books, whoever writes the SQL: raw statements against the
journal are refused by PostgreSQL (the test database) and by SQLite (what `make run` uses: a throwaway database
migrated from scratch, so these tests pin the triggers the real migrations leave behind)."""

import shutil

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connections, transaction

from payments.errors import LedgerImbalance
from payments.models import JournalEntry, Posting
from payments.services import ledger
from payments.services.ledger import account_balance, ledger_post

SQLITE_ALIAS = "sqlite_tamper"


def _add_sqlite_alias(path):
    connections.settings[SQLITE_ALIAS] = connections.configure_settings(
        {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(path)}})["default"]


def _drop_sqlite_alias():
    connections[SQLITE_ALIAS].close()
    del connections[SQLITE_ALIAS]
    del connections.settings[SQLITE_ALIAS]


@pytest.fixture(scope="module")
def migrated_sqlite(tmp_path_factory, django_db_blocker):
    """A SQLite file with every migration applied, made once; each test works on its own copy."""
    path = tmp_path_factory.mktemp("sqlite") / "migrated.sqlite3"
    with django_db_blocker.unblock():
        _add_sqlite_alias(path)
        try:
            call_command("migrate", database=SQLITE_ALIAS, verbosity=0, interactive=False)
        finally:
            _drop_sqlite_alias()
    return path


class Books:
    """Raw SQL against one database's journal tables, with the same statements on both engines."""

    def __init__(self, alias):
        self.alias = alias

    def run(self, sql, params=()):
        with connections[self.alias].cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall() if cursor.description else None

    def account(self, code, currency):
        self.run("INSERT INTO payments_ledgeraccount (code, currency) VALUES (%s, %s)", [code, currency])
        return self.run("SELECT id FROM payments_ledgeraccount WHERE code = %s AND currency = %s AND partner_id IS NULL",
                        [code, currency])[0][0]

    def entry(self, reference, *, posted=False):
        self.run("INSERT INTO payments_journalentry (kind, reference, memo, created_at, posted) "
                 "VALUES ('tamper', %s, '', CURRENT_TIMESTAMP, " + ("TRUE" if posted else "FALSE") + ")", [reference])
        return self.run("SELECT id FROM payments_journalentry WHERE reference = %s", [reference])[0][0]

    def posting(self, entry_id, account_id, amount):
        self.run("INSERT INTO payments_posting (entry_id, account_id, amount_minor) VALUES (%s, %s, %s)",
                 [entry_id, account_id, amount])

    def post(self, entry_id):
        self.run("UPDATE payments_journalentry SET posted = TRUE WHERE id = %s", [entry_id])

    def refused(self, sql, params=()):
        """Run `sql` expecting the ledger's refusal; the database is left as it was."""
        with pytest.raises(IntegrityError, match="ledger:"), transaction.atomic(using=self.alias):
            self.run(sql, params)

    def posted_entry(self):
        """A balanced entry, posted through the protocol: card_clearing +100 RUB, fee_revenue −100 RUB."""
        self.card, self.fee, self.kgs = (self.account("card_clearing", "RUB"), self.account("fee_revenue", "RUB"),
                                         self.account("fx_position", "KGS"))
        entry_id = self.entry("tamper:posted")
        self.posting(entry_id, self.card, 100)
        self.posting(entry_id, self.fee, -100)
        self.post(entry_id)
        return entry_id

    def books(self):
        return self.run("SELECT e.id, e.posted, p.account_id, p.amount_minor FROM payments_journalentry e "
                        "JOIN payments_posting p ON p.entry_id = e.id ORDER BY p.id")


@pytest.fixture(params=[pytest.param("postgresql", marks=pytest.mark.django_db), "sqlite"])
def books(request, tmp_path, django_db_blocker):
    """The same raw-SQL helper on the PostgreSQL test database (in the test's transaction), or on a fresh copy of the
    migrated SQLite file (outside pytest-django's test case, which allows no second database)."""
    if request.param == "postgresql":
        assert connections["default"].vendor == "postgresql"
        yield Books("default")
        return
    path = tmp_path / "tamper.sqlite3"
    shutil.copy(request.getfixturevalue("migrated_sqlite"), path)
    with django_db_blocker.unblock():
        _add_sqlite_alias(path)
        try:
            assert connections[SQLITE_ALIAS].vendor == "sqlite"
            yield Books(SQLITE_ALIAS)
        finally:
            _drop_sqlite_alias()


def test_balanced_entry_posts_through_raw_sql(books):
    """The protocol itself works in plain SQL (entry unposted, postings, posted) and a draft may still be edited:
    the refusals below are about balance and immutability, not about writing SQL at all."""
    entry_id = books.posted_entry()
    draft = books.entry("tamper:draft")
    books.posting(draft, books.card, 7)
    books.run("UPDATE payments_posting SET amount_minor = 8 WHERE entry_id = %s", [draft])
    books.run("DELETE FROM payments_posting WHERE entry_id = %s", [draft])
    books.run("DELETE FROM payments_journalentry WHERE id = %s", [draft])
    assert books.books() == [(entry_id, True, books.card, 100), (entry_id, True, books.fee, -100)]


@pytest.mark.parametrize("lines", [
    [("card", 100), ("fee", -99)],
    [("card", 100)],
    [("card", 100), ("kgs", -100)],  # zero in sum, not per currency
    [],
], ids=["off-by-one", "one-sided", "cross-currency", "no-postings"])
def test_unbalanced_entry_cannot_be_posted(books, lines):
    """An entry whose postings do not sum to zero in every currency (or that has none) is refused when it is
    marked posted, and stays a draft."""
    books.posted_entry()
    entry_id = books.entry("tamper:unbalanced")
    for name, amount in lines:
        books.posting(entry_id, getattr(books, name), amount)
    books.refused("UPDATE payments_journalentry SET posted = TRUE WHERE id = %s", [entry_id])
    assert books.run("SELECT posted FROM payments_journalentry WHERE id = %s", [entry_id]) == [(False,)]


def test_entry_cannot_be_inserted_already_posted(books):
    """An entry inserted as posted (skipping the balance check) is refused."""
    books.refused("INSERT INTO payments_journalentry (kind, reference, memo, created_at, posted) "
                  "VALUES ('tamper', 'tamper:direct', '', CURRENT_TIMESTAMP, TRUE)")
    assert books.run("SELECT count(*) FROM payments_journalentry WHERE reference = 'tamper:direct'") == [(0,)]


@pytest.mark.parametrize("sql", [
    "UPDATE payments_posting SET amount_minor = 1000000 WHERE entry_id = %s",
    "UPDATE payments_posting SET amount_minor = -amount_minor WHERE entry_id = %s",
    "DELETE FROM payments_posting WHERE entry_id = %s",
    "UPDATE payments_journalentry SET memo = 'edited' WHERE id = %s",
    "UPDATE payments_journalentry SET posted = FALSE WHERE id = %s",
    "DELETE FROM payments_journalentry WHERE id = %s",
], ids=["posting-amount", "posting-both-sides", "posting-delete", "entry-memo", "entry-unpost", "entry-delete"])
def test_posted_entry_and_its_postings_cannot_change(books, sql):
    """Any UPDATE or DELETE of a posted entry or of its postings is refused, even one that keeps it balanced."""
    entry_id = books.posted_entry()
    before = books.books()
    books.refused(sql, [entry_id])
    assert books.books() == before


def test_no_posting_can_be_added_to_a_posted_entry(books):
    """Inserting a posting into a posted entry, or moving a draft's posting into it, is refused."""
    entry_id = books.posted_entry()
    before = books.books()
    books.refused("INSERT INTO payments_posting (entry_id, account_id, amount_minor) VALUES (%s, %s, 5)",
                  [entry_id, books.card])
    draft = books.entry("tamper:draft")
    books.posting(draft, books.card, 5)
    books.refused("UPDATE payments_posting SET entry_id = %s WHERE entry_id = %s", [entry_id, draft])
    assert books.books()[:2] == before


def test_account_of_posted_postings_keeps_its_code_and_currency(books):
    """An account named by posted postings cannot be renamed or moved to another currency (that would rewrite the
    books without touching a posting); an unused account can."""
    books.posted_entry()
    books.refused("UPDATE payments_ledgeraccount SET currency = 'KGS' WHERE id = %s", [books.card])
    books.refused("UPDATE payments_ledgeraccount SET code = 'fee_revenue' WHERE id = %s", [books.card])
    books.run("UPDATE payments_ledgeraccount SET code = 'card_clearing' WHERE id = %s", [books.kgs])
    assert books.run("SELECT code, currency FROM payments_ledgeraccount WHERE id = %s", [books.card]) == [
        ("card_clearing", "RUB")]


@pytest.mark.django_db
def test_database_refuses_what_the_service_check_would_miss(monkeypatch, pricing):
    """With the service's own balance check switched off (a bug), ledger_post still cannot post an unbalanced
    entry: the database refuses it, the error is raised (not taken for a duplicate) and nothing is written."""
    monkeypatch.setattr(ledger, "_check_balanced", lambda kind, lines: None)
    with pytest.raises(IntegrityError, match="ledger:"):
        ledger_post(kind="test", reference="bug:1", lines=[("card_clearing", "RUB", 100), ("fee_revenue", "RUB", -99)])
    assert not JournalEntry.objects.exists() and not Posting.objects.exists()
    monkeypatch.undo()
    with pytest.raises(LedgerImbalance):
        ledger_post(kind="test", reference="bug:1", lines=[("card_clearing", "RUB", 100), ("fee_revenue", "RUB", -99)])


@pytest.mark.django_db
def test_balances_count_posted_entries_only(pricing):
    """A draft entry (inserted, never posted) moves no balance; the posted one does."""
    entry = ledger_post(kind="test", reference="ok:1", lines=[("card_clearing", "RUB", 100), ("fee_revenue", "RUB", -100)])
    draft = JournalEntry.objects.create(kind="test", reference="draft:1")
    Posting.objects.create(entry=draft, account=entry.postings.get(amount_minor=100).account, amount_minor=5000)
    assert account_balance("card_clearing", "RUB") == 100


@pytest.mark.django_db(transaction=True)
def test_posting_racing_the_posting_of_its_entry_is_refused_on_postgresql():
    """PostgreSQL: a posting inserted into an entry while another transaction is marking it posted waits for that
    transaction, then is refused; the posted entry keeps exactly its balanced postings."""
    import threading
    import time

    books = Books("default")
    books.card, books.fee = books.account("card_clearing", "RUB"), books.account("fee_revenue", "RUB")
    entry_id = books.entry("tamper:race")
    books.posting(entry_id, books.card, 100)
    books.posting(entry_id, books.fee, -100)
    db = connections["default"]
    poster, writer = (db.get_new_connection(db.get_connection_params()) for _ in range(2))
    try:
        poster.execute("UPDATE payments_journalentry SET posted = TRUE WHERE id = %s", [entry_id])  # not committed
        writer_pid = writer.execute("SELECT pg_backend_pid()").fetchone()[0]
        outcome = {}

        def write():
            try:
                writer.execute("INSERT INTO payments_posting (entry_id, account_id, amount_minor) VALUES (%s, %s, 5)",
                               [entry_id, books.card])
                writer.commit()
                outcome["result"] = "inserted"
            except Exception as exc:  # noqa: BLE001 - the refusal is the outcome under test
                writer.rollback()
                outcome["result"] = str(exc)

        thread = threading.Thread(target=write)
        thread.start()
        deadline = time.monotonic() + 30
        while not books.run("SELECT 1 FROM pg_stat_activity WHERE pid = %s AND wait_event_type = 'Lock'", [writer_pid]):
            assert time.monotonic() < deadline and thread.is_alive(), outcome
            time.sleep(0.01)
        poster.commit()
        thread.join(30)
    finally:
        poster.close()
        writer.close()
    assert outcome["result"].startswith("ledger:"), outcome
    assert books.books() == [(entry_id, True, books.card, 100), (entry_id, True, books.fee, -100)]


def test_sqlite_migrations_rebuild_ledger_tables_and_the_triggers_come_back(tmp_path, django_db_blocker,
                                                                           migrated_sqlite):
    """SQLite: migrating back before the ledger triggers' migration (which rebuilds payments_journalentry without
    its `posted` column, under triggers that name it) and forward again works; the triggers are gone while the column
    is, and in place again afterwards, refusing a change to a posted posting."""
    import importlib
    from pathlib import Path

    import payments.migrations
    from payments.ledger_triggers import NAMES

    name = next(Path(payments.migrations.__file__).parent.glob("*_ledger_triggers.py")).stem
    (_app, previous), = importlib.import_module(f"payments.migrations.{name}").Migration.dependencies
    path = tmp_path / "remigrated.sqlite3"
    shutil.copy(migrated_sqlite, path)
    with django_db_blocker.unblock():
        _add_sqlite_alias(path)
        try:
            books = Books(SQLITE_ALIAS)
            installed = "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'ledger_%%' ORDER BY name"
            assert [n for (n,) in books.run(installed)] == sorted(NAMES)
            call_command("migrate", "payments", previous, database=SQLITE_ALIAS, verbosity=0, interactive=False)
            assert books.run(installed) == []
            call_command("migrate", database=SQLITE_ALIAS, verbosity=0, interactive=False)
            assert [n for (n,) in books.run(installed)] == sorted(NAMES)
            entry_id = books.posted_entry()
            books.refused("UPDATE payments_posting SET amount_minor = 1 WHERE entry_id = %s", [entry_id])
        finally:
            _drop_sqlite_alias()
