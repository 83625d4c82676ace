"""Administrative divisions: roll-up of 6-digit codes and their names.

A merchant's ``region_code`` is its county-level division (行政区划代码, e.g.
``330106`` 西湖区); the statistics roll it up to its city (``330100`` 杭州市, the
first four digits and ``00``) and its province (``330000`` 浙江省, the first two
and ``0000``). Names come from ``data/regions.json`` (see ``data/SOURCE.md``).
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data" / "regions.json"
CODE = re.compile(r"[1-9]\d{5}")
#: Levels of the hierarchy, coarsest first, and the column of each.
LEVELS = ("province", "city", "district")
COLUMN = {"province": "province_code", "city": "city_code", "district": "region_code"}
#: What the package calls the city level of a municipality (Beijing, Tianjin,
#: Shanghai, Chongqing): shown as the municipality itself.
_MUNICIPAL_CITY = {"市辖区": "", "县": "（县）"}


@cache
def names() -> dict[str, str]:
    """Return code -> name of every province, city and county in the data file."""
    return json.loads(DATA.read_text(encoding="utf-8"))


def city_of(code: str | None) -> str | None:
    """Return the city-level code of a 6-digit division code (None for None)."""
    return code[:4] + "00" if code else None


def province_of(code: str | None) -> str | None:
    """Return the province-level code of a 6-digit division code (None for None)."""
    return code[:2] + "0000" if code else None


def rollup(code: str | None) -> tuple[str | None, str | None, str | None]:
    """Return ``(region, city, province)`` codes for a merchant's region code.

    A code that is not six digits counts as unknown (all None).
    """
    if not code or not CODE.fullmatch(code):
        return None, None, None
    return code, city_of(code), province_of(code)


def level_of(code: str) -> str:
    """Return ``province``, ``city`` or ``district`` for a valid 6-digit code."""
    if code.endswith("0000"):
        return "province"
    if code.endswith("00"):
        return "city"
    return "district"


def name_of(code: str | None) -> str | None:
    """Return the display name of a division code, or None when unknown.

    A municipality's city level (市辖区) is named after the municipality; a
    district is named with its city (杭州市西湖区), so that equal district names
    in different cities stay apart.
    """
    if not code:
        return None
    table = names()
    name = table.get(code)
    if name is None:
        return None
    level = level_of(code)
    if level == "city" and name in _MUNICIPAL_CITY:
        return (table.get(province_of(code)) or "") + _MUNICIPAL_CITY[name]
    if level == "district":
        city = name_of(city_of(code))
        return f"{city}{name}" if city else name
    return name


def label(code: str | None) -> str:
    """Return ``name (code)`` for display, or the code alone when it has no name."""
    if not code:
        return ""
    name = name_of(code)
    return f"{name} ({code})" if name else code


def find(query: str, *, limit: int = 10) -> list[str]:
    """Return division codes whose code or name matches ``query``, coarsest first.

    A 2-, 4- or 6-digit code matches its province, city or division exactly;
    text matches names that contain it (杭州 -> 330100 杭州市 and its districts).
    """
    query = query.strip()
    if not query:
        return []
    if query.isascii() and query.isdigit():
        code = {2: query + "0000", 4: query + "00", 6: query}.get(len(query))
        return [code] if code and CODE.fullmatch(code) else []
    hits = [code for code, name in names().items() if query in name]
    hits.sort(key=lambda code: (LEVELS.index(level_of(code)), code))
    return hits[:limit]


def children(code: str | None) -> str:
    """Return the level shown below a region filter: provinces, cities, districts."""
    if code is None:
        return "province"
    level = level_of(code)
    return "city" if level == "province" else "district"
