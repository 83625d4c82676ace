"""The scheduled job that derives the dashboard's monthly summaries.

An adapter in the house style: it reads the clock and, per month due (never
summarized, or marked stale by a late change), calls
:func:`mediation.analytics.stats_summaries.summarize_month` and commits. A month
that is current is left alone, so a run with nothing to do costs two small
queries; two schedulers by mistake wait for each other on the month's row and
the second finds nothing to do.
"""

from __future__ import annotations

import logging

from apscheduler.schedulers.base import BaseScheduler
from flask import Flask

from mediation import clock
from mediation.analytics import stats_summaries as summaries
from mediation.extensions import db
from mediation.jobs import add_interval_job, config_seconds

logger = logging.getLogger(__name__)

#: Stable id of the scheduled job: re-adding it replaces it.
JOB_ID = "stats-summaries"
DEFAULT_INTERVAL_SECONDS = 900


def summarize_months(*, now=None) -> summaries.SummaryReport:
    """Derive the summaries of every month due, one commit per month.

    :param now: the time (UTC; default: the clock now).
    """
    now = now or clock.now_utc()
    report = summaries.SummaryReport()
    for month in summaries.months_due(now=now):
        try:
            changed = summaries.summarize_month(month, now=now)
            db.session.commit()
        except Exception:
            db.session.rollback()
            raise
        report.months.append(month)
        if changed:
            report.changed.append(month)
        logger.info(
            "monthly statistics summarized",
            extra={"month": month.isoformat(), "changed": changed},
        )
    return report


def summary_job(app: Flask) -> summaries.SummaryReport | None:
    """The scheduled job (errors are logged, not raised)."""
    with app.app_context():
        try:
            return summarize_months()
        except Exception:
            logger.exception("monthly statistics summaries failed")
            return None
        finally:
            db.session.remove()


def add_summary_job(scheduler: BaseScheduler, app: Flask) -> None:
    """Add the summary job to ``scheduler`` (``STATS_SUMMARY_INTERVAL_SECONDS``,
    default 900; :mod:`mediation.jobs`)."""
    add_interval_job(
        scheduler,
        app,
        summary_job,
        job_id=JOB_ID,
        name="Dashboard monthly summaries",
        seconds=config_seconds(
            app, "STATS_SUMMARY_INTERVAL_SECONDS", DEFAULT_INTERVAL_SECONDS
        ),
    )
