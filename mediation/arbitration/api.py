"""The award document through the API (GET /api/v1/cases/{id}/award)."""

from __future__ import annotations

from mediation.api import bp  # noqa: F401
