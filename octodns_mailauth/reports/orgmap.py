"""Name a sending host's organisation from its base reverse-DNS domain.

The map (`data/base_reverse_dns_map.csv.gz`, from parsedmarc, Apache-2.0: see
`data/NOTICE.md`) says e.g. `sendgrid.net` -> "Twilio SendGrid", type
"Marketing".  The base domain is the Organizational Domain of the PTR name
(the same PSL rule DMARC alignment uses, `dmarc/orgdomain.py`).
"""

from __future__ import annotations

import csv
import gzip
import io
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..dmarc.orgdomain import organizational_domain
from ..names import normalize

MAP_PATH = Path(__file__).parent / "data" / "base_reverse_dns_map.csv.gz"


@dataclass(frozen=True)
class Organisation:
    name: str
    type: str
    base_domain: str


@lru_cache(maxsize=1)
def _table() -> dict[str, tuple[str, str]]:
    with gzip.open(MAP_PATH, "rb") as fh:
        text = io.TextIOWrapper(fh, encoding="utf-8")
        return {
            row["base_reverse_dns"].strip().lower(): (row["name"].strip(), row["type"].strip())
            for row in csv.DictReader(text)
            if row.get("base_reverse_dns")
        }


def base_domain(name: str) -> str:
    name = normalize(name)
    return organizational_domain(name) if name else ""


def organisation(name: str) -> Organisation | None:
    """The organisation whose base domain `name` (a PTR name, a d= or MAIL FROM
    domain) is under, or None when the map does not know it."""
    base = base_domain(name)
    found = _table().get(base)
    return Organisation(found[0], found[1], base) if found else None
