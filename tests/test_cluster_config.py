"""Deployment settings (issue #8, item 1): production refusals, gunicorn.conf.py,
the nginx configuration, and ``make cluster-stop`` stopping only what it started.

Nothing here starts the cluster (tests/test_cluster.py does); ``nginx -t`` checks
the rendered configuration when nginx is installed (required when ``CI=true``).
"""

from __future__ import annotations

import os
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from deploy.cluster import Node, read_pids, render_nginx, stop
from mediation import create_app
from mediation.config import DEV_SECRET_KEY, Config

ROOT = Path(__file__).resolve().parent.parent


# Production refuses what only development may use --------------------------------


class Production(Config):
    SECRET_KEY = "a-real-secret-for-this-test"
    SQLALCHEMY_DATABASE_URI = "postgresql+psycopg://postgres@127.0.0.1:1/none"


def test_production_refuses_sqlite():
    class OnSqlite(Production):
        SQLALCHEMY_DATABASE_URI = "sqlite:///instance/production.db"

    with pytest.raises(RuntimeError, match="ALLOW_SQLITE_IN_PRODUCTION"):
        create_app(OnSqlite)


def test_production_runs_on_sqlite_when_told_explicitly(tmp_path):
    class OnSqlite(Production):
        SQLALCHEMY_DATABASE_URI = f"sqlite:///{tmp_path / 'single.db'}"
        ALLOW_SQLITE_IN_PRODUCTION = True

    assert create_app(OnSqlite).config["ALLOW_SQLITE_IN_PRODUCTION"] is True


def test_production_refuses_the_development_secret_even_on_postgresql():
    class DevKey(Production):
        SECRET_KEY = DEV_SECRET_KEY

    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app(DevKey)


def test_production_starts_on_postgresql_with_a_real_secret():
    app = create_app(Production)  # the database is only reached when used
    assert app.config["ENV_NAME"] == "production"


def test_the_environment_switch_reaches_the_production_check(tmp_path):
    code = (
        "import mediation as m\n"
        "m.create_app({'SQLALCHEMY_DATABASE_URI': "
        f"'sqlite:///{tmp_path / 'p.db'}'}})\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "MEDIATION_ENV": "production", "SECRET_KEY": "s3cret"},
    )
    assert result.returncode != 0
    assert "ALLOW_SQLITE_IN_PRODUCTION" in result.stderr


# gunicorn.conf.py ------------------------------------------------------------------


def test_gunicorn_settings_are_sized_for_the_chat_connections(monkeypatch):
    monkeypatch.setenv("GUNICORN_CONNECTIONS", "300")
    monkeypatch.setenv("GUNICORN_BIND", "127.0.0.1:5007")
    settings = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert settings["worker_class"] == "gthread"
    # One worker per gunicorn: a Socket.IO session lives in one process.
    assert settings["workers"] == 1
    assert settings["threads"] == 300 + settings["SPARE_THREADS"]
    assert settings["worker_connections"] > settings["threads"]
    assert settings["bind"] == ["127.0.0.1:5007"]
    assert settings["wsgi_app"] == "mediation:create_app()"
    assert settings["control_socket_disable"] is True


def test_gunicorn_defaults(monkeypatch):
    for name in ("GUNICORN_CONNECTIONS", "GUNICORN_BIND", "GUNICORN_GRACEFUL_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    settings = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert settings["threads"] == 200 + settings["SPARE_THREADS"]
    assert settings["bind"] == ["127.0.0.1:5000"]
    assert settings["graceful_timeout"] == 10


# nginx -------------------------------------------------------------------------------


def _nginx() -> str:
    found = shutil.which("nginx") or (
        "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None
    )
    if not found:
        message = "nginx is not installed: apt-get install nginx-light"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return found


def test_the_nginx_configuration_pins_by_cookie_and_falls_back(tmp_path):
    nodes = [Node("app1", 5101), Node("app2", 5102), Node("web3", 5001, "10.0.0.3")]
    conf = render_nginx(listen="127.0.0.1:8123", nodes=nodes, run_dir=tmp_path)
    # Each node: its own upstream, the others as backups.
    assert "upstream odr_app1 {" in conf
    assert "server 127.0.0.1:5101 max_fails=1 fail_timeout=5s;" in conf
    assert "server 10.0.0.3:5001 max_fails=1 fail_timeout=5s backup;" in conf
    assert "        web3 odr_web3;" in conf
    assert "least_conn;" in conf
    assert f"pid {tmp_path.resolve()}/nginx.pid;" in conf
    assert "@@" not in conf.replace("@@...@@", "")
    assert "Secure" not in conf
    secure = render_nginx(
        listen="443", nodes=nodes, run_dir=tmp_path, cookie_secure=True
    )
    assert "SameSite=Lax; Secure" in secure

    nginx = _nginx()
    for sub in ("logs", "temp"):
        (tmp_path / sub).mkdir()
    (tmp_path / "nginx.conf").write_text(conf)
    result = subprocess.run(
        [
            nginx,
            "-t",
            "-p",
            str(tmp_path),
            "-c",
            str(tmp_path / "nginx.conf"),
            "-e",
            str(tmp_path / "logs" / "error.log"),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr


# Stopping by pid file ----------------------------------------------------------------


def _sleeper(*words: str) -> subprocess.Popen:
    """A process that sleeps, with ``words`` in its command line."""
    return subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)", *words],
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )


def test_cluster_stop_stops_only_what_its_pid_files_name(tmp_path):
    pids = tmp_path / "pids"
    pids.mkdir()
    ours = _sleeper("gunicorn", "-b", "127.0.0.1:1")
    stranger = _sleeper("something-else")
    try:
        (pids / "app1.pid").write_text(f"{ours.pid}\n")
        # A pid file whose pid now belongs to another program (pid reuse).
        (pids / "app2.pid").write_text(f"{stranger.pid}\n")
        # A pid file left by a process that is gone.
        gone = _sleeper("gunicorn")
        gone.kill()
        gone.wait()
        (pids / "scheduler.pid").write_text(f"{gone.pid}\n")
        assert read_pids(tmp_path) == {
            "app1": ours.pid,
            "app2": None,
            "scheduler": None,
        }

        report = stop(tmp_path)

        assert ours.wait(timeout=30) is not None  # stopped
        assert stranger.poll() is None  # left alone
        assert report == [
            f"app1: stopped (pid {ours.pid})",
            f"app2: no gunicorn with pid {stranger.pid} (stale pid file removed)",
            f"scheduler: no scheduler with pid {gone.pid} (stale pid file removed)",
        ]
        assert list(pids.iterdir()) == []
        assert stop(tmp_path) == []
    finally:
        for process in (ours, stranger):
            if process.poll() is None:
                process.kill()
                process.wait()
