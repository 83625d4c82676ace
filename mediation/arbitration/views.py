"""The arbitrators' workspace and the case file (pages)."""

from __future__ import annotations

from mediation.arbitration import bp  # noqa: F401
