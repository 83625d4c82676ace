"""The APScheduler jobs: the SLA sweep and the periodic work beside it.

The scheduler runs in exactly one process per deployment (STYLE.md rule 8):
either its own (``flask --app mediation scheduler``, a BlockingScheduler) or,
for a single-process deployment, inside the server (``SCHEDULER_ENABLED=1``, a
BackgroundScheduler started by :func:`start_in_process`). Deadlines live in the
database and the sweep is idempotent, so a second scheduler by mistake costs
work, not correctness.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from flask import Flask

from mediation import clock
from mediation.analytics.alert_jobs import add_alert_job
from mediation.analytics.risk_jobs import add_risk_job
from mediation.analytics.stats_jobs import add_summary_job
from mediation.credit.webhooks import delivery_job
from mediation.jobs import add_interval_job, config_seconds
from mediation.sla.sweep import SweepReport, run_sweep

logger = logging.getLogger(__name__)

#: Stable id: re-adding the job replaces it instead of doubling it.
JOB_ID = "sla-sweep"
DEFAULT_INTERVAL_SECONDS = 30
#: The webhook deliveries: a job of their own, so that a slow receiver never
#: holds up the sweep.
WEBHOOK_JOB_ID = "webhook-delivery"
DEFAULT_WEBHOOK_INTERVAL_SECONDS = 15

_lock = threading.Lock()
_in_process: BackgroundScheduler | None = None


def sweep_job(app: Flask) -> SweepReport:
    """Run one sweep now (the scheduled job)."""
    report = run_sweep(app, now=clock.now_utc())
    if report.reminded or report.steps or report.failed:
        for line in report.lines():
            logger.info(line)
    return report


def interval_seconds(app: Flask) -> int:
    """Return the sweep interval from ``SWEEP_INTERVAL_SECONDS`` (default 30)."""
    return config_seconds(app, "SWEEP_INTERVAL_SECONDS", DEFAULT_INTERVAL_SECONDS)


def add_sweep_job(scheduler: BaseScheduler, app: Flask) -> None:
    """Add the sweep job to ``scheduler`` (:mod:`mediation.jobs`)."""
    add_interval_job(
        scheduler,
        app,
        sweep_job,
        job_id=JOB_ID,
        name="SLA sweep",
        seconds=interval_seconds(app),
    )


def add_webhook_job(scheduler: BaseScheduler, app: Flask) -> None:
    """Add the webhook delivery job (``WEBHOOK_INTERVAL_SECONDS``, default 15)."""
    add_interval_job(
        scheduler,
        app,
        delivery_job,
        job_id=WEBHOOK_JOB_ID,
        name="Webhook deliveries",
        seconds=config_seconds(
            app, "WEBHOOK_INTERVAL_SECONDS", DEFAULT_WEBHOOK_INTERVAL_SECONDS
        ),
    )


def add_all_jobs(scheduler: BaseScheduler, app: Flask) -> None:
    """Add every periodic job: the SLA sweep, webhook deliveries, the risk
    refresh, mass-complaint detection and the dashboard's monthly summaries."""
    add_sweep_job(scheduler, app)
    add_webhook_job(scheduler, app)
    add_risk_job(scheduler, app)
    add_alert_job(scheduler, app)
    add_summary_job(scheduler, app)


def blocking_scheduler(app: Flask) -> BlockingScheduler:
    """Return a BlockingScheduler with every job (the ``scheduler`` command)."""
    scheduler = BlockingScheduler(timezone=UTC)
    add_all_jobs(scheduler, app)
    return scheduler


def start_in_process(app: Flask) -> BackgroundScheduler | None:
    """Start the sweep in a background thread of this process, once per process.

    :return: the running scheduler, or None when the config does not ask for it
        (``SCHEDULER_ENABLED`` off) or the app is under test.
    """
    global _in_process
    if app.testing or not app.config.get("SCHEDULER_ENABLED"):
        return None
    with _lock:
        if _in_process is None:
            scheduler = BackgroundScheduler(timezone=UTC, daemon=True)
            add_all_jobs(scheduler, app)
            scheduler.start()
            _in_process = scheduler
            logger.info(
                "in-process SLA scheduler started",
                extra={"interval": interval_seconds(app)},
            )
        return _in_process
