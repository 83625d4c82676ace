"""The SHA-256 chain of case events: computing and verifying links."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


def event_digest(
    *,
    case_id: int,
    seq: int,
    at: datetime,
    actor_id: int | None,
    actor_role: str,
    action: str,
    from_status: str | None,
    to_status: str,
    data: dict[str, Any],
    prev_hash: str | None,
) -> str:
    """Return the SHA-256 (hex) of an event's canonical JSON, previous hash included."""
    payload = {
        "case_id": case_id,
        "seq": seq,
        "at": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "actor_id": actor_id,
        "actor_role": actor_role,
        "action": action,
        "from_status": from_status,
        "to_status": to_status,
        "data": data,
        "prev_hash": prev_hash,
    }
    blob = json.dumps(
        payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class BrokenLink:
    """One event whose stored hash or link does not match."""

    case_id: int
    seq: int
    reason: str


def verify_events(events: Sequence[Any]) -> list[BrokenLink]:
    """Check the chain of one case's events (in ``seq`` order).

    :param events: CaseEvent rows of a single case, ordered by ``seq``.
    :return: every broken link found; empty when the chain is intact.
    """
    broken: list[BrokenLink] = []
    prev: str | None = None
    for expected_seq, ev in enumerate(events, start=1):
        if ev.seq != expected_seq:
            broken.append(
                BrokenLink(ev.case_id, ev.seq, f"expected seq {expected_seq}")
            )
        if ev.prev_hash != prev:
            broken.append(BrokenLink(ev.case_id, ev.seq, "prev_hash does not link"))
        digest = event_digest(
            case_id=ev.case_id,
            seq=ev.seq,
            at=ev.at,
            actor_id=ev.actor_id,
            actor_role=ev.actor_role,
            action=ev.action,
            from_status=ev.from_status,
            to_status=ev.to_status,
            data=ev.data or {},
            prev_hash=ev.prev_hash,
        )
        if digest != ev.hash:
            broken.append(BrokenLink(ev.case_id, ev.seq, "hash does not match content"))
        prev = ev.hash
    return broken
