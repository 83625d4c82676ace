"""The award as a printable page and as a PDF."""

from __future__ import annotations

from mediation.arbitration import bp  # noqa: F401
