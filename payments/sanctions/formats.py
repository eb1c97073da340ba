"""Parsers for the published sanctions files. Each reads the whole input into a ParsedList before anything is
stored, and raises SanctionsListInvalid (with the file and, where it helps, the line) on anything it cannot read:
malformed or truncated XML, CSV or JSON, bytes that are not in the expected encoding, a file of another format, a
file without entries. Every XML parse goes through defusedxml (no entities, no external references).

Formats (docs/compliance.md, "Lists"):
- ofac-csv: OFAC's legacy SDN.CSV (+ ALT.CSV aliases, ADD.CSV postal addresses); no header; `-0-` is empty; DOB,
  nationality and "Digital Currency Address - XXX" are inside SDN.CSV's remarks.
- ofac-xml: OFAC's advanced XML (sdn_advanced.xml), features resolved through its ReferenceValueSets.
- un-xml: the UN Security Council consolidated list.
- eu-xml, eu-csv: the EU consolidated financial sanctions list (FSF export; its CSV 1.1 read by column name).
- opensanctions: FollowTheMoney entities, one JSON object per line (OpenSanctions' entities.ftm.json).
"""

import calendar
import csv
import datetime
import functools
import io
import json
import re
from pathlib import Path
from xml.etree.ElementTree import ParseError

import icu
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import iterparse

from payments.errors import SanctionsListInvalid
from payments.sanctions.types import ParsedEntry, ParsedList

EMPTY = "-0-"
MONTHS = {m.lower(): i for i, m in enumerate(calendar.month_abbr) if m}


# --- shared helpers -----------------------------------------------------------------------------------------------

def read_text(path, encoding="utf-8"):
    data = read_bytes(path)
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise SanctionsListInvalid(f"{path}: not {encoding} text (byte {exc.start}); give the file's encoding with "
                                   "--encoding") from exc
    except LookupError as exc:
        raise SanctionsListInvalid(f"unknown encoding {encoding!r}") from exc
    return text.removeprefix("\ufeff")


def read_bytes(path):
    path = Path(path)
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise SanctionsListInvalid(f"{path}: no such file") from exc
    except IsADirectoryError as exc:
        raise SanctionsListInvalid(f"{path}: is a directory, not a list file") from exc
    except OSError as exc:
        raise SanctionsListInvalid(f"{path}: cannot be read ({exc.strerror})") from exc


def _local(tag):
    return tag.rsplit("}", 1)[-1]


def _xml_records(path, root_name, record_tags):
    """Yield (tag, element) at the end of each element named in record_tags (namespaces ignored); the caller reads
    the element, which is cleared afterwards. The root must be `root_name`. Malformed, truncated or unsafe XML
    raises SanctionsListInvalid."""
    path = Path(path)
    if not path.is_file():
        read_bytes(path)  # raises the clear error
    root_seen = False
    try:
        for event, elem in iterparse(str(path), events=("start", "end"), forbid_dtd=True):
            tag = _local(elem.tag)
            if event == "start":
                if not root_seen:
                    root_seen = True
                    if tag != root_name:
                        raise SanctionsListInvalid(f"{path}: the root element is <{tag}>, not <{root_name}>: "
                                                   "is this the right format?")
                    yield "<root>", elem
                continue
            if tag in record_tags:
                yield tag, elem
                elem.clear()
    except ParseError as exc:
        raise SanctionsListInvalid(f"{path}: malformed or truncated XML ({exc})") from exc
    except DefusedXmlException as exc:
        raise SanctionsListInvalid(f"{path}: refused XML ({exc.__class__.__name__}: entities, DTDs and external "
                                   "references are not allowed)") from exc


def _text(elem, *path):
    """Stripped text of the first matching descendant path (local names), or ''."""
    node = _find(elem, *path)
    return (node.text or "").strip() if node is not None else ""


def _find(elem, *path):
    node = elem
    for name in path:
        node = next((c for c in node if _local(c.tag) == name), None)
        if node is None:
            return None
    return node


def _children(elem, name):
    return [c for c in elem if _local(c.tag) == name]


def _uniq(items):
    return list(dict.fromkeys(i for i in items if i))


