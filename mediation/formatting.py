"""Template helpers: money in yuan, times in the user's zone, translated labels."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from flask import Flask, current_app
from flask_babel import format_datetime as babel_datetime

from mediation import labels


def yuan(fen: int | None) -> str:
    """Format integer fen as ``¥1,234.50``."""
    if fen is None:
        return ""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(int(fen)), 100)
    return f"{sign}¥{whole:,}.{cents:02d}"


def fen_to_yuan_input(fen: int | None) -> str:
    """Format fen for an input box (``1234.50``)."""
    if fen is None:
        return ""
    whole, cents = divmod(int(fen), 100)
    return f"{whole}.{cents:02d}"


def local_time(value: datetime | date | None, fmt: str = "yyyy-MM-dd HH:mm") -> str:
    """Show a UTC datetime in the platform's time zone."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        zone = ZoneInfo(current_app.config["TIME_ZONE"])
        return babel_datetime(value.astimezone(zone).replace(tzinfo=None), fmt)
    return value.isoformat()


def _context() -> dict:
    from flask_babel import get_locale
    from flask_login import current_user

    def unread_notifications() -> int:
        from mediation.notifications.services import unread_count

        if not current_user.is_authenticated:
            return 0
        return unread_count(current_user)

    locale = get_locale()
    current = "en" if locale is not None and locale.language == "en" else "zh_CN"
    return {"current_locale": current, "unread_notifications": unread_notifications}


def init_app(app: Flask) -> None:
    """Register the filters and label tables for templates."""
    app.context_processor(_context)
    app.jinja_env.filters["yuan"] = yuan
    app.jinja_env.filters["yuan_input"] = fen_to_yuan_input
    app.jinja_env.filters["localtime"] = local_time
    app.jinja_env.globals.update(
        STATUS_LABELS=labels.STATUS,
        CATEGORY_LABELS=labels.CATEGORY,
        REMEDY_LABELS=labels.REMEDY,
        KIND_LABELS=labels.MERCHANT_KIND,
        ROLE_LABELS=labels.ROLE,
        ACTION_LABELS=labels.ACTION,
    )
