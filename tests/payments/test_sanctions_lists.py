"""Sanctions lists (payments/sanctions/): `manage.py sanctions_load` reads each published format into a new version of
its source and makes it current in one transaction; anything it cannot read is a CommandError and the previous
version stays in force; the accessor gives the matcher every current name and alias with its entry's data, and the
listed wallet addresses."""

import shutil
import threading
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import DatabaseError, IntegrityError, connection, transaction

from payments.models import SanctionsAddress, SanctionsEntry, SanctionsListVersion, SanctionsName
from payments.sanctions import lists
from payments.sanctions.load import sanctions_sample_load
from payments.sanctions.types import ListedName
from tests.helpers import staff_login

pytestmark = pytest.mark.django_db

DATA = Path(__file__).parent / "data" / "sanctions"
SAMPLE = Path(__file__).resolve().parents[2] / "payments" / "data" / "sanctions" / "sample.ftm.json"
FORMATS = {
    "ofac-csv": ["SDN.CSV", "ALT.CSV", "ADD.CSV"],
    "ofac-xml": ["sdn_advanced.xml"],
    "un-xml": ["un_consolidated.xml"],
    "eu-xml": ["eu_consolidated.xml"],
    "eu-csv": ["eu_consolidated.csv"],
    "opensanctions": ["opensanctions.ftm.json"],
}
SOURCES = {"ofac-csv": "ofac_sdn", "ofac-xml": "ofac_sdn", "un-xml": "un", "eu-xml": "eu", "eu-csv": "eu",
           "opensanctions": "opensanctions"}
# (entries, names incl. primary, aliases, wallet addresses, publication date) in each sample; the weak aliases the
# samples carry (OFAC LowQuality, UN "Low", FtM weakAlias) are not counted: they are not loaded.
COUNTS = {
    "ofac-csv": (12, 32, 20, 5, None),
    "ofac-xml": (12, 32, 20, 5, "2026-11-20"),
    "un-xml": (12, 32, 20, 0, "2026-11-21"),
    "eu-xml": (12, 32, 20, 0, "2026-11-22"),
    "eu-csv": (12, 32, 20, 0, "2026-11-22"),
    "opensanctions": (12, 32, 20, 5, "2026-11-19"),
}
# Ivan Petrovich Sanctionov's and Sergei Kozlov's ids in each sample.
IVAN = {"ofac-csv": "1001", "ofac-xml": "1001", "un-xml": "6901001", "eu-xml": "151001", "eu-csv": "151001",
        "opensanctions": "NK-sample-1001"}
KOZLOV = {"ofac-csv": "1004", "ofac-xml": "1004", "un-xml": "6901004", "eu-xml": "151004", "eu-csv": "151004",
          "opensanctions": "NK-sample-1004"}


def load(file_format, *paths, **options):
    out = StringIO()
    call_command("sanctions_load", file_format, *[str(p) for p in paths], stdout=out, **options)
    return out.getvalue()


def load_sample(file_format):
    return load(file_format, *[DATA / name for name in FORMATS[file_format]])


def current(source):
    return SanctionsListVersion.objects.get(source=source, is_current=True)


def snapshot():
    return (list(SanctionsListVersion.objects.order_by("pk").values_list("pk", "is_current")),
            SanctionsEntry.objects.count(), SanctionsName.objects.count(), SanctionsAddress.objects.count())