@functools.cache
def _country_codes():
    """English country names (ICU's, plus the long forms lists use) → ISO 3166 alpha-2."""
    english = icu.Locale("en")
    names = {}
    for code in icu.Locale.getISOCountries():
        names[icu.Locale("", code).getDisplayCountry(english).casefold()] = code
    names.update({"russian federation": "RU", "kyrgyz republic": "KG", "kirghizia": "KG", "united states of america": "US",
                  "usa": "US", "united kingdom of great britain and northern ireland": "GB", "iran (islamic republic of)": "IR",
                  "syrian arab republic": "SY", "democratic people's republic of korea": "KP", "korea, north": "KP",
                  "republic of korea": "KR", "korea, south": "KR", "viet nam": "VN", "republic of moldova": "MD",
                  "turkiye": "TR", "türkiye": "TR", "belarus": "BY", "byelorussia": "BY", "ussr": "SU",
                  "soviet union": "SU", "kazakhstan": "KZ", "uzbekistan": "UZ", "tajikistan": "TJ",
                  "turkmenistan": "TM", "ukraine": "UA", "crimea": "UA"})
    return names


def country_code(text):
    """ISO alpha-2 for a country name or code; the cleaned text itself when not recognised (kept, not dropped)."""
    text = " ".join((text or "").split()).strip(" .;,")
    if not text or text == EMPTY:
        return ""
    if len(text) == 2 and text.isalpha():
        return text.upper()
    return _country_codes().get(text.casefold(), text)


def date_text(year, month=None, day=None):
    """ISO text at the precision given (YYYY, YYYY-MM or YYYY-MM-DD); '' for an impossible date."""
    try:
        if day:
            return datetime.date(int(year), int(month), int(day)).isoformat()
        if month:
            datetime.date(int(year), int(month), 1)
            return f"{int(year):04d}-{int(month):02d}"
        return f"{int(year):04d}" if 1000 <= int(year) <= 9999 else ""
    except (TypeError, ValueError):
        return ""


def year_range(first, last):
    """The years of an approximate birth date given as a range (at most 20 of them)."""
    first, last = int(first), int(last)
    if not 1000 <= first <= last <= 9999 or last - first > 20:
        return [date_text(first), date_text(last)] if first != last else [date_text(first)]
    return [f"{y:04d}" for y in range(first, last + 1)]


def _dates(text):
    """Parse dates as lists write them: 1970-01-31, 31 Jan 1970, Jan 1970, 1970, circa 1970, 1968 to 1970."""
    text = text.strip().removeprefix("circa").strip()
    if m := re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})(?:T.*)?", text):
        return [date_text(*m.groups())]
    if m := re.fullmatch(r"(\d{4})-(\d{2})", text):
        return [date_text(*m.groups())]
    if m := re.fullmatch(r"(\d{1,2}) ([A-Za-z]{3})[a-z]* (\d{4})", text):
        return [date_text(m[3], MONTHS.get(m[2].lower()), m[1])]
    if m := re.fullmatch(r"([A-Za-z]{3})[a-z]* (\d{4})", text):
        return [date_text(m[2], MONTHS.get(m[1].lower()))]
    if m := re.fullmatch(r"(\d{4})\s*(?:to|-)\s*(\d{4})", text):
        return year_range(m[1], m[2])
    if m := re.fullmatch(r"(\d{4})", text):
        return [date_text(m[1])]
    if m := re.fullmatch(r"(\d{2})\.(\d{2})\.(\d{4})", text):
        return [date_text(m[3], m[2], m[1])]
    return []


def _publication_date(text):
    if m := re.match(r"(\d{4})-(\d{2})-(\d{2})", text or ""):
        try:
            return datetime.date(int(m[1]), int(m[2]), int(m[3]))
        except ValueError:
            return None
    return None


def _require_entries(entries, paths, what):
    if not entries:
        raise SanctionsListInvalid(f"{', '.join(str(p) for p in paths)}: no entries found (is this {what}?)")


def _no_duplicates(entries, where):
    seen = set()
    for entry in entries:
        if entry.source_id in seen:
            raise SanctionsListInvalid(f"{where}: the id {entry.source_id!r} appears twice")
        seen.add(entry.source_id)


