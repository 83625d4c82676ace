"""The one time source: every piece of code asks this module for the time.

Tests move time with :func:`freeze` / :func:`advance` instead of sleeping.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

_lock = threading.Lock()
_frozen: datetime | None = None


def now_utc() -> datetime:
    """Return the current time as an aware UTC datetime.

    :return: the frozen time if a test froze the clock, else the wall clock.
    """
    with _lock:
        if _frozen is not None:
            return _frozen
    return datetime.now(UTC)


def today(tz: str | ZoneInfo = "Asia/Shanghai") -> date:
    """Return today's date in the given time zone (default Asia/Shanghai)."""
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    return now_utc().astimezone(zone).date()


def freeze(at: datetime) -> None:
    """Freeze the clock at ``at`` (aware; naive values are taken as UTC)."""
    global _frozen
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    with _lock:
        _frozen = at.astimezone(UTC)


def advance(delta: timedelta) -> datetime:
    """Move a frozen clock forward by ``delta`` and return the new time.

    :raise RuntimeError: if the clock is not frozen.
    """
    global _frozen
    with _lock:
        if _frozen is None:
            raise RuntimeError("advance() needs a frozen clock")
        _frozen = _frozen + delta
        return _frozen


def unfreeze() -> None:
    """Return to the wall clock."""
    global _frozen
    with _lock:
        _frozen = None


@contextmanager
def frozen(at: datetime) -> Iterator[None]:
    """Freeze the clock at ``at`` for the duration of a ``with`` block."""
    freeze(at)
    try:
        yield
    finally:
        unfreeze()
