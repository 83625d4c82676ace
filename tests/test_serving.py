"""Process settings of a serving worker (gunicorn.conf.py)."""

from __future__ import annotations

import gc
import runpy
from pathlib import Path

from mediation.serving import GC_THRESHOLDS, tune_garbage_collector

ROOT = Path(__file__).resolve().parent.parent


def test_the_worker_freezes_what_start_up_made_and_collects_less_often():
    before = gc.get_threshold()
    try:
        gc.unfreeze()
        survivor = [["made at start-up"]]  # lists are always tracked
        assert any(o is survivor for o in gc.get_objects())
        tune_garbage_collector()
        assert gc.get_threshold() == GC_THRESHOLDS
        assert GC_THRESHOLDS[0:2] == (700, 10)  # young collections unchanged
        assert gc.get_freeze_count() > 0
        # What lived at start-up is out of the collector's sight.
        assert not any(o is survivor for o in gc.get_objects())
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def test_gunicorn_runs_it_once_the_worker_has_the_app():
    settings = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    before = gc.get_threshold()
    try:
        gc.unfreeze()
        settings["post_worker_init"](object())
        assert gc.get_threshold() == GC_THRESHOLDS
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