# --- OFAC legacy CSV ----------------------------------------------------------------------------------------------

SDN_FIELDS = 12  # ent_num, SDN_Name, SDN_Type, Program, Title, Call_Sign, Vess_type, Tonnage, GRT, Vess_flag, Vess_owner, Remarks
ALT_FIELDS = 5   # ent_num, alt_num, alt_type, alt_name, alt_remarks
ADD_FIELDS = 6   # ent_num, add_num, address, city/state/postal code, country, add_remarks
OFAC_KINDS = {"individual": "person", "vessel": "vessel", "aircraft": "aircraft", "": "entity"}
DCA = re.compile(r"Digital Currency Address - ([A-Za-z0-9]+)\s+([^\s;]+)")
DOB = re.compile(r"(?:^|;\s*)(?:alt\. )?DOB ([^;]+)")
NATIONALITY = re.compile(r"(?:^|;\s*)(?:alt\. )?(?:nationality|citizen) ([^;]+)")


def _ofac_rows(path, width, encoding):
    text = read_text(path, encoding).rstrip("\x1a")  # OFAC's files end with a DOS end-of-file mark
    if text.strip() and not text.endswith(("\n", "\r")):
        raise SanctionsListInvalid(f"{path}: the last line is not complete (truncated?)")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        for row in reader:
            if not row or row == [""]:
                continue
            if len(row) != width:
                raise SanctionsListInvalid(f"{path}, line {reader.line_num}: {len(row)} fields, expected {width} "
                                           "(truncated, or not this file?)")
            values = ["" if v.strip() == EMPTY else v.strip() for v in row]
            if not values[0].isdigit():
                raise SanctionsListInvalid(f"{path}, line {reader.line_num}: the entry number {values[0]!r} is not "
                                           "a number (a header row, or not this file?)")
            yield reader.line_num, values
    except csv.Error as exc:
        raise SanctionsListInvalid(f"{path}, line {reader.line_num}: malformed CSV ({exc})") from exc


def _ofac_role(path):
    name = Path(path).name.upper()
    for role in ("SDN", "ALT", "ADD"):
        if name.startswith(role):
            return role
    raise SanctionsListInvalid(f"{path}: ofac-csv takes SDN.CSV, ALT.CSV and ADD.CSV (named so); which is this?")


def parse_ofac_csv(paths, *, encoding="utf-8"):
    roles = {}
    for path in paths:
        role = _ofac_role(path)
        if role in roles:
            raise SanctionsListInvalid(f"two {role} files given: {roles[role]} and {path}")
        roles[role] = path
    if "SDN" not in roles:
        raise SanctionsListInvalid("ofac-csv needs SDN.CSV (ALT.CSV and ADD.CSV are optional)")
    entries = {}
    for line, (num, name, sdn_type, program, title, *_vessel, remarks) in _ofac_rows(roles["SDN"], SDN_FIELDS, encoding):
        if num in entries:
            raise SanctionsListInvalid(f"{roles['SDN']}, line {line}: the entry number {num} appears twice")
        if not name:
            raise SanctionsListInvalid(f"{roles['SDN']}, line {line}: entry {num} has no name")
        entry = ParsedEntry(source_id=num, kind=OFAC_KINDS.get(sdn_type.lower(), "other"), primary_name=name,
                            programs=_uniq(p.strip(" []") for p in re.split(r"\]\s*\[|;", program)), remarks=remarks)
        for match in DOB.finditer(remarks):
            entry.birth_dates += _dates(match[1])
        entry.nationalities = _uniq(country_code(m[1]) for m in NATIONALITY.finditer(remarks))
        entry.addresses = [(m[1].upper(), m[2].rstrip(".,")) for m in DCA.finditer(remarks)]
        if title:
            entry.remarks = f"{title}; {remarks}" if remarks else title
        entries[num] = entry
    if "ALT" in roles:
        for line, (num, _alt_num, _alt_type, alt_name, _alt_remarks) in _ofac_rows(roles["ALT"], ALT_FIELDS, encoding):
            if num not in entries:
                raise SanctionsListInvalid(f"{roles['ALT']}, line {line}: alias of entry {num}, which SDN.CSV lacks "
                                           "(files from different days?)")
            if alt_name:
                entries[num].aliases.append(alt_name)
    if "ADD" in roles:
        for line, (num, _add_num, _address, _city, country, _remarks) in _ofac_rows(roles["ADD"], ADD_FIELDS, encoding):
            if num not in entries:
                raise SanctionsListInvalid(f"{roles['ADD']}, line {line}: address of entry {num}, which SDN.CSV lacks "
                                           "(files from different days?)")
            if country:
                entries[num].countries = _uniq([*entries[num].countries, country_code(country)])
    result = list(entries.values())
    _require_entries(result, paths, "OFAC's SDN.CSV")
    return ParsedList(source="ofac_sdn", entries=result)


