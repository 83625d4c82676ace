"""The risk list's scheduled refresh and the commands of this part of supervision:
``flask refresh-risk`` and ``flask tagging-report``.

Adapters in the house style: they read the clock, call one service and commit.
The refresh only writes what changed, so running it twice (or a second
scheduler by mistake) changes nothing; on PostgreSQL a transaction-level
advisory lock makes two refreshes at once wait for each other.
"""

from __future__ import annotations

import json
import logging

import click
from apscheduler.schedulers.base import BaseScheduler
from flask import Flask
from flask.cli import with_appcontext

from mediation import clock
from mediation.analytics import risk, tagging, tagging_report
from mediation.extensions import db
from mediation.jobs import add_interval_job, config_seconds

logger = logging.getLogger(__name__)

#: Stable id of the scheduled job: re-adding it replaces it.
JOB_ID = "risk-refresh"
DEFAULT_INTERVAL_SECONDS = 900
#: Key of the PostgreSQL advisory lock held while the list is refreshed.
ADVISORY_LOCK_KEY = 7_070_001


def _serialise_refreshes() -> None:
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(
            db.text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY}
        )


def refresh_all() -> risk.RefreshReport:
    """Refresh the whole list now and commit (the job and the command)."""
    try:
        _serialise_refreshes()
        report = risk.refresh_risk_scores(now=clock.now_utc())
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return report


def refresh_job(app: Flask) -> risk.RefreshReport | None:
    """The scheduled job: refresh the risk list (errors are logged, not raised)."""
    with app.app_context():
        try:
            return refresh_all()
        except Exception:
            logger.exception("risk refresh failed")
            return None
        finally:
            db.session.remove()


def add_risk_job(scheduler: BaseScheduler, app: Flask) -> None:
    """Add the risk refresh job to ``scheduler`` (``RISK_REFRESH_INTERVAL_SECONDS``,
    default 900; :mod:`mediation.jobs`)."""
    add_interval_job(
        scheduler,
        app,
        refresh_job,
        job_id=JOB_ID,
        name="Risk list refresh",
        seconds=config_seconds(
            app, "RISK_REFRESH_INTERVAL_SECONDS", DEFAULT_INTERVAL_SECONDS
        ),
    )


@click.command("refresh-risk")
@click.option(
    "--merchant", "merchant_id", type=int, default=None, help="Only this merchant."
)
@with_appcontext
def refresh_risk_command(merchant_id: int | None) -> None:
    """Recompute the stored risk scores of every merchant (or of one)."""
    if merchant_id is None:
        click.echo(refresh_all().line())
        return
    from mediation.merchants.models import Merchant

    if db.session.get(Merchant, merchant_id) is None:
        raise click.ClickException(f"no merchant {merchant_id}")
    row = risk.refresh_merchant_risk(merchant_id, now=clock.now_utc())
    db.session.commit()
    click.echo(
        f"merchant {merchant_id}: risk score {row.score:.1f} ({row.level})"
        if row is not None
        else f"merchant {merchant_id}: risk score 0 (not listed)"
    )


@click.command("tagging-report")
@click.option(
    "--rules",
    "rules_path",
    default=None,
    help="Rule set file (default: TAGGING_RULES or the shipped rules).",
)
@click.option(
    "--data",
    "data_path",
    default=None,
    help="Labelled texts, JSON (default: the demo set).",
)
@click.option("--mistakes", is_flag=True, help="List every wrong or missed flag.")
@click.option("--json", "as_json", is_flag=True, help="Print the numbers as JSON.")
@with_appcontext
def tagging_report_command(rules_path, data_path, mistakes, as_json) -> None:
    """Print the tagging rules' precision and recall on a labelled set."""
    try:
        rules = tagging.load_rules(rules_path) if rules_path else tagging.active_rules()
        items = tagging_report.load_labelled(data_path)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    report = tagging_report.evaluate(items, rules)
    if as_json:
        click.echo(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
        return
    pct = tagging_report.percent
    click.echo(
        f"tagging rules {rules.version or '-'} ({rules.sha256[:12]}) on "
        f"{len(items)} labelled text(s) ({data_path or tagging.DEMO_SET.name})"
    )
    click.echo(
        f"{'category':<20}{'flags':>7}{'right':>7}{'wrong':>7}{'missed':>8}"
        f"{'precision':>11}{'recall':>9}"
    )
    rows = [*report.per_category.items(), ("overall", report.overall)]
    for name, c in rows:
        click.echo(
            f"{name:<20}{c.tp + c.fp:>7}{c.tp:>7}{c.fp:>7}{c.fn:>8}"
            f"{pct(c.precision):>11}{pct(c.recall):>9}"
        )
    if mistakes:
        for outcome in report.mistakes:
            parts = []
            if outcome.false_positives:
                parts.append("wrong: " + ", ".join(sorted(outcome.false_positives)))
            if outcome.false_negatives:
                parts.append("missed: " + ", ".join(sorted(outcome.false_negatives)))
            click.echo(f"{outcome.item.id}: {'; '.join(parts)} | {outcome.item.text}")
