from dataclasses import dataclass


@dataclass(frozen=True)
class ListedName:
    entry_id: int
    version_id: int
    source: str
    source_id: str
    name: str
    is_alias: bool
    primary_name: str
    kind: str  # person, entity, vessel, ...
    birth_dates: tuple[str, ...] = ()   # ISO yyyy-mm-dd or yyyy
    nationalities: tuple[str, ...] = ()  # ISO 3166 alpha-2