# --- OFAC advanced XML --------------------------------------------------------------------------------------------

NAME_PART_ORDER = {"First Name": 0, "Middle Name": 1, "Patronymic": 2, "Matronymic": 3, "Last Name": 4,
                   "Maiden Name": 5}


def _ofac_period_dates(period):
    """A DatePeriod as ISO text at the precision it carries: a day, a month, a year, or a range of years."""
    def point(node):
        if node is None:
            return None
        year, month, day = _text(node, "Year"), _text(node, "Month"), _text(node, "Day")
        return (int(year), int(month or 1), int(day or 1)) if year.isdigit() else None

    start = point(_find(period, "Start", "From")) or point(_find(period, "Start", "To"))
    end = point(_find(period, "End", "To")) or point(_find(period, "End", "From")) or start
    if start is None:
        return []
    if start == end:
        return [date_text(*start)]
    if start[0] == end[0] and start[1:] == (1, 1) and end[1:] == (12, 31):
        return [date_text(start[0])]
    if start[:2] == end[:2] and start[2] == 1 and end[2] == calendar.monthrange(end[0], end[1])[1]:
        return [date_text(start[0], start[1])]
    return year_range(start[0], end[0])


def parse_ofac_xml(paths, *, encoding=None):
    if len(paths) != 1:
        raise SanctionsListInvalid("ofac-xml takes one file (sdn_advanced.xml)")
    path = paths[0]
    ref = {name: {} for name in ("FeatureType", "PartySubType", "PartyType", "NamePartType", "AliasType",
                                 "DetailReference")}
    subtype_party = {}
    country_iso = {}
    location_country = {}
    programs = {}
    parties = []
    published = None
    for tag, elem in _xml_records(path, "Sanctions", {"DateOfIssue", *ref, "Country", "Location", "DistinctParty",
                                                      "SanctionsEntry"}):
        if tag == "DateOfIssue":
            published = _publication_date(date_text(_text(elem, "Year"), _text(elem, "Month"), _text(elem, "Day")))
        elif tag in ref:
            ref[tag][elem.get("ID")] = (elem.text or "").strip()
            if tag == "PartySubType":
                subtype_party[elem.get("ID")] = elem.get("PartyTypeID")
        elif tag == "Country":
            country_iso[elem.get("ID")] = elem.get("ISO2") or (elem.text or "").strip()
        elif tag == "Location":
            location_country[elem.get("ID")] = [c.get("CountryID") for c in _children(elem, "LocationCountry")]
        elif tag == "SanctionsEntry":
            comments = [(c.text or "").strip() for m in _children(elem, "SanctionsMeasure") for c in _children(m, "Comment")]
            programs.setdefault(elem.get("ProfileID"), []).extend(c for c in comments if c)
        elif tag == "DistinctParty":
            parties.append(_ofac_party_raw(elem))
    entries = [_ofac_party_entry(raw, ref, subtype_party, country_iso, location_country, programs) for raw in parties]
    entries = [e for e in entries if e is not None]
    _no_duplicates(entries, path)
    _require_entries(entries, paths, "OFAC's sdn_advanced.xml")
    return ParsedList(source="ofac_sdn", entries=entries, published_on=published)