@pytest.mark.parametrize("file_format", FORMATS)
def test_each_format_loads_its_sample_with_the_right_counts(file_format):
    """Every format's sample loads as the current version of its source with its entries, names, aliases, wallet
    addresses and publication date counted; a listed person keeps DOB, nationality and Cyrillic alias; a date given
    as a year or month keeps that precision."""
    output = load_sample(file_format)
    entries, names, aliases, addresses, published = COUNTS[file_format]
    version = current(SOURCES[file_format])
    assert (version.entry_count, version.name_count, version.alias_count, version.address_count) == (
        entries, names, aliases, addresses)
    assert version.entries.count() == entries
    assert SanctionsName.objects.filter(entry__version=version).count() == names
    assert SanctionsName.objects.filter(entry__version=version, is_alias=True).count() == aliases
    assert SanctionsAddress.objects.filter(entry__version=version).count() == addresses
    assert str(version.published_on) == str(published) if published else version.published_on is None
    assert f"{entries} entries, {names} names ({aliases} aliases)" in output
    assert len(version.sha256) == 64 and version.file_format == file_format

    ivan = version.entries.get(source_id=IVAN[file_format])
    assert ivan.kind == "person"
    assert ivan.birth_dates == ["1970-01-01"]
    assert ivan.nationalities == ["RU"]
    ivan_names = set(ivan.names.values_list("name", "is_alias", "script"))
    assert ("Иван Петрович Санкционов", True, "Cyrillic") in ivan_names
    assert ("Ivan Sanctionov", True, "Latin") in ivan_names
    assert sum(1 for _, alias, _ in ivan_names if not alias) == 1

    kozlov = version.entries.get(source_id=KOZLOV[file_format])
    assert kozlov.birth_dates == ["1965-07-15", "1966"]  # an exact date and an alternative year
    if addresses:
        assert set(kozlov.addresses.values_list("currency", "normalised")) == {
            ("ETH", "0x2222222222222222222222222222222222222222"), ("USDT", "0x3333333333333333333333333333333333333333")}
    assert not SanctionsName.objects.filter(name__icontains="AIKA").exists()  # a weak alias is not loaded
    kyrgyz = SanctionsName.objects.filter(entry__version=version, name__contains="Өмүрбеков").get()
    assert kyrgyz.script == "Cyrillic" and kyrgyz.entry.nationalities == ["KG"]


def test_ofac_csv_reads_dob_precision_programs_and_postal_countries():
    """SDN.CSV's remarks give a DOB as a day, a month or a year, nationalities by country name, programs split on
    OFAC's "] [" separator; ADD.CSV gives the countries of postal addresses; a vessel and an entity keep their kind."""
    load_sample("ofac-csv")
    version = current("ofac_sdn")
    assert version.entries.get(source_id="1005").birth_dates == ["1979-04"]
    assert version.entries.get(source_id="1005").nationalities == ["KG", "RU"]
    assert version.entries.get(source_id="1003").birth_dates == ["1982"]
    assert version.entries.get(source_id="1004").programs == ["CYBER2", "RUSSIA-EO14024"]
    assert version.entries.get(source_id="1008").countries == ["KG"]
    assert version.entries.get(source_id="1011").kind == "vessel"
    assert version.entries.get(source_id="1009").kind == "entity"
    a7 = version.entries.get(source_id="1009").addresses.get()
    assert (a7.currency, a7.address) == ("TRX", "TLeVfrdym8RoJreJ23dAGyfJDygRtiWKBZ")  # the remark's final "." is not part of it


def test_ofac_xml_resolves_reference_values():
    """The advanced XML's ids resolve through ReferenceValueSets: party kinds through PartySubType/PartyType, a
    nationality given as a location (Locations → CountryValues' ISO2) or as a detail reference (a country name),
    programs from SanctionsEntries, a DOB DatePeriod spanning a whole month or year kept at that precision; a
    LowQuality alias is left out."""
    load_sample("ofac-xml")
    version = current("ofac_sdn")
    kinds = dict(version.entries.values_list("source_id", "kind"))
    assert (kinds["1001"], kinds["1008"], kinds["1011"]) == ("person", "entity", "vessel")
    ulan = version.entries.get(source_id="1005")
    assert ulan.nationalities == ["KG", "RU"] and ulan.birth_dates == ["1979-04"]
    assert version.entries.get(source_id="1003").birth_dates == ["1982"]
    assert version.entries.get(source_id="1004").programs == ["CYBER2", "RUSSIA-EO14024"]
    assert list(version.entries.get(source_id="1003").names.values_list("name", flat=True).order_by("pk")) == [
        "Aigul TOKTOGULOVA", "Айгүл Токтогулова", "Aigiul TOKTOGULOVA"]


