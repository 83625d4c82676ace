"""Credit pages."""

from __future__ import annotations

from mediation.credit import bp  # noqa: F401