def _ofac_party_raw(party):
    """What a DistinctParty says, before its ids are resolved (the reference values may come later in the file)."""
    profile = _find(party, "Profile")
    if profile is None:
        return None
    raw = {"id": party.get("FixedRef") or profile.get("ID"), "profile_id": profile.get("ID"),
           "subtype": profile.get("PartySubTypeID"), "comment": _text(party, "Comment"), "names": [], "features": []}
    for identity in _children(profile, "Identity"):
        groups = {g.get("ID"): g.get("NamePartTypeID") for m in _children(identity, "NamePartGroups")
                  for mg in _children(m, "MasterNamePartGroup") for g in _children(mg, "NamePartGroup")}
        for alias in _children(identity, "Alias"):
            for documented in _children(alias, "DocumentedName"):
                parts = [(groups.get(v.get("NamePartGroupID")), (v.text or "").strip())
                         for p in _children(documented, "DocumentedNamePart") for v in _children(p, "NamePartValue")]
                raw["names"].append({"primary": alias.get("Primary") == "true" and identity.get("Primary") != "false",
                                     "weak": alias.get("LowQuality") == "true", "parts": parts})
    for feature in _children(profile, "Feature"):
        for version in _children(feature, "FeatureVersion"):
            raw["features"].append({
                "type": feature.get("FeatureTypeID"),
                "details": [(d.text or "").strip() for d in _children(version, "VersionDetail")],
                "references": [d.get("DetailReferenceID") for d in _children(version, "VersionDetail")
                               if d.get("DetailReferenceID")],
                "locations": [loc.get("LocationID") for loc in _children(version, "VersionLocation")],
                "dates": [d for period in _children(version, "DatePeriod") for d in _ofac_period_dates(period)],
            })
    return raw


def _ofac_party_entry(raw, ref, subtype_party, country_iso, location_country, programs):
    if raw is None:
        return None
    subtype = ref["PartySubType"].get(raw["subtype"], "")
    party_type = ref["PartyType"].get(subtype_party.get(raw["subtype"]), "")
    kind = {"Vessel": "vessel", "Aircraft": "aircraft"}.get(subtype) or {"Individual": "person", "Entity": "entity"}.get(
        party_type, "other")
    names, primary = [], None
    for documented in raw["names"]:
        if documented["weak"]:
            continue  # OFAC's "weak" aliases are not meant for screening
        ordered = sorted(documented["parts"], key=lambda p: NAME_PART_ORDER.get(ref["NamePartType"].get(p[0]), 9))
        name = " ".join(v for _, v in ordered if v)
        if not name:
            continue
        if documented["primary"] and primary is None:
            primary = name
        else:
            names.append(name)
    if primary is None:
        if not names:
            raise SanctionsListInvalid(f"ofac-xml: party {raw['id']} has no name")
        primary = names.pop(0)
    entry = ParsedEntry(source_id=raw["id"], kind=kind, primary_name=primary, aliases=_uniq(n for n in names if n != primary),
                        programs=_uniq(programs.get(raw["profile_id"], [])), remarks=raw["comment"])
    for feature in raw["features"]:
        feature_type = ref["FeatureType"].get(feature["type"], "")
        if feature_type.startswith("Digital Currency Address - "):
            currency = feature_type.removeprefix("Digital Currency Address - ").strip().upper()
            entry.addresses += [(currency, d) for d in feature["details"] if d]
        elif feature_type == "Birthdate":
            entry.birth_dates += feature["dates"]
        elif feature_type in ("Nationality Country", "Citizenship Country"):
            # A country given as a location (through Locations to CountryValues' ISO2) or as a detail reference (a
            # country name among the DetailReference values).
            for location in feature["locations"]:
                entry.nationalities += [country_iso.get(c, "") for c in location_country.get(location, [])]
            entry.nationalities += [country_code(ref["DetailReference"].get(r, "")) for r in feature["references"]]
    entry.birth_dates = _uniq(entry.birth_dates)
    entry.nationalities = _uniq(entry.nationalities)
    return entry


# --- UN consolidated list -----------------------------------------------------------------------------------------