def test_a_second_load_flips_current_and_keeps_the_old_version(tmp_path):
    """Loading a newer file makes it current and leaves the old version stored, not current; the accessor then reads
    only the new version's names. Loading the same files again changes nothing."""
    load_sample("opensanctions")
    first = current("opensanctions")
    newer = tmp_path / "newer.ftm.json"
    lines = (DATA / "opensanctions.ftm.json").read_text(encoding="utf-8").splitlines(keepends=True)
    newer.write_text("".join(line for line in lines if "NK-sample-1012" not in line), encoding="utf-8")
    before = lists.lists_fingerprint()

    load("opensanctions", newer)

    second = current("opensanctions")
    first.refresh_from_db()
    assert second.pk != first.pk and not first.is_current
    assert first.entries.count() == 12 and second.entries.count() == 11
    assert lists.lists_fingerprint() != before
    names = {n.name for n in lists.listed_names()}
    assert "Maria Ivanovna SANCTIONOVA" not in names and "Ivan Petrovich SANCTIONOV" in names
    assert {n.version_id for n in lists.listed_names()} == {second.pk}

    state = snapshot()
    assert "already the current version" in load("opensanctions", newer)
    assert snapshot() == state


@pytest.mark.django_db(transaction=True)
def test_concurrent_loads_of_one_source_run_one_after_the_other(tmp_path):
    """Two loads of the same source started together (the first version of that source, so there is no row to lock)
    both complete, one after the other: two versions, exactly one current, each with all its entries."""
    files = [DATA / "opensanctions.ftm.json", SAMPLE]
    start, errors = threading.Barrier(2), []

    def run(path):
        try:
            start.wait(timeout=30)
            load("opensanctions", path)
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(path,)) for path in files]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    versions = SanctionsListVersion.objects.filter(source="opensanctions")
    assert versions.count() == 2 and versions.filter(is_current=True).count() == 1
    assert sorted(v.entries.count() for v in versions) == [12, 12]


def test_sources_are_current_side_by_side():
    """Each source has its own current version: loading the UN list does not retire OFAC's; the fingerprint lists
    both."""
    load_sample("ofac-xml")
    load_sample("un-xml")
    assert {v.source for v in lists.current_versions()} == {"ofac_sdn", "un"}
    assert lists.lists_fingerprint() == tuple(sorted(v.pk for v in lists.current_versions()))


def test_the_database_refuses_two_current_versions_of_one_source():
    """The partial unique constraint holds even for code that bypasses the loader."""
    load_sample("un-xml")
    version = current("un")
    with pytest.raises(IntegrityError), transaction.atomic():
        SanctionsListVersion.objects.create(
            source="un", file_format="un-xml", sha256="0" * 64, entry_count=0, name_count=0, alias_count=0,
            address_count=0, is_current=True)
    assert current("un") == version


def _truncate(path, tmp_path, fraction=0.6):
    data = path.read_bytes()
    out = tmp_path / path.name
    out.write_bytes(data[: int(len(data) * fraction)])
    return out


def _copy_set(file_format, tmp_path):
    for name in FORMATS[file_format]:
        shutil.copy(DATA / name, tmp_path / name)
    return [tmp_path / name for name in FORMATS[file_format]]


