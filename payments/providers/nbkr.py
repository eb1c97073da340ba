"""The National Bank of the Kyrgyz Republic's official rates: its daily XML (USD, EUR, RUB, KZT).

    <?xml version="1.0" encoding="windows-1251"?>
    <CurrencyRates Name="Daily Exchange Rates" Date="28.11.2026">
      <Currency ISOCode="USD"><Nominal>1</Nominal><Value>87,4500</Value></Currency> ...

Som per unit = Value / Nominal, with a decimal comma. Every failure is a RateSourceError: the caller keeps the last
good rate and alerts operators."""

import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from urllib.parse import urlsplit
from xml.etree import ElementTree  # noqa: S405 - no DTD accepted (checked before parsing, below)

import httpx

from payments.errors import RateSourceError

DEFAULT_URL = "https://www.nbkr.kg/XML/daily.xml"
MAX_BYTES = 256 * 1024  # the real file is under 1 KB
RATE_PLACES = Decimal("0.00000001")
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


@dataclass(frozen=True)
class OfficialRate:
    currency: str
    value: Decimal  # som per one unit of `currency`
    value_date: date


def nbkr_parse(body):
    """The daily file's bytes → its rates. Raises RateSourceError on anything that is not that file."""
    if re.search(rb"<!(DOCTYPE|ENTITY)", body[:4096], re.IGNORECASE):
        raise RateSourceError("NBKR file refused: it declares a DTD or entities")
    try:
        root = ElementTree.fromstring(body)  # noqa: S314 - DTDs refused above; the encoding comes from the prolog
    except ElementTree.ParseError as exc:
        raise RateSourceError(f"NBKR file is not XML: {exc}") from exc
    if root.tag != "CurrencyRates":
        raise RateSourceError(f"NBKR file has root <{root.tag}>, not <CurrencyRates>")
    try:
        value_date = datetime.strptime(root.get("Date", ""), "%d.%m.%Y").date()  # noqa: DTZ007 - a date, no time
    except ValueError as exc:
        raise RateSourceError(f"NBKR file has no valid Date: {root.get('Date')!r}") from exc
    rates = []
    for node in root.findall("Currency"):
        code = (node.get("ISOCode") or "").strip().upper()
        nominal, value = (node.findtext("Nominal") or "").strip(), (node.findtext("Value") or "").strip()
        try:
            nominal, value = int(nominal), Decimal(value.replace(",", "."))
        except (ValueError, InvalidOperation) as exc:
            raise RateSourceError(f"NBKR file: {code or '?'} has Nominal {nominal!r}, Value {value!r}") from exc
        if not re.fullmatch(r"[A-Z]{3}", code) or nominal <= 0 or not value.is_finite() or value <= 0:
            raise RateSourceError(f"NBKR file: unusable entry {code or '?'} (Nominal {nominal}, Value {value})")
        rates.append(OfficialRate(code, (value / nominal).quantize(RATE_PLACES), value_date))
    if not rates:
        raise RateSourceError("NBKR file lists no currencies")
    return rates


class NbkrSource:
    """The live daily file over HTTPS (plain HTTP only to this machine, for tests), with a timeout."""

    name = "NBKR"

    def __init__(self, *, url=DEFAULT_URL, timeout=10):
        parts = urlsplit(url)
        if parts.scheme != "https" and not (parts.scheme == "http" and parts.hostname in LOCAL_HOSTS):
            raise RateSourceError(f"NBKR_RATES_URL must be https: {url}")
        self.url, self.timeout = url, timeout

    def fetch(self):
        try:
            with httpx.Client(timeout=self.timeout, follow_redirects=False) as http, \
                    http.stream("GET", self.url, headers={"Accept": "application/xml"}) as response:
                if response.status_code != 200:
                    raise RateSourceError(f"NBKR answered HTTP {response.status_code} for {self.url}")
                body = b""
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > MAX_BYTES:
                        raise RateSourceError(f"NBKR file larger than {MAX_BYTES} bytes")
        except httpx.HTTPError as exc:
            raise RateSourceError(f"NBKR could not be reached at {self.url}: {exc.__class__.__name__}: {exc}") from exc
        return nbkr_parse(body)


class NbkrRecordedSource:
    """A recorded daily file on disk, its rates taken as today's: `make run` without NBKR_RATES_URL, so local quotes
    show NBKR-style rates without the network. Never used in production (RATES_SOURCE=recorded)."""

    name = "NBKR-recorded"

    def __init__(self, *, path, today):
        self.path, self.today = Path(path), today

    def fetch(self):
        try:
            body = self.path.read_bytes()
        except OSError as exc:
            raise RateSourceError(f"recorded NBKR file unreadable: {exc}") from exc
        return [OfficialRate(r.currency, r.value, self.today) for r in nbkr_parse(body)]