def _un_dates(elem):
    dates = []
    for dob in _children(elem, "INDIVIDUAL_DATE_OF_BIRTH"):
        if _text(dob, "DATE"):
            dates += _dates(_text(dob, "DATE"))
        elif _text(dob, "FROM_YEAR") and _text(dob, "TO_YEAR"):
            dates += year_range(_text(dob, "FROM_YEAR"), _text(dob, "TO_YEAR"))
        elif _text(dob, "YEAR"):
            dates += _dates(_text(dob, "YEAR"))
    return _uniq(dates)


def parse_un_xml(paths, *, encoding=None):
    if len(paths) != 1:
        raise SanctionsListInvalid("un-xml takes one file (the consolidated list's XML)")
    path = paths[0]
    entries, published = [], None
    for tag, elem in _xml_records(path, "CONSOLIDATED_LIST", {"INDIVIDUAL", "ENTITY"}):
        if tag == "<root>":
            published = _publication_date(elem.get("dateGenerated"))
            continue
        person = tag == "INDIVIDUAL"
        data_id = _text(elem, "DATAID")
        name = " ".join(_text(elem, f) for f in ("FIRST_NAME", "SECOND_NAME", "THIRD_NAME", "FOURTH_NAME")
                        if _text(elem, f))
        if not data_id or not name:
            raise SanctionsListInvalid(f"{path}: an {tag} without DATAID or FIRST_NAME")
        aliases = [_text(a, "ALIAS_NAME") for a in _children(elem, f"{tag}_ALIAS") if _text(a, "QUALITY") != "Low"]
        aliases.append(_text(elem, "NAME_ORIGINAL_SCRIPT"))
        entries.append(ParsedEntry(
            source_id=data_id, kind="person" if person else "entity", primary_name=name,
            aliases=_uniq(a for a in aliases if a != name),
            birth_dates=_un_dates(elem) if person else [],
            nationalities=_uniq(country_code(_text(v)) for n in _children(elem, "NATIONALITY") for v in _children(n, "VALUE")),
            programs=_uniq([_text(elem, "UN_LIST_TYPE")]),
            remarks="; ".join(r for r in (_text(elem, "REFERENCE_NUMBER"), _text(elem, "COMMENTS1")) if r)))
    _no_duplicates(entries, path)
    _require_entries(entries, paths, "the UN consolidated list")
    return ParsedList(source="un", entries=entries, published_on=published)


# --- EU consolidated list -----------------------------------------------------------------------------------------

EU_KINDS = {"person": "person", "enterprise": "entity"}


def parse_eu_xml(paths, *, encoding=None):
    if len(paths) != 1:
        raise SanctionsListInvalid("eu-xml takes one file (the consolidated list's XML)")
    path = paths[0]
    entries, published = [], None
    for tag, elem in _xml_records(path, "export", {"sanctionEntity"}):
        if tag == "<root>":
            published = _publication_date(elem.get("generationDate"))
            continue
        names = []
        for alias in _children(elem, "nameAlias"):
            whole = (alias.get("wholeName") or "").strip() or " ".join(
                (alias.get(k) or "").strip() for k in ("firstName", "middleName", "lastName") if alias.get(k))
            names.append(whole)
        names = _uniq(names)
        logical_id = elem.get("logicalId") or elem.get("euReferenceNumber")
        if not logical_id or not names:
            raise SanctionsListInvalid(f"{path}: a sanctionEntity without logicalId or nameAlias")
        subject = _find(elem, "subjectType")
        dates = []
        for birth in _children(elem, "birthdate"):
            if birth.get("birthdate"):
                dates += _dates(birth.get("birthdate"))
            elif birth.get("year"):
                dates.append(date_text(birth.get("year"), birth.get("monthOfYear"), birth.get("dayOfMonth")))
        entries.append(ParsedEntry(
            source_id=logical_id, kind=EU_KINDS.get(subject.get("code") if subject is not None else "", "other"),
            primary_name=names[0], aliases=names[1:], birth_dates=_uniq(dates),
            nationalities=_uniq(country_code(c.get("countryIso2Code") or c.get("countryDescription"))
                                for c in _children(elem, "citizenship")),
            programs=_uniq(r.get("programme") for r in _children(elem, "regulation")),
            remarks="; ".join(_uniq([elem.get("euReferenceNumber") or "", *((r.text or "").strip()
                                                                          for r in _children(elem, "remark"))]))))
    _no_duplicates(entries, path)
    _require_entries(entries, paths, "the EU consolidated list (XML)")
    return ParsedList(source="eu", entries=entries, published_on=published)


