"""Credit API."""

from __future__ import annotations

from mediation.api import bp  # noqa: F401
