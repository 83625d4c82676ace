"""Translated labels of the risk list, warning interviews and text flags, and
the wording of the risk model generated from its dictionary (pages read these;
the stored rows keep the codes)."""

from __future__ import annotations

from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from mediation import labels
from mediation.analytics import risk_model
from mediation.credit.labels import EVENT_KIND

FACTOR = {
    "complaints_recent": _l("Complaints, short window"),
    "complaints_long": _l("Complaints, long window"),
    "trend": _l("Trend"),
    "categories": _l("Category weight"),
    "sla_breaches": _l("Missed merchant deadlines"),
    "noncompliance": _l("Non-compliance"),
    "credit": _l("Credit grade"),
}

LEVEL = {
    "high": _l("High risk"),
    "elevated": _l("Elevated risk"),
    "watch": _l("Under watch"),
    "low": _l("Low risk"),
}

TREND = {
    "up": _l("Rising"),
    "down": _l("Falling"),
    "flat": _l("Steady"),
}
TREND_ARROW = {"up": "↑", "down": "↓", "flat": "→"}

INTERVIEW_STATUS = {
    "planned": _l("Interview planned"),
    "held": _l("Interview held"),
    "cancelled": _l("Interview cancelled"),
}

FLAG_STATUS = {
    "pending": _l("Waiting for review"),
    "confirmed": _l("Confirmed by a regulator"),
    "dismissed": _l("Dismissed"),
    "obsolete": _l("No longer applies"),
}

#: Why the system retired a pending flag.
OBSOLETE_REASON = {
    "text_changed": _l("The amended text no longer points to this category."),
    "category_now_chosen": _l("The consumer amended the complaint to this category."),
}

#: Missed SLA stages (``expire`` events counted as breaches).
STAGE = {
    "fulfilment": _l("Fulfilment deadline passed"),
    "awaiting_merchant": _l("Answer deadline passed"),
    "awaiting_platform": _l("Platform's answer deadline passed"),
}


def breach_label(kind: str) -> str:
    """Name a breach or non-compliance row (a credit kind or ``expire:<stage>``)."""
    if kind.startswith("expire:"):
        stage = kind.split(":", 1)[1]
        return str(STAGE.get(stage, stage))
    return str(EVENT_KIND.get(kind, kind))


def _number(value: float) -> str:
    return f"{value:g}"


def describe_factors(model: dict[str, Any]) -> list[dict[str, Any]]:
    """Return each factor of the model with its rule in words (the risk page)."""
    windows = model["windows"]
    conf = model["factors"]
    credit = model["credit"]
    recent, long = int(windows["recent_days"]), int(windows["long_days"])
    texts = {
        "complaints_recent": _(
            "%(points)s points per complaint filed in the last %(days)d days.",
            points=_number(conf["complaints_recent"]["points"]),
            days=recent,
        ),
        "complaints_long": _(
            "%(points)s points per complaint filed in the last %(days)d days.",
            points=_number(conf["complaints_long"]["points"]),
            days=long,
        ),
        "trend": _(
            "%(points)s points per complaint more in the last %(days)d days than "
            "in the %(days)d days before (a falling trend adds nothing).",
            points=_number(conf["trend"]["points"]),
            days=recent,
        ),
        "categories": _(
            "%(points)s points per unit of category weight of the complaints of "
            "the last %(days)d days; a complaint weighs as its heaviest category, "
            "as filed or as confirmed from its text.",
            points=_number(conf["categories"]["points"]),
            days=long,
        ),
        "sla_breaches": _(
            "%(points)s points per merchant deadline missed in the last %(days)d "
            "days (answers not given in time, fulfilment deadlines passed).",
            points=_number(conf["sla_breaches"]["points"]),
            days=long,
        ),
        "noncompliance": _(
            "%(points)s points per settlement or award not fulfilled in the last "
            "%(days)d days.",
            points=_number(conf["noncompliance"]["points"]),
            days=int(windows["noncompliance_days"]),
        ),
        "credit": _(
            "Points of the credit grade (%(grades)s), plus %(listed)s on the "
            "dishonesty list.",
            grades=", ".join(
                f"{grade} {_number(float(points))}"
                for grade, points in credit["grades"].items()
            ),
            listed=_number(float(credit["listed"])),
        ),
    }
    return [
        {
            "name": name,
            "label": FACTOR[name],
            "rule": texts[name],
            "cap": _number(float(conf[name]["cap"])),
        }
        for name in risk_model.FACTORS
    ]


def describe_weights(model: dict[str, Any]) -> list[tuple[str, str]]:
    """Return ``(category label, weight)`` of the weighted categories, heaviest
    first."""
    weights = sorted(
        model["category_weights"].items(), key=lambda item: (-float(item[1]), item[0])
    )
    return [
        (str(labels.CATEGORY.get(code, code)), _number(float(weight)))
        for code, weight in weights
    ]


def describe_levels(model: dict[str, Any]) -> list[tuple[str, str]]:
    """Return ``(level label, minimum score)`` of the model's levels."""
    return [
        (str(LEVEL.get(name, name)), _number(float(minimum)))
        for name, minimum in model["levels"]
    ]