EU_CSV_REQUIRED = ("Entity_LogicalId", "NameAlias_WholeName")


def parse_eu_csv(paths, *, encoding="utf-8"):
    """The EU list's CSV (version 1.1): semicolon-separated with a header row, one row per name, birth date,
    citizenship... each repeating the entity's columns; read by column name."""
    if len(paths) != 1:
        raise SanctionsListInvalid("eu-csv takes one file (the consolidated list's CSV)")
    path = paths[0]
    text = read_text(path, encoding)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=";", strict=True)
    entries, published = {}, None
    try:
        header = next(reader, None)
        if not header or any(column not in header for column in EU_CSV_REQUIRED):
            raise SanctionsListInvalid(f"{path}: the header lacks {' and '.join(EU_CSV_REQUIRED)} (is this the EU "
                                       "list's CSV?)")
        if not text.endswith(("\n", "\r")):
            raise SanctionsListInvalid(f"{path}: the last line is not complete (truncated?)")
        for row in reader:
            if not any(v.strip() for v in row):
                continue
            if len(row) != len(header):
                raise SanctionsListInvalid(f"{path}, line {reader.line_num}: {len(row)} fields, expected "
                                           f"{len(header)} (truncated?)")
            f = {k: v.strip() for k, v in zip(header, row, strict=True)}
            logical_id = f["Entity_LogicalId"]
            if not logical_id:
                raise SanctionsListInvalid(f"{path}, line {reader.line_num}: no Entity_LogicalId")
            published = published or _publication_date(_eu_date(f.get("fileGenerationDate", "")))
            entry = entries.get(logical_id)
            if entry is None:
                code = f.get("Entity_SubjectType_ClassificationCode") or f.get("Entity_SubjectType", "")
                kind = {"P": "person", "E": "entity"}.get(code, EU_KINDS.get(code, "other"))
                entry = entries[logical_id] = ParsedEntry(source_id=logical_id, kind=kind, primary_name="",
                                                          remarks=f.get("Entity_Remark", ""))
            name = f["NameAlias_WholeName"] or " ".join(
                f.get(k, "") for k in ("NameAlias_FirstName", "NameAlias_MiddleName", "NameAlias_LastName") if f.get(k))
            if name and not entry.primary_name:
                entry.primary_name = name
            elif name and name != entry.primary_name and name not in entry.aliases:
                entry.aliases.append(name)
            if f.get("BirthDate_BirthDate"):
                entry.birth_dates = _uniq([*entry.birth_dates, *_dates(f["BirthDate_BirthDate"])])
            elif f.get("BirthDate_Year"):
                entry.birth_dates = _uniq([*entry.birth_dates, date_text(f["BirthDate_Year"], f.get("BirthDate_Month"),
                                                                         f.get("BirthDate_Day"))])
            citizenship = f.get("Citizenship_CountryIso2Code") or f.get("Citizenship_CountryDescription")
            if citizenship:
                entry.nationalities = _uniq([*entry.nationalities, country_code(citizenship)])
            if f.get("Entity_Regulation_Programme"):
                entry.programs = _uniq([*entry.programs, f["Entity_Regulation_Programme"]])
    except csv.Error as exc:
        raise SanctionsListInvalid(f"{path}, line {reader.line_num}: malformed CSV ({exc})") from exc
    nameless = [e.source_id for e in entries.values() if not e.primary_name]
    if nameless:
        raise SanctionsListInvalid(f"{path}: entity {nameless[0]} has no name")
    result = list(entries.values())
    _require_entries(result, paths, "the EU consolidated list (CSV)")
    return ParsedList(source="eu", entries=result, published_on=published)


def _eu_date(text):
    if m := re.fullmatch(r"(\d{2})/(\d{2})/(\d{4})", text.strip()):
        return f"{m[3]}-{m[2]}-{m[1]}"
    return text


