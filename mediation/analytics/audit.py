"""Recording regulator actions in the audit log (services call :func:`record_audit`)."""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Any

from mediation.analytics.audit_models import AuditEntry
from mediation.auth.models import User
from mediation.cases.models import Case, CaseEvent
from mediation.extensions import db

logger = logging.getLogger(__name__)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value


def record_audit(
    actor: User | None,
    action: str,
    *,
    object_type: str,
    object_id: int | None = None,
    details: dict[str, Any] | None = None,
    now: datetime,
) -> AuditEntry:
    """Append an entry to the audit log (added to the session, not committed).

    :param actor: who acted; None for the system.
    :param action: dotted name, e.g. ``alert.resolve`` or ``export.cases``.
    :param object_type: the kind of object acted on (``case``, ``merchant`` ...).
    :param details: particulars worth keeping (reasons, filters, counts).
    """
    entry = AuditEntry(
        actor_id=actor.id if actor is not None else None,
        actor_role=actor.role if actor is not None else "system",
        action=action,
        object_type=object_type,
        object_id=object_id,
        details=_jsonable(details or {}),
        at=now,
    )
    db.session.add(entry)
    logger.info(
        "audit",
        extra={
            "actor_id": entry.actor_id,
            "action": action,
            "object_type": object_type,
            "object_id": object_id,
        },
    )
    return entry


#: Case actions that a regulator takes on a case (the intake queue, dismissals,
#: reassignments, objections to an arbitrator): each lands in the audit log.
REGULATOR_CASE_ACTIONS = frozenset(
    {"link_merchant", "dismiss", "reassign", "decide_objection"}
)
#: What of the timeline event's data the audit entry keeps.
_CASE_DETAIL_KEYS = (
    "reason",
    "merchant_id",
    "merchant_name",
    "user_id",
    "decision",
    "objection_id",
)


def on_case_event(
    case: Case,
    *,
    action: str,
    actor: User | None,
    relation: str,
    from_status: str | None,
    now: datetime,
) -> AuditEntry | None:
    """Record a regulator's case action (called by the supervision case hook).

    The entry names the case, the status change and the timeline event (its
    sequence number and hash) with the particulars of its data.

    :return: the entry, or None when the action is not a regulator's.
    """
    if relation != "regulator" or action not in REGULATOR_CASE_ACTIONS:
        return None
    head = case.__dict__.get("_chain_head")
    event = None
    if head is not None:
        # The event just recorded: still pending, or flushed by a query since.
        event = next(
            (
                obj
                for obj in db.session.new
                if isinstance(obj, CaseEvent)
                and obj.case_id == case.id
                and obj.seq == head[0]
            ),
            None,
        ) or db.session.scalar(
            db.select(CaseEvent).where(
                CaseEvent.case_id == case.id, CaseEvent.seq == head[0]
            )
        )
    data = dict(event.data or {}) if event is not None else {}
    details: dict[str, Any] = {
        "reference": case.reference,
        "from_status": from_status,
        "to_status": case.status,
        **{k: data[k] for k in _CASE_DETAIL_KEYS if data.get(k) is not None},
    }
    if head is not None:
        details["event_seq"], details["event_hash"] = head
    return record_audit(
        actor,
        f"case.{action}",
        object_type="case",
        object_id=case.id,
        details=details,
        now=now,
    )