BAD_FILES = {
    # name: (format, writer(tmp_path) -> paths, message in the error)
    "ofac-csv-truncated": ("ofac-csv", lambda t: [_truncate(DATA / "SDN.CSV", t), DATA / "ALT.CSV"], "SDN.CSV"),
    "ofac-csv-cut-mid-field": ("ofac-csv", lambda t: [_cut_before(DATA / "SDN.CSV", t, "Gender Male.\"\r\n1002")],
                               "not complete"),
    "ofac-csv-wrong-width": ("ofac-csv", lambda t: [_write(t, "SDN.CSV", '1,"A, B","individual","X"\r\n')],
                             "4 fields, expected 12"),
    "ofac-csv-header-row": ("ofac-csv", lambda t: [_write(t, "SDN.CSV", "ent_num,SDN_Name,SDN_Type,Program,Title,"
                                                          "Call_Sign,Vess_type,Tonnage,GRT,Vess_flag,Vess_owner,Remarks\r\n")],
                            "not a number"),
    "ofac-csv-alias-of-unknown-entry": ("ofac-csv", lambda t: [DATA / "SDN.CSV", _write(
        t, "ALT.CSV", '9999,1,"aka","NOBODY","-0-"\r\n')], "which SDN.CSV lacks"),
    "ofac-csv-no-sdn": ("ofac-csv", lambda t: [DATA / "ALT.CSV"], "needs SDN.CSV"),
    "ofac-csv-unnamed-file": ("ofac-csv", lambda t: [_write(t, "list.csv", "1\r\n")], "which is this"),
    "ofac-csv-cp1251": ("ofac-csv", lambda t: [_write(t, "SDN.CSV", (DATA / "ALT.CSV").read_text(encoding="utf-8"),
                                                      encoding="cp1251", errors="replace", widen=True)], "not utf-8"),
    "ofac-csv-empty": ("ofac-csv", lambda t: [_write(t, "SDN.CSV", "\x1a")], "no entries"),
    "ofac-xml-truncated": ("ofac-xml", lambda t: [_truncate(DATA / "sdn_advanced.xml", t)], "truncated XML"),
    "ofac-xml-not-xml": ("ofac-xml", lambda t: [_write(t, "sdn_advanced.xml", "<html><body>503</body>")],
                         "root element is <html>"),
    "ofac-xml-no-parties": ("ofac-xml", lambda t: [_write(t, "sdn_advanced.xml", "<Sanctions><DistinctParties/></Sanctions>")],
                            "no entries"),
    "ofac-xml-entity-expansion": ("ofac-xml", lambda t: [_write(t, "sdn_advanced.xml", '<?xml version="1.0"?><!DOCTYPE '
                                  'Sanctions [<!ENTITY a "aaaa">]><Sanctions>&a;</Sanctions>')], "refused XML"),
    "un-xml-truncated": ("un-xml", lambda t: [_truncate(DATA / "un_consolidated.xml", t)], "truncated XML"),
    "un-xml-given-eu": ("un-xml", lambda t: [DATA / "eu_consolidated.xml"], "root element is <export>"),
    "un-xml-latin1-bytes": ("un-xml", lambda t: [_write(t, "un.xml", (DATA / "un_consolidated.xml").read_text(
        encoding="utf-8").replace("Sergei", "Sergéi"), encoding="latin-1", errors="replace")], "malformed"),
    "eu-xml-truncated": ("eu-xml", lambda t: [_truncate(DATA / "eu_consolidated.xml", t)], "truncated XML"),
    "eu-xml-empty-export": ("eu-xml", lambda t: [_write(t, "eu.xml", '<export xmlns="http://eu.europa.ec/fpi/fsd/export"/>')],
                            "no entries"),
    "eu-xml-two-files": ("eu-xml", lambda t: [DATA / "eu_consolidated.xml", DATA / "eu_consolidated.xml"], "one file"),
    "eu-csv-truncated": ("eu-csv", lambda t: [_truncate(DATA / "eu_consolidated.csv", t)], "eu_consolidated.csv"),
    "eu-csv-short-row": ("eu-csv", lambda t: [_write(t, "eu.csv", "Entity_LogicalId;NameAlias_WholeName;X\r\n1;A B\r\n")],
                         "2 fields, expected 3"),
    "eu-csv-no-header": ("eu-csv", lambda t: [_write(t, "eu.csv", "1;A B\r\n")], "header lacks"),
    "eu-csv-given-ofac": ("eu-csv", lambda t: [DATA / "SDN.CSV"], "header lacks"),
    "eu-csv-header-only": ("eu-csv", lambda t: [_write(t, "eu.csv", "Entity_LogicalId;NameAlias_WholeName\r\n")],
                           "no entries"),
    "opensanctions-truncated": ("opensanctions", lambda t: [_truncate(DATA / "opensanctions.ftm.json", t)],
                                "malformed JSON"),
    "opensanctions-not-entities": ("opensanctions", lambda t: [_write(t, "x.json", '[1, 2, 3]\n')],
                                   "not a FollowTheMoney entity"),
    "opensanctions-empty": ("opensanctions", lambda t: [_write(t, "x.json", "\n")], "no entries"),
    "opensanctions-cp1251": ("opensanctions", lambda t: [_write(t, "x.json", (DATA / "opensanctions.ftm.json").read_text(
        encoding="utf-8"), encoding="cp1251", errors="replace")], "not utf-8"),
    "missing-file": ("un-xml", lambda t: [t / "nowhere.xml"], "no such file"),
    "a-directory": ("opensanctions", lambda t: [t], "is a directory"),
}


