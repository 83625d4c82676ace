"""How every periodic job is added to the scheduler (one place for its settings).

A missed run is never dropped (``misfire_grace_time=None``: APScheduler's
default of 1 s drops runs silently), missed runs collapse into one
(``coalesce``), runs never overlap (``max_instances=1``), re-adding a job
replaces it instead of doubling it (a stable id), and the first run is right
away.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from apscheduler.schedulers.base import BaseScheduler
from flask import Flask

from mediation import clock


def config_seconds(app: Flask, key: str, default: int) -> int:
    """Return the interval in ``app.config[key]`` (``default`` when unset; 1 s
    at least)."""
    return max(1, int(app.config.get(key) or default))


def add_interval_job(
    scheduler: BaseScheduler,
    app: Flask,
    func: Callable[[Flask], Any],
    *,
    job_id: str,
    name: str,
    seconds: int,
) -> None:
    """Add ``func(app)`` to ``scheduler``, every ``seconds``, with the settings
    of this module."""
    scheduler.add_job(
        func,
        "interval",
        seconds=seconds,
        args=[app],
        id=job_id,
        name=name,
        replace_existing=True,
        misfire_grace_time=None,
        coalesce=True,
        max_instances=1,
        next_run_time=clock.now_utc(),
    )
