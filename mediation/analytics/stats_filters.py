"""Reading the statistics' filters from a query string (dashboard, CSV and API).

One parser for the three adapters, so that a link copied from the dashboard
gives the same numbers in its CSV files and in ``GET /api/v1/stats``. Bad input
never raises from here: :func:`parse` returns the errors by field, and each
adapter shows them its way (form errors, 422).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from flask_babel import lazy_gettext as _l

from mediation.analytics import stats_regions as regions
from mediation.analytics.stats_queries import NO_PLATFORM, Filters
from mediation.cases.models import Category
from mediation.extensions import db
from mediation.merchants.models import Merchant, MerchantKind

#: Presets of the period menu: key -> label.
PRESETS = {
    "this_month": _l("This month"),
    "last_month": _l("Last month"),
    "last_30_days": _l("Last 30 days"),
    "last_12_months": _l("Last 12 months"),
}
#: The longest period the statistics take (and the oldest first day).
MAX_DAYS = 3 * 366
OLDEST = date(2000, 1, 1)
#: The query-string names of the filters (also what links carry on).
FILTER_ARGS = ("from", "to", "region", "category", "platform")


@dataclass
class Parsed:
    """The filters read from a query string, and what was wrong with it."""

    filters: Filters
    #: field name -> message; empty when every value was understood.
    errors: dict[str, Any] = field(default_factory=dict)
    #: The values as given (to fill the form again).
    values: dict[str, str] = field(default_factory=dict)

    def query_args(self) -> dict[str, str]:
        """Return the filters as query arguments (for CSV links and presets)."""
        f = self.filters
        args = {"from": f.date_from.isoformat(), "to": f.date_to.isoformat()}
        if f.region:
            args["region"] = f.region
        if f.category:
            args["category"] = f.category
        if f.platform is not None:
            args["platform"] = "none" if f.platform == NO_PLATFORM else str(f.platform)
        return args


def preset_period(name: str, today: date) -> tuple[date, date]:
    """Return the first and last day of a preset period ending ``today``.

    :raise KeyError: for an unknown preset.
    """
    if name == "this_month":
        return today.replace(day=1), today
    if name == "last_month":
        last = today.replace(day=1) - timedelta(days=1)
        return last.replace(day=1), last
    if name == "last_30_days":
        return today - timedelta(days=29), today
    if name == "last_12_months":
        try:
            start = today.replace(year=today.year - 1) + timedelta(days=1)
        except ValueError:  # 29 February
            start = today.replace(year=today.year - 1, day=28) + timedelta(days=1)
        return start, today
    raise KeyError(name)


def _date(raw: str) -> date | None:
    try:
        return date.fromisoformat(raw) if len(raw) == 10 else None
    except ValueError:
        return None


def parse(args: Mapping[str, str], *, today: date) -> Parsed:
    """Read the period and the dimensions from query arguments.

    ``from``/``to`` (YYYY-MM-DD, inclusive) or ``period`` (a preset; default
    this month); ``region`` (a 2-, 4- or 6-digit division code or a name);
    ``category`` (a code); ``platform`` (a platform's id, or ``none`` for shops
    on no platform).

    :param today: the local day the presets end on.
    """
    values = {name: (args.get(name) or "").strip() for name in (*FILTER_ARGS, "period")}
    errors: dict[str, Any] = {}
    start, end = preset_period("this_month", today)
    if values["period"]:
        if values["period"] in PRESETS:
            start, end = preset_period(values["period"], today)
        else:
            errors["period"] = _l("Choose one of the listed periods.")
    for name in ("from", "to"):
        if values[name]:
            day = _date(values[name])
            if day is None:
                errors[name] = _l("Give a date as YYYY-MM-DD.")
            elif name == "from":
                start = day
            else:
                end = day
    if "from" not in errors and "to" not in errors:
        if start > end:
            errors["to"] = _l("The period must end on or after its first day.")
        elif (end - start).days + 1 > MAX_DAYS:
            errors["from"] = _l("The period can be at most three years long.")
        elif start < OLDEST:
            errors["from"] = _l("The period cannot start before 2000.")
    region = None
    if values["region"]:
        found = regions.find(values["region"], limit=6)
        levels = {regions.level_of(code) for code in found}
        coarsest = (
            [
                c
                for c in found
                if regions.level_of(c) == min(levels, key=regions.LEVELS.index)
            ]
            if found
            else []
        )
        if len(coarsest) == 1:
            region = coarsest[0]
        elif not found:
            errors["region"] = _l("No administrative division has this code or name.")
        else:
            errors["region"] = _l(
                "Several divisions match: %(names)s. Give the code.",
                names="; ".join(regions.label(code) for code in coarsest[:5]),
            )
    category = values["category"] or None
    if category and category not in {c.value for c in Category}:
        errors["category"] = _l("Choose one of the listed categories.")
        category = None
    platform = None
    if values["platform"]:
        if values["platform"] == "none":
            platform = NO_PLATFORM
        elif (
            values["platform"].isascii()
            and values["platform"].isdigit()
            and (len(values["platform"]) < 10)
        ):
            merchant = db.session.get(Merchant, int(values["platform"]))
            if merchant is None or merchant.kind != MerchantKind.platform.value:
                errors["platform"] = _l("This is not a registered platform.")
            else:
                platform = merchant.id
        else:
            errors["platform"] = _l("This is not a registered platform.")
    if errors:
        # Fall back to what was understood so that a page can still show numbers.
        if "from" in errors or "to" in errors or "period" in errors:
            start, end = preset_period("this_month", today)
    return Parsed(
        filters=Filters(
            date_from=start,
            date_to=end,
            region=region,
            category=category,
            platform=platform,
        ),
        errors=errors,
        values=values,
    )


def platform_choices() -> list[tuple[int, str]]:
    """Return ``(id, name)`` of every registered platform, by name."""
    return [
        (row.id, row.name)
        for row in db.session.execute(
            db.select(Merchant.id, Merchant.name)
            .where(Merchant.kind == MerchantKind.platform.value)
            .order_by(Merchant.name)
        )
    ]
