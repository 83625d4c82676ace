"""The audit log page ``/supervision/audit`` (regulators only): newest first,
filtered by actor, action, object and period, with each entry's details."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, or_
from sqlalchemy.orm import selectinload

from mediation.analytics import bp
from mediation.analytics.audit_models import AuditEntry
from mediation.api.common import page_arg
from mediation.auth.models import Role, User
from mediation.auth.permissions import require_role
from mediation.cases.views import signed_in
from mediation.extensions import db

#: Entries per page.
PER_PAGE = 50
_ID_MAX = 2**31 - 1

#: What the known actions mean (others show their code).
ACTION_LABELS = {
    "warning.create": _l("Wrote a consumer warning (draft)"),
    "warning.update": _l("Changed a draft consumer warning"),
    "warning.publish": _l("Published a consumer warning"),
    "warning.withdraw": _l("Withdrew a consumer warning"),
    "warning.discard": _l("Deleted a draft consumer warning"),
    "export.cases": _l("Exported cases as CSV"),
    "case.link_merchant": _l("Linked a complaint to a registered merchant"),
    "case.dismiss": _l("Dismissed a complaint"),
    "case.reassign": _l("Reassigned a case"),
    "case.decide_objection": _l("Decided an objection to an arbitrator"),
    "credit_repair.approve": _l("Approved a credit repair application"),
    "credit_repair.refuse": _l("Refused a credit repair application"),
    "merchant.create": _l("Registered a merchant"),
    "merchant.update": _l("Changed a registry entry"),
    "merchant.import": _l("Imported merchants from a file"),
    "user.create": _l("Created a staff account"),
    "claim.approve": _l("Approved a merchant-staff claim"),
    "claim.reject": _l("Rejected a merchant-staff claim"),
    # The other parts of supervision (issue #7).
    "alert.raise": _l("Mass-complaint alert raised"),
    "alert.resolve": _l("Resolved a mass-complaint alert"),
    "alert.dismiss": _l("Dismissed a mass-complaint alert"),
    "group.create": _l("Grouped complaints"),
    "group.add": _l("Added complaints to a group"),
    "group.remove": _l("Removed a complaint from a group"),
    "group.mediator": _l("Named the mediator of a group"),
    "interview.plan": _l("Planned a warning interview"),
    "interview.held": _l("Recorded a warning interview"),
    "interview.cancel": _l("Cancelled a warning interview"),
    "tagging.confirm": _l("Confirmed a text flag"),
    "tagging.dismiss": _l("Dismissed a text flag"),
}

#: What the object types are called.
OBJECT_LABELS = {
    "warning": _l("Consumer warning"),
    "export": _l("Export"),
    "case": _l("Case"),
    "credit_repair": _l("Credit repair application"),
    "merchant": _l("Merchant"),
    "user": _l("Account"),
    "claim": _l("Merchant-staff claim"),
    "alert": _l("Mass-complaint alert"),
    "group": _l("Case group"),
    "text_flag": _l("Text flag"),
}


#: What the keys of the details mean (others show their code).
DETAIL_LABELS = {
    "title": _l("Title"),
    "category": _l("Category"),
    "merchant_ids": _l("Merchants named"),
    "reason": _l("Reason"),
    "reference": _l("Reference"),
    "from_status": _l("Status before"),
    "to_status": _l("Status after"),
    "event_seq": _l("Timeline entry"),
    "event_hash": _l("Timeline hash"),
    "filters": _l("Filters"),
    "rows": _l("Rows"),
    "personal_data": _l("Personal data"),
    "scope": _l("Scope"),
    "channel": _l("Channel"),
    "merchant_id": _l("Merchant no."),
    "merchant_name": _l("Merchant"),
    "user_id": _l("Account no."),
    "decision": _l("What was decided"),
    "changed": _l("Changed"),
    "before": _l("Before"),
    "after": _l("After"),
    "file": _l("File"),
    "imported": _l("Rows imported"),
    "rejected": _l("Rows refused"),
    "note": _l("Note"),
    "event_ids": _l("Credit events"),
    "performance_verified": _l("Performance checked"),
}


def detail_label(key: str) -> str:
    """Return the label of a (dotted) details key: each known part translated."""
    return " · ".join(str(DETAIL_LABELS.get(part, part)) for part in key.split("."))


@bp.app_template_global("audit_action_label")
def action_label(action: str) -> str:
    """Return the label of an audit action (its code when unknown)."""
    return str(ACTION_LABELS.get(action, action))


def object_label(object_type: str) -> str:
    """Return the label of an object type (its code when unknown)."""
    return str(OBJECT_LABELS.get(object_type, object_type))


def object_link(entry: AuditEntry) -> str | None:
    """Return the page of the object an entry is about, when there is one."""
    if entry.object_id is None:
        return None
    endpoints = {
        "warning": ("analytics.warning_manage", "warning_id"),
        "case": ("cases.detail", "case_id"),
        "credit_repair": ("credit.repair_detail", "repair_id"),
        "merchant": ("merchants.detail", "merchant_id"),
        "alert": ("analytics.alert_detail", "alert_id"),
        "group": ("analytics.group_detail", "group_id"),
        "text_flag": ("analytics.flag_detail", "flag_id"),
    }
    if entry.object_type not in endpoints:
        return None
    endpoint, name = endpoints[entry.object_type]
    try:
        return url_for(endpoint, **{name: entry.object_id})
    except Exception:  # an endpoint renamed elsewhere must not break the log
        return None


def flatten(details: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Return ``(key, text)`` pairs of an entry's details, nested keys dotted."""
    pairs: list[tuple[str, str]] = []
    if isinstance(details, dict):
        for key, value in details.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(value, dict) and value:
                pairs.extend(flatten(value, name))
            else:
                pairs.append((name, _text(value)))
    else:
        pairs.append((prefix or "value", _text(details)))
    return pairs