def _write(tmp_path, name, text, encoding="utf-8", errors="strict", widen=False):
    path = tmp_path / name
    if widen:  # make the ALT.CSV rows 12 fields wide, so only the encoding is wrong
        text = "".join(line.rstrip("\r\n\x1a") + ',"-0-","-0-","-0-","-0-","-0-","-0-","-0-"\r\n'
                       for line in text.splitlines() if line.strip("\x1a"))
    path.write_bytes(text.encode(encoding, errors=errors))
    return path


def _cut_before(path, tmp_path, marker):
    """The file cut just inside its first row's last field (a truncated download that ends mid-line)."""
    data = path.read_bytes()
    out = tmp_path / path.name
    out.write_bytes(data[: data.index(marker.encode()) + 5])
    return out


@pytest.mark.parametrize("case", BAD_FILES)
def test_a_bad_file_changes_nothing_and_says_why(case, tmp_path):
    """Each broken, truncated, empty, mis-encoded, unsafe or wrong file is a CommandError naming the problem; the
    version loaded before stays current and no row is added."""
    file_format, make, message = BAD_FILES[case]
    load_sample(file_format)
    previous = current(SOURCES[file_format])
    state = snapshot()
    with pytest.raises(CommandError, match="nothing loaded; the previous version stays in force") as error:
        load(file_format, *make(tmp_path))
    assert message.lower() in str(error.value).lower()
    assert snapshot() == state
    assert current(SOURCES[file_format]) == previous


def test_unknown_format_is_refused():
    """A format the loader does not know is refused with the list of those it does."""
    with pytest.raises(CommandError, match="unknown format 'ofac-pdf'; one of: ofac-csv, ofac-xml, un-xml, eu-xml"):
        load("ofac-pdf", DATA / "SDN.CSV")
    assert not SanctionsListVersion.objects.exists()


def test_a_failure_while_storing_leaves_the_previous_version(monkeypatch):
    """A database error after the version and its entries were inserted rolls the whole load back: the previous
    version is current and no partial rows remain."""
    load_sample("opensanctions")
    state = snapshot()

    def fail(*args, **kwargs):
        raise DatabaseError("disk full (injected)")

    monkeypatch.setattr(SanctionsAddress.objects, "bulk_create", fail)
    with pytest.raises(DatabaseError, match="injected"):
        load("opensanctions", SAMPLE)  # a different file: it would become current
    assert snapshot() == state


def test_accessor_gives_names_and_aliases_with_their_entry_data():
    """listed_names yields every current name and alias as a ListedName carrying the entry's id, source and its id,
    primary name, kind, birth dates and nationalities."""
    load_sample("ofac-xml")
    load_sample("eu-xml")
    names = list(lists.listed_names())
    assert len(names) == 64 and all(isinstance(n, ListedName) for n in names)
    ofac = current("ofac_sdn")
    alias = next(n for n in names if n.name == "Айгүл Токтогулова")
    entry = SanctionsEntry.objects.get(version=ofac, source_id="1003")
    assert alias == ListedName(entry_id=entry.pk, version_id=ofac.pk, source="ofac_sdn", source_id="1003",
                               name="Айгүл Токтогулова", is_alias=True, primary_name="Aigul TOKTOGULOVA", kind="person",
                               birth_dates=("1982",), nationalities=("KG",))
    bank = [n for n in names if n.source == "eu" and n.primary_name == "KEREMET BANK"]
    assert {(n.name, n.is_alias) for n in bank} == {("KEREMET BANK", False), ("Керемет Банк", True),
                                                   ("OJSC KEREMET BANK", True)}
    assert all(n.kind == "entity" and n.nationalities == ("KG",) for n in bank)