# --- OpenSanctions (FollowTheMoney JSON lines) --------------------------------------------------------------------

FTM_KINDS = {"Person": "person", "Organization": "entity", "Company": "entity", "LegalEntity": "entity",
             "PublicBody": "entity", "Vessel": "vessel", "Airplane": "aircraft"}
FTM_ALIASES = ("alias", "previousName")  # weakAlias is left out, as OpenSanctions advises for matching


def parse_opensanctions(paths, *, encoding="utf-8"):
    entries, wallets, published = {}, [], None
    for path in paths:
        for line_no, line in enumerate(read_text(path, encoding).splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise SanctionsListInvalid(f"{path}, line {line_no}: malformed JSON ({exc.msg}; truncated?)") from exc
            if not isinstance(obj, dict) or not isinstance(obj.get("properties", {}), dict) or not obj.get("id") \
                    or not obj.get("schema"):
                raise SanctionsListInvalid(f"{path}, line {line_no}: not a FollowTheMoney entity (id, schema, "
                                           "properties)")
            props = {k: [str(v).strip() for v in vs if str(v).strip()] if isinstance(vs, list) else []
                     for k, vs in obj.get("properties", {}).items()}
            changed = _publication_date(obj.get("last_change") or "")
            if changed and (published is None or changed > published):
                published = changed
            schema = obj["schema"]
            if schema == "CryptoWallet":
                wallets.append((line_no, path, obj["id"], props))
                continue
            if schema not in FTM_KINDS or obj.get("target") is False or not props.get("name"):
                continue  # addresses, sanctions, relations, and people only related to a target
            if obj["id"] in entries:
                raise SanctionsListInvalid(f"{path}, line {line_no}: the id {obj['id']!r} appears twice")
            names = props["name"]
            entries[obj["id"]] = ParsedEntry(
                source_id=obj["id"], kind=FTM_KINDS[schema], primary_name=names[0],
                aliases=_uniq(n for n in [*names[1:], *(a for k in FTM_ALIASES for a in props.get(k, []))]
                              if n != names[0]),
                birth_dates=_uniq(d for v in props.get("birthDate", []) for d in _dates(v)),
                nationalities=_uniq(country_code(c) for k in ("nationality", "citizenship") for c in props.get(k, [])),
                countries=_uniq(country_code(c) for c in props.get("country", [])),
                programs=_uniq([*props.get("program", []), *props.get("topics", [])]),
                remarks="; ".join(props.get("notes", [])))
    for line_no, path, wallet_id, props in wallets:
        keys = props.get("publicKey", [])
        if not keys:
            continue
        currency = (props.get("currency") or [""])[0].upper()
        holders = [entries[h] for h in props.get("holder", []) if h in entries]
        if not holders:  # a listed wallet whose holder is not in the file: still a listed address
            if wallet_id in entries:
                raise SanctionsListInvalid(f"{path}, line {line_no}: the id {wallet_id!r} appears twice")
            holders = [entries.setdefault(wallet_id, ParsedEntry(
                source_id=wallet_id, kind="wallet", primary_name=(props.get("name") or keys)[0],
                programs=_uniq(props.get("topics", []))))]
        for holder in holders:
            holder.addresses += [(currency, key) for key in keys]
    result = list(entries.values())
    _require_entries(result, paths, "OpenSanctions' FollowTheMoney JSON lines")
    return ParsedList(source="opensanctions", entries=result, published_on=published)


PARSERS = {
    "ofac-csv": parse_ofac_csv,
    "ofac-xml": parse_ofac_xml,
    "un-xml": parse_un_xml,
    "eu-xml": parse_eu_xml,
    "eu-csv": parse_eu_csv,
    "opensanctions": parse_opensanctions,
}


def list_parse(*, file_format, paths, encoding="utf-8"):
    """Parse the files of one list in the named format: a ParsedList, or SanctionsListInvalid."""
    parser = PARSERS.get(file_format)
    if parser is None:
        raise SanctionsListInvalid(f"unknown format {file_format!r}; one of: {', '.join(PARSERS)}")
    if not paths:
        raise SanctionsListInvalid("no file given")
    return parser([Path(p) for p in paths], encoding=encoding)
