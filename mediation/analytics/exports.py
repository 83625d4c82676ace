"""CSV exports of cases, for regulators (and for mediators and arbitrators, of
their own cases), each one recorded in the audit log.

Who gets what:

* regulators: every case; with ``personal`` the consumer's name, e-mail,
  phone and the order reference are added (nobody else ever gets them);
* mediators: the cases they mediate or mediated; arbitrators: the cases they
  arbitrate or arbitrated; never personal data;
* anyone else: refused.

An export first reads the ids of the matching cases and records
``export.cases`` (who, the filters, the row count, whether personal data was
included) in the audit log; the adapter commits that, and only then are the
rows streamed, in chunks, in the order of the ids read. So every export that
sent a byte is on record, and the count recorded is the number of rows sent.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, or_
from sqlalchemy.orm import aliased

from mediation.analytics.audit import record_audit
from mediation.auth.models import Role, User
from mediation.cases.lifecycle import STATUSES as _LIFECYCLE_STATUSES
from mediation.cases.models import Case, Category
from mediation.errors import PermissionDenied, ValidationError
from mediation.extensions import db
from mediation.labels import CATEGORY, STATUS
from mediation.merchants.models import Merchant, MerchantKind

CATEGORIES = tuple(c.value for c in Category)
STATUSES = tuple(_LIFECYCLE_STATUSES)
#: Most rows one export may hold (``EXPORT_MAX_ROWS``); narrow the filters beyond.
DEFAULT_MAX_ROWS = 200_000
#: Rows read per query while streaming.
CHUNK = 500
_ID_MAX = 2**31 - 1
_QUERY_MAX = 100

#: How a case ended, beyond the closing statuses (``Case.outcome``).
OUTCOME = {
    "settled_directly": _l("Settled directly with the consumer"),
    "settled_in_mediation": _l("Settled in mediation"),
    "award_complied": _l("Award complied with"),
}

#: The columns of every export, in order.
COLUMNS = (
    "reference",
    "filed_at",
    "category",
    "category_label",
    "status",
    "status_label",
    "outcome",
    "outcome_label",
    "merchant_id",
    "merchant_name",
    "merchant_uscc",
    "platform_id",
    "platform_name",
    "region_code",
    "order_date",
    "amount_paid",
    "amount_paid_fen",
    "claim_type",
    "claim_amount",
    "claim_amount_fen",
    "due_at",
    "answered_at",
    "closed_at",
    "mediator",
    "arbitrator",
    "satisfaction",
)
#: Added at the end when a regulator asks for personal data.
PERSONAL_COLUMNS = ("consumer_name", "consumer_email", "consumer_phone", "order_ref")


@dataclass(frozen=True)
class CaseFilters:
    """What an export selects: every field optional."""

    #: Filed on or after this day, and on or before ``filed_to`` (local days).
    filed_from: date | None = None
    filed_to: date | None = None
    statuses: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    #: The start of the merchant's administrative division code (1-6 digits).
    region: str | None = None
    merchant_id: int | None = None
    #: A fragment of the merchant's name (registered or as the consumer typed it),
    #: when no ``merchant_id`` is given.
    merchant_name: str | None = None
    platform_id: int | None = None
    #: Add the consumer's personal data (regulators only).
    personal: bool = False

    def describe(self) -> dict[str, Any]:
        """Return the filters that are set (for the audit log)."""
        return {
            k: v
            for k, v in asdict(self).items()
            if v not in (None, (), "") and v is not False
        }


@dataclass
class CaseExport:
    """An export that was checked and recorded, ready to stream."""

    user_id: int
    scope: str
    filters: CaseFilters
    ids: list[int] = field(default_factory=list)
    at: datetime | None = None

    @property
    def columns(self) -> tuple[str, ...]:
        return COLUMNS + (PERSONAL_COLUMNS if self.filters.personal else ())


# Parsing --------------------------------------------------------------------


def _values(args: Mapping[str, Any], name: str) -> list[str]:
    """Return the values of a repeatable argument (also comma-separated)."""
    raw = args.getlist(name) if hasattr(args, "getlist") else [args.get(name)]
    out: list[str] = []
    for value in raw:
        if isinstance(value, str):
            out.extend(v.strip() for v in value.split(",") if v.strip())
    return out


def _day(raw: str | None, name: str, errors: dict[str, Any]) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        errors[name] = _l("Enter a date as YYYY-MM-DD.")
        return None


def _id(raw: str | None, name: str, errors: dict[str, Any]) -> int | None:
    if raw in (None, ""):
        return None
    text = str(raw).strip()
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) <= _ID_MAX:
        errors[name] = _l("Choose a registered merchant.")
        return None
    return int(text)


def parse_filters(args: Mapping[str, Any]) -> CaseFilters:
    """Read export filters from query arguments.

    Arguments: ``from``, ``to`` (YYYY-MM-DD), ``status`` and ``category``
    (repeated or comma-separated codes), ``region`` (1-6 digits),
    ``merchant_id`` or ``merchant`` (a name fragment), ``platform_id``,
    ``personal`` (``1``/``true``/``yes``/``on``).

    :raise ValidationError: naming every bad argument.
    """
    errors: dict[str, Any] = {}
    filed_from = _day(args.get("from"), "from", errors)
    filed_to = _day(args.get("to"), "to", errors)
    if filed_from and filed_to and filed_from > filed_to:
        errors["to"] = _l("The end of the period is before its start.")
    statuses = _values(args, "status")
    if set(statuses) - set(STATUSES):
        errors["status"] = _l("Choose statuses from the list.")
    categories = _values(args, "category")
    if set(categories) - set(CATEGORIES):
        errors["category"] = _l("Choose categories from the list.")
    region = (args.get("region") or "").strip() or None
    if region is not None and not re.fullmatch(r"\d{1,6}", region):
        errors["region"] = _l(
            "Enter the start of an administrative division code (1 to 6 digits)."
        )
    merchant_id = _id(args.get("merchant_id"), "merchant_id", errors)
    name = (args.get("merchant") or "").strip() or None
    if name is not None and len(name) > _QUERY_MAX:
        errors["merchant"] = _l("At most %(n)d characters.", n=_QUERY_MAX)
    platform_id = _id(args.get("platform_id"), "platform_id", errors)
    if platform_id is not None and "platform_id" not in errors:
        platform = db.session.get(Merchant, platform_id)
        if platform is None or platform.kind != MerchantKind.platform.value:
            errors["platform_id"] = _l("Choose a registered platform.")
    if merchant_id is not None and "merchant_id" not in errors:
        if db.session.get(Merchant, merchant_id) is None:
            errors["merchant_id"] = _l("Choose a registered merchant.")
    personal = (args.get("personal") or "").strip().lower()
    if personal not in ("", "0", "1", "true", "false", "yes", "no", "on", "off"):
        errors["personal"] = _l("Enter yes or no.")
    if errors:
        raise ValidationError(fields=errors)
    return CaseFilters(
        filed_from=filed_from,
        filed_to=filed_to,
        statuses=tuple(dict.fromkeys(statuses)),
        categories=tuple(dict.fromkeys(categories)),
        region=region,
        merchant_id=merchant_id,
        merchant_name=name if merchant_id is None else None,
        platform_id=platform_id,
        personal=personal in ("1", "true", "yes", "on"),
    )


# Access and selection -------------------------------------------------------


def export_scope(user: User) -> str:
    """Return which cases ``user`` may export: ``all`` (regulators), ``mediated``
    (mediators), ``arbitrated`` (arbitrators).

    :raise PermissionDenied: for anyone else.
    """
    scopes = {
        Role.regulator.value: "all",
        Role.mediator.value: "mediated",
        Role.arbitrator.value: "arbitrated",
    }
    if user.role not in scopes:
        raise PermissionDenied(
            _l("Only regulators, mediators and arbitrators export cases.")
        )
    return scopes[user.role]


def _zone() -> ZoneInfo:
    return ZoneInfo(current_app.config["TIME_ZONE"])


def matching_cases(user: User, filters: CaseFilters) -> Select:
    """Return a SELECT of the ids of the cases ``user`` may export that match,
    in filing order.

    :raise PermissionDenied: for roles that export nothing.
    """
    scope = export_scope(user)
    query = db.select(Case.id)
    if scope == "mediated":
        query = query.where(Case.mediator_id == user.id)
    elif scope == "arbitrated":
        query = query.where(Case.arbitrator_id == user.id)
    zone = _zone()
    if filters.filed_from:
        query = query.where(
            Case.filed_at >= datetime.combine(filters.filed_from, time.min, zone)
        )
    if filters.filed_to:
        end = datetime.combine(filters.filed_to + timedelta(days=1), time.min, zone)
        query = query.where(Case.filed_at < end)
    if filters.statuses:
        query = query.where(Case.status.in_(filters.statuses))
    if filters.categories:
        query = query.where(Case.category.in_(filters.categories))
    if filters.platform_id is not None:
        query = query.where(Case.platform_id == filters.platform_id)
    if filters.merchant_id is not None:
        query = query.where(Case.merchant_id == filters.merchant_id)
    merchant = aliased(Merchant)
    if filters.region is not None or filters.merchant_name is not None:
        query = query.outerjoin(merchant, merchant.id == Case.merchant_id)
    if filters.region is not None:
        query = query.where(
            merchant.region_code.startswith(filters.region, autoescape=True)
        )
    if filters.merchant_name is not None:
        like = "%" + _escape(filters.merchant_name) + "%"
        query = query.where(
            or_(
                merchant.name.ilike(like, escape="\\"),
                Case.merchant_name.ilike(like, escape="\\"),
            )
        )
    return query.order_by(Case.filed_at, Case.id)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_")


def count_cases(user: User, filters: CaseFilters) -> int:
    """Return how many cases an export with ``filters`` would hold."""
    query = matching_cases(user, filters).order_by(None)
    return int(
        db.session.scalar(db.select(db.func.count()).select_from(query.subquery())) or 0
    )


def max_rows() -> int:
    """Return the most rows one export may hold (``EXPORT_MAX_ROWS``)."""
    return int(current_app.config.get("EXPORT_MAX_ROWS") or DEFAULT_MAX_ROWS)


def start_case_export(
    user: User, filters: CaseFilters, *, channel: str, now: datetime
) -> CaseExport:
    """Check an export, read the ids of its cases and record it in the audit log.

    :param channel: ``page`` or ``api`` (recorded).
    :raise PermissionDenied: for roles that export nothing, and for personal
        data asked by anyone but a regulator.
    :raise ValidationError: (field ``_schema``) above :func:`max_rows` cases.
    :return: the export; the caller commits, then streams :func:`csv_chunks`.
    """
    scope = export_scope(user)
    if filters.personal and user.role != Role.regulator.value:
        raise PermissionDenied(
            _l("Only regulators may export consumers' personal data."),
            code="personal_data_not_allowed",
        )
    limit = max_rows()
    ids = list(db.session.scalars(matching_cases(user, filters).limit(limit + 1)))
    if len(ids) > limit:
        raise ValidationError(
            _l(
                "More than %(n)d cases match; narrow the filters (a shorter "
                "period, for example).",
                n=limit,
            ),
            code="too_many_rows",
        )
    record_audit(
        user,
        "export.cases",
        object_type="export",
        details={
            "filters": filters.describe(),
            "rows": len(ids),
            "personal_data": filters.personal,
            "scope": scope,
            "channel": channel,
        },
        now=now,
    )
    db.session.flush()
    return CaseExport(user_id=user.id, scope=scope, filters=filters, ids=ids, at=now)


# Writing the CSV ------------------------------------------------------------


def filename(export: CaseExport) -> str:
    """Return the download's name: ``cases-YYYYMMDD-HHMM.csv`` in local time
    (``cases-personal-...`` with personal data)."""
    stamp = (export.at or datetime.now().astimezone()).astimezone(_zone())
    kind = "cases-personal" if export.filters.personal else "cases"
    return f"{kind}-{stamp:%Y%m%d-%H%M}.csv"


def _yuan(fen: int | None) -> str:
    if fen is None:
        return ""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(int(fen)), 100)
    return f"{sign}{whole}.{cents:02d}"


def _local(value: datetime | None, zone: ZoneInfo) -> str:
    if value is None:
        return ""
    return value.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")


def _text(value: Any) -> str:
    """Text cell: empty for None; a leading ``= + - @`` (a spreadsheet formula)
    is neutralised with an apostrophe."""
    if value is None:
        return ""
    text = str(value)
    if text and text[0] in "=+-@\t\r":
        return "'" + text
    return text


def _outcome_label(outcome: str | None) -> str:
    if not outcome:
        return ""
    if outcome in OUTCOME:
        return str(OUTCOME[outcome])
    return str(STATUS.get(outcome, outcome))


def _rows(export: CaseExport, ids: list[int]) -> list[list[Any]]:
    """Return the CSV rows of these cases (in the order of ``ids``)."""
    merchant = aliased(Merchant)
    platform = aliased(Merchant)
    mediator = aliased(User)
    arbitrator = aliased(User)
    consumer = aliased(User)
    query = (
        db.select(
            Case,
            merchant,
            platform,
            mediator.name,
            arbitrator.name,
            consumer,
        )
        .outerjoin(merchant, merchant.id == Case.merchant_id)
        .outerjoin(platform, platform.id == Case.platform_id)
        .outerjoin(mediator, mediator.id == Case.mediator_id)
        .outerjoin(arbitrator, arbitrator.id == Case.arbitrator_id)
        .join(consumer, consumer.id == Case.consumer_id)
        .where(Case.id.in_(ids))
    )
    found = {row[0].id: row for row in db.session.execute(query)}
    loaded = {
        id(o): o
        for row in found.values()
        for o in (row[0], row[1], row[2], row[5])
        if o is not None
    }
    zone = _zone()
    personal = export.filters.personal
    rows = []
    for case_id in ids:
        if case_id not in found:  # cases are never deleted; be safe anyway
            continue
        case, shop, mall, mediator_name, arbitrator_name, person = found[case_id]
        row = [
            case.reference,
            _local(case.filed_at, zone),
            case.category,
            str(CATEGORY.get(case.category, case.category)),
            case.status,
            str(STATUS.get(case.status, case.status)),
            case.outcome or "",
            _outcome_label(case.outcome),
            shop.id if shop else "",
            _text(shop.name if shop else case.merchant_name),
            shop.uscc if shop else "",
            mall.id if mall else "",
            _text(mall.name) if mall else "",
            shop.region_code if shop else "",
            case.order_date.isoformat(),
            _yuan(case.amount_paid),
            case.amount_paid,
            case.claim_type,
            _yuan(case.claim_amount),
            case.claim_amount,
            _local(case.due_at, zone),
            _local(case.answered_at, zone),
            _local(case.closed_at, zone),
            _text(mediator_name),
            _text(arbitrator_name),
            case.satisfaction if case.satisfaction is not None else "",
        ]
        if personal:
            row += [
                _text(person.name),
                _text(person.email),
                _text(person.phone),
                _text(case.order_ref),
            ]
        rows.append(row)
    # The chunk's objects are not needed again: keep the session small.
    for obj in loaded.values():
        db.session.expunge(obj)
    return rows


def csv_chunks(export: CaseExport) -> Iterator[str]:
    """Yield the export as CSV text: UTF-8 byte-order mark and header first,
    then the rows in chunks (CRLF line ends, as Excel and RFC 4180 expect)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    out.write("\ufeff")
    writer.writerow(export.columns)
    yield out.getvalue()
    for start in range(0, len(export.ids), CHUNK):
        out.seek(0)
        out.truncate()
        writer.writerows(_rows(export, export.ids[start : start + CHUNK]))
        yield out.getvalue()
