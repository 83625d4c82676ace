"""Command-line commands: ``flask --app mediation <command>``."""

from __future__ import annotations

import os

import click
from flask import Flask
from flask.cli import with_appcontext

from mediation import clock
from mediation.extensions import db


def init_app(app: Flask) -> None:
    """Register every command on ``app``."""
    app.cli.add_command(create_user_command)
    app.cli.add_command(serve_command)
    app.cli.add_command(send_pending_mail_command)
    app.cli.add_command(verify_chain_command)
    app.cli.add_command(sweep_command)
    app.cli.add_command(scheduler_command)
    app.cli.add_command(recompute_credit_command)
    from mediation.analytics.stats import rebuild_stats_command

    app.cli.add_command(rebuild_stats_command)
    from mediation.analytics.risk_jobs import (
        refresh_risk_command,
        tagging_report_command,
    )

    app.cli.add_command(refresh_risk_command)
    app.cli.add_command(tagging_report_command)
    from mediation.analytics.alert_jobs import detect_alerts_command
    from mediation.merchants.importer import import_merchants_command
    from mediation.seed import seed_demo_command

    app.cli.add_command(import_merchants_command)
    app.cli.add_command(seed_demo_command)
    app.cli.add_command(detect_alerts_command)


@click.command("create-user")
@click.option("--email", required=True)
@click.option("--password", required=True)
@click.option(
    "--role",
    required=True,
    type=click.Choice(["consumer", "merchant", "mediator", "arbitrator", "regulator"]),
)
@click.option(
    "--merchant",
    "merchant_id",
    type=int,
    default=None,
    help="Merchant id (merchant staff only).",
)
@click.option("--name", default=None)
@click.option("--locale", default="zh_CN", type=click.Choice(["zh_CN", "en"]))
@click.option(
    "--category",
    "categories",
    multiple=True,
    help="A complaint category a mediator handles (repeat; none: all).",
)
@with_appcontext
def create_user_command(email, password, role, merchant_id, name, locale, categories):
    """Create an account and print its id."""
    from mediation.auth.services import create_user
    from mediation.errors import DomainError

    try:
        user = create_user(
            email=email,
            password=password,
            name=name or email.split("@")[0],
            role=role,
            merchant_id=merchant_id,
            locale=locale,
            categories=list(categories),
            now=clock.now_utc(),
        )
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        details = "; ".join(f"{k}: {v}" for k, v in (exc.fields or {}).items())
        raise click.ClickException(
            f"{exc.message}{' (' + details + ')' if details else ''}"
        ) from None
    click.echo(user.id)


@click.command("verify-chain")
@click.argument("case", required=False)
@with_appcontext
def verify_chain_command(case):
    """Check the hash chain of one case (id or reference) or of every case."""
    from mediation.cases.chain import verify_events
    from mediation.cases.models import Case, CaseEvent

    query = db.select(Case.id).order_by(Case.id)
    if case:
        query = db.select(Case.id).where(
            (Case.reference == case)
            | (Case.id == (int(case) if case.isdigit() else -1))
        )
    ids = db.session.scalars(query).all()
    if case and not ids:
        raise click.ClickException(f"no case {case}")
    broken_total = 0
    for case_id in ids:
        events = db.session.scalars(
            db.select(CaseEvent)
            .where(CaseEvent.case_id == case_id)
            .order_by(CaseEvent.seq)
        ).all()
        for link in verify_events(events):
            broken_total += 1
            click.echo(f"case {link.case_id} event {link.seq}: {link.reason}")
    if broken_total:
        raise click.ClickException(
            f"{broken_total} broken link(s) in {len(ids)} case(s)"
        )
    click.echo(f"chain intact: {len(ids)} case(s)")


@click.command("serve")
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=5000, type=int)
@with_appcontext
def serve_command(host: str, port: int) -> None:
    """Serve the app with Socket.IO support (development server, one process)."""
    from flask import current_app

    from mediation.extensions import socketio
    from mediation.sla.scheduler import start_in_process

    app = current_app._get_current_object()
    # Flask ignores app.run() under its own CLI unless this marker is gone.
    os.environ.pop("FLASK_RUN_FROM_CLI", None)
    # The serving process (no reloader) runs the sweep when SCHEDULER_ENABLED.
    start_in_process(app)
    click.echo(f"Serving on http://{host}:{port}")
    socketio.run(
        app,
        host=host,
        port=port,
        debug=False,
        use_reloader=False,
        allow_unsafe_werkzeug=True,
    )


@click.command("send-pending-mail")
@with_appcontext
def send_pending_mail_command() -> None:
    """Send the e-mail of every notification whose mail is still pending."""
    from flask import current_app

    from mediation.notifications.outbox import send_pending

    count = send_pending(current_app._get_current_object())
    click.echo(f"{count} notification e-mail(s) handled")


@click.command("sweep")
@click.option("--batch-size", default=200, type=int, help="Cases per transaction.")
@with_appcontext
def sweep_command(batch_size: int) -> None:
    """Run one SLA sweep now: send due reminders, move overdue cases on."""
    from flask import current_app

    from mediation.sla.sweep import run_sweep

    report = run_sweep(
        current_app._get_current_object(), now=clock.now_utc(), batch_size=batch_size
    )
    for line in report.lines():
        click.echo(line)


@click.command("recompute-credit")
@with_appcontext
def recompute_credit_command() -> None:
    """Rebuild every merchant's credit ledger and standing from the case history."""
    from mediation.credit.ledger import recompute
    from mediation.extensions import db

    counts = recompute(now=clock.now_utc())
    db.session.commit()
    click.echo(
        f"credit recomputed from {counts['cases']} case(s) for "
        f"{counts['merchants']} merchant(s)"
    )


@click.command("scheduler")
@with_appcontext
def scheduler_command() -> None:
    """Run the scheduled jobs in this process: the SLA sweep, webhook deliveries,
    mass-complaint detection, the risk refresh and the dashboard's summaries
    (Ctrl-C stops). Exactly one per deployment."""
    from flask import current_app

    from mediation.sla.scheduler import blocking_scheduler, interval_seconds

    app = current_app._get_current_object()
    scheduler = blocking_scheduler(app)
    jobs = ", ".join(job.name for job in scheduler.get_jobs())
    click.echo(
        f"SLA sweep every {interval_seconds(app)} s; jobs: {jobs}; Ctrl-C stops."
    )
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        pass
