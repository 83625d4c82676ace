"""Recording regulator actions in the audit log (services call :func:`record_audit`)."""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Any

from mediation.analytics.audit_models import AuditEntry
from mediation.auth.models import User
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
