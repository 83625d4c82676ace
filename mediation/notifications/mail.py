"""E-mail over SMTP (logged instead of sent when no MAIL_SERVER is set)."""

from __future__ import annotations

import logging
import smtplib
from email.message import EmailMessage

from flask import current_app

logger = logging.getLogger(__name__)


def send_mail(to: str, subject: str, body: str) -> str:
    """Send one plain-text mail and return ``sent`` or ``logged``.

    :raise smtplib.SMTPException: or ``OSError`` when the server refuses or is down.
    """
    cfg = current_app.config
    if not cfg.get("MAIL_SERVER"):
        logger.info(
            "mail (not sent, no MAIL_SERVER) to=%s subject=%s\n%s", to, subject, body
        )
        return "logged"
    message = EmailMessage()
    message["From"] = cfg["MAIL_SENDER"]
    message["To"] = to
    message["Subject"] = subject
    message.set_content(body)
    with smtplib.SMTP(cfg["MAIL_SERVER"], cfg["MAIL_PORT"], timeout=10) as smtp:
        if cfg.get("MAIL_USE_TLS"):
            smtp.starttls()
        if cfg.get("MAIL_USERNAME"):
            smtp.login(cfg["MAIL_USERNAME"], cfg["MAIL_PASSWORD"] or "")
        smtp.send_message(message)
    return "sent"