def test_digital_currency_addresses_are_found_case_insensitively():
    """The lists' wallet addresses are in listed_addresses (lower-cased) and denied_address finds them written in any
    letter case; A7A5's contracts are denied from the configured denylist with no list loaded; a clean address is
    not."""
    assert lists.denied_address("0x6FA0BE17E4BEA2FCFA22EF89BF8AC9AAB0AB0FC9") == "on the wallet denylist"
    assert lists.denied_address("TLeVfrdym8RoJreJ23dAGyfJDygRtiWKBZ") == "on the wallet denylist"
    assert lists.denied_address("0x2222222222222222222222222222222222222222") is None
    load_sample("ofac-xml")
    addresses = lists.listed_addresses()
    kozlov = SanctionsEntry.objects.get(version=current("ofac_sdn"), source_id="1004")
    assert addresses["0x2222222222222222222222222222222222222222"] == (kozlov.pk, "ofac_sdn", "Sergei Viktorovich KOZLOV")
    assert addresses["tlevfrdym8rojrej23dagyfjdygrtiwkbz"][2] == "A7 LLC"
    assert len(addresses) == 5
    assert lists.denied_address(" 0x4444444444444444444444444444444444444444 ") == "listed by ofac_sdn for GRINEX"
    assert lists.denied_address("0x5555555555555555555555555555555555555555") is None
    assert lists.denied_address("") is None


def test_sample_for_make_run_loads_under_the_sample_source():
    """devsetup's sample (OpenSanctions format) loads as source "sample" with the old sample's names and the burn
    address, once (devsetup runs at every `make run`); it can sit beside a real OpenSanctions load."""
    assert sanctions_sample_load()[1] is True
    assert sanctions_sample_load()[1] is False
    load_sample("opensanctions")
    assert SanctionsListVersion.objects.filter(source="sample").count() == 1
    version = current("sample")
    assert (version.entry_count, version.address_count) == (12, 6)
    names = {n.name for n in lists.listed_names() if n.source == "sample"}
    assert {"Ivan Sanctionov", "Иван Петрович Санкционов", "KEREMET BANK", "Керемет Банк", "A7 LLC"} <= names
    assert lists.denied_address("0x000000000000000000000000000000000000dead") == (
        "listed by sample for Ivan Petrovich SANCTIONOV")


def test_new_version_hook_runs_after_commit(django_capture_on_commit_callbacks, caplog):
    """on_new_version (re-screening hooks in there) runs once after the load commits, with the new version."""
    with caplog.at_level("INFO", logger="payments.sanctions.lists"), \
            django_capture_on_commit_callbacks(execute=False) as callbacks:
        load_sample("un-xml")
    assert len(callbacks) == 1 and "now current" not in caplog.text
    callbacks[0]()
    assert f"sanctions list version now current source=un version={current('un').pk}" in caplog.text


def test_admin_lists_versions_and_finds_entries_by_any_name(client):
    """Admin shows the versions and finds an entry by a Cyrillic alias or a wallet address typed in another letter case; nothing can
    be added, changed or deleted there."""
    load_sample("ofac-xml")
    user = get_user_model().objects.create_superuser("officer", "o@example.com", "a-long-password-123")
    officer = staff_login(client, user)
    response = officer.get("/admin/payments/sanctionslistversion/")
    assert response.status_code == 200 and b"ofac-xml" in response.content
    found = officer.get("/admin/payments/sanctionsentry/", {"q": "Өмүрбеков"})
    assert list(found.context["cl"].result_list) == [SanctionsEntry.objects.get(source_id="1007")]
    found = officer.get("/admin/payments/sanctionsentry/", {"q": "TLEVFRDYM8ROJREJ23DAGYFJDYGRTIWKBZ"})
    assert [e.primary_name for e in found.context["cl"].result_list] == ["A7 LLC"]
    entry = SanctionsEntry.objects.get(source_id="1007")
    assert officer.get("/admin/payments/sanctionsentry/add/").status_code == 403
    assert officer.post(f"/admin/payments/sanctionsentry/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    assert SanctionsEntry.objects.filter(pk=entry.pk).exists()


def test_publication_date_and_loader_can_be_given():
    """--published dates a list whose files do not say (OFAC's CSV); --by records who loaded it; a date in another
    form is refused before anything is read."""
    with pytest.raises(CommandError, match="YYYY-MM-DD"):
        load("ofac-csv", DATA / "SDN.CSV", published="20.11.2026")
    assert not SanctionsListVersion.objects.exists()
    load("ofac-csv", DATA / "SDN.CSV", published="2026-11-20", by="officer@tulpar")
    version = current("ofac_sdn")
    assert (str(version.published_on), version.loaded_by, version.alias_count) == ("2026-11-20", "officer@tulpar", 0)