def _text(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "✓" if value else "✗"
    if isinstance(value, (list, tuple)):
        return ", ".join(_text(v) for v in value) if value else "—"
    if isinstance(value, dict):
        return "—"
    return str(value)


def _day(raw: str | None) -> date | None:
    try:
        return date.fromisoformat(raw) if raw else None
    except ValueError:
        return None


def _filters() -> tuple[dict[str, Any], dict[str, Any]]:
    """Read the page's filters; return them and the errors of the bad ones."""
    args = request.args
    errors: dict[str, Any] = {}
    values: dict[str, Any] = {
        "actor": (args.get("actor") or "").strip()[:100],
        "action": (args.get("action") or "").strip()[:60],
        "object_type": (args.get("object_type") or "").strip()[:40],
        "object_id": None,
        "from": None,
        "to": None,
    }
    raw_id = (args.get("object_id") or "").strip()
    if raw_id:
        if raw_id.isascii() and raw_id.isdigit() and 0 < int(raw_id) <= _ID_MAX:
            values["object_id"] = int(raw_id)
        else:
            errors["object_id"] = _l("Enter a whole number.")
    for name in ("from", "to"):
        raw = (args.get(name) or "").strip()
        values[name] = _day(raw)
        if raw and values[name] is None:
            errors[name] = _l("Enter a date as YYYY-MM-DD.")
    if values["from"] and values["to"] and values["from"] > values["to"]:
        errors["to"] = _l("The end of the period is before its start.")
    return values, errors


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_")


def entries(values: dict[str, Any]) -> Select:
    """Return a SELECT of the audit entries matching the filters, newest first."""
    query = db.select(AuditEntry).options(selectinload(AuditEntry.actor))
    actor = values.get("actor")
    if actor:
        if actor.lower() in ("system", str(_l("System")).lower()):
            query = query.where(AuditEntry.actor_id.is_(None))
        else:
            like = "%" + _escape(actor) + "%"
            ids = db.select(User.id).where(
                or_(
                    User.name.ilike(like, escape="\\"),
                    User.email.ilike(like, escape="\\"),
                )
            )
            query = query.where(AuditEntry.actor_id.in_(ids))
    if values.get("action"):
        query = query.where(
            AuditEntry.action.startswith(values["action"], autoescape=True)
        )
    if values.get("object_type"):
        query = query.where(AuditEntry.object_type == values["object_type"])
    if values.get("object_id") is not None:
        query = query.where(AuditEntry.object_id == values["object_id"])
    zone = ZoneInfo(current_app.config["TIME_ZONE"])
    if values.get("from"):
        query = query.where(
            AuditEntry.at >= datetime.combine(values["from"], time.min, zone)
        )
    if values.get("to"):
        end = datetime.combine(values["to"] + timedelta(days=1), time.min, zone)
        query = query.where(AuditEntry.at < end)
    return query.order_by(AuditEntry.at.desc(), AuditEntry.id.desc())


@bp.get("/supervision/audit")
@signed_in
def audit_log():
    """The audit log of regulators' actions and of data exports (regulators)."""
    require_role(Role.regulator)
    values, errors = _filters()
    query = entries({k: v for k, v in values.items() if k not in errors})
    page = db.paginate(query, page=page_arg(), per_page=PER_PAGE, error_out=False)
    object_types = sorted(
        set(db.session.scalars(db.select(AuditEntry.object_type).distinct()))
        | set(OBJECT_LABELS)
    )
    args = {
        k: request.args.get(k)
        for k in ("actor", "action", "object_type", "object_id", "from", "to")
        if request.args.get(k)
    }
    return render_template(
        "analytics/audit.html",
        page=page,
        values=values,
        errors={k: str(v) for k, v in errors.items()},
        args=args,
        object_types=[(t, object_label(t)) for t in object_types],
        action_labels=ACTION_LABELS,
        object_label=object_label,
        object_link=object_link,
        flatten=flatten,
        detail_label=detail_label,
    ), (422 if errors else 200)
