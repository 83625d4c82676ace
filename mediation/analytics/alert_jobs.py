"""The mass-complaint detection job (scheduler and ``flask detect-alerts``).

An adapter in the house style: it finds the merchants and categories to look
at, runs :func:`mediation.analytics.alerts.detect` for each in its own
transaction (so a key's lock is held only for its own work, and one failing key
spoils no other), and commits. Running it twice, or in two processes at once,
raises nothing twice: each key is decided under its lock.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

import click
from flask import Flask
from flask.cli import with_appcontext

from mediation import clock
from mediation.analytics import alerts
from mediation.analytics.alert_models import AlertSource
from mediation.extensions import db
from mediation.jobs import add_interval_job, config_seconds

logger = logging.getLogger(__name__)

#: Stable id of the scheduled job: re-adding it replaces it.
JOB_ID = "mass-alerts"
DEFAULT_INTERVAL_SECONDS = 300


@dataclass
class DetectionReport:
    """What one run of the detection job did."""

    now: datetime
    #: ``(alert id, merchant id, category, count)`` of each alert raised.
    raised: list[tuple[int, int, str, int]] = field(default_factory=list)
    #: ``(alert id, case ids)`` of complaints that joined an active alert.
    joined: list[tuple[int, list[int]]] = field(default_factory=list)
    #: ``(merchant id, category)`` of keys that failed (logged; tried next run).
    failed: list[tuple[int, str]] = field(default_factory=list)

    def lines(self) -> list[str]:
        """Return a human summary, one line per alert raised or joined."""
        out = [
            f"alert {a} raised: merchant {m}, {c}, {n} complaint(s)"
            for a, m, c, n in self.raised
        ]
        out += [
            f"alert {a}: {len(ids)} complaint(s) joined ({', '.join(map(str, ids))})"
            for a, ids in self.joined
        ]
        out += [f"merchant {m}, {c}: failed (see the log)" for m, c in self.failed]
        out.append(
            f"mass-complaint detection: {len(self.raised)} raised, "
            f"{sum(len(ids) for _a, ids in self.joined)} joined, "
            f"{len(self.failed)} failed"
        )
        return out


def run_detection(app: Flask, *, now: datetime) -> DetectionReport:
    """Apply the alert rule to every merchant and category that needs it.

    :param now: the end of the counting window.
    :return: what was raised and joined.
    """
    report = DetectionReport(now=now)
    with app.app_context():
        try:
            keys = alerts.keys_to_check(now=now)
            db.session.commit()
            for merchant_id, category in keys:
                try:
                    found = alerts.detect(
                        merchant_id, category, now=now, source=AlertSource.job
                    )
                    db.session.commit()
                except Exception:
                    db.session.rollback()
                    logger.exception(
                        "mass-complaint detection failed",
                        extra={"merchant_id": merchant_id, "category": category},
                    )
                    report.failed.append((merchant_id, category))
                    continue
                if found.raised and found.alert is not None:
                    report.raised.append(
                        (found.alert.id, merchant_id, category, found.alert.count)
                    )
                elif found.joined and found.alert is not None:
                    report.joined.append((found.alert.id, found.joined))
        finally:
            db.session.rollback()
    return report


def detection_job(app: Flask) -> DetectionReport:
    """Run the detection now (the scheduled job); log what it did."""
    report = run_detection(app, now=clock.now_utc())
    if report.raised or report.joined or report.failed:
        for line in report.lines():
            logger.info(line)
    return report


def add_alert_job(scheduler, app: Flask) -> None:
    """Add the detection job to ``scheduler`` (``MASS_ALERT_INTERVAL_SECONDS``,
    default 300; :mod:`mediation.jobs`)."""
    add_interval_job(
        scheduler,
        app,
        detection_job,
        job_id=JOB_ID,
        name="Mass-complaint detection",
        seconds=config_seconds(
            app, "MASS_ALERT_INTERVAL_SECONDS", DEFAULT_INTERVAL_SECONDS
        ),
    )


@click.command("detect-alerts")
@with_appcontext
def detect_alerts_command() -> None:
    """Look for mass complaints now (what the scheduler runs every few minutes)."""
    from flask import current_app

    report = run_detection(current_app._get_current_object(), now=clock.now_utc())
    for line in report.lines():
        click.echo(line)
    if report.failed:
        raise click.ClickException(f"{len(report.failed)} key(s) failed")
