"""Plain data that crosses the sanctions modules: what a parser yields (ParsedList, ParsedEntry) and what the
matcher reads (ListedName)."""

from dataclasses import dataclass, field
from datetime import date


@dataclass(frozen=True)
class ListedName:
    """One name (primary or alias) of one entry in a current list version, with the entry's data the matcher
    weighs: birth dates as the list gives them (ISO `YYYY-MM-DD`, `YYYY-MM` or `YYYY`) and nationalities as
    ISO 3166 alpha-2 codes (or the list's text where no code was found)."""

    entry_id: int
    version_id: int
    source: str
    source_id: str
    name: str
    is_alias: bool
    primary_name: str
    kind: str
    birth_dates: tuple[str, ...] = ()
    nationalities: tuple[str, ...] = ()


@dataclass
class ParsedEntry:
    source_id: str
    kind: str
    primary_name: str
    aliases: list[str] = field(default_factory=list)
    birth_dates: list[str] = field(default_factory=list)
    nationalities: list[str] = field(default_factory=list)
    countries: list[str] = field(default_factory=list)
    programs: list[str] = field(default_factory=list)
    remarks: str = ""
    addresses: list[tuple[str, str]] = field(default_factory=list)  # (currency, address as written)


@dataclass
class ParsedList:
    source: str
    entries: list[ParsedEntry]
    published_on: date | None = None
