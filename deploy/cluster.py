"""A local cluster: nginx, server processes and the scheduler, as deployed.

``make cluster`` / ``make cluster-stop`` run this script; the cluster tests and
``benchmarks/cluster.py`` import it. Everything runs as the current user, with
every file under one run directory (default ``instance/cluster/``)::

    nginx.conf            rendered from deploy/nginx.conf.template
    secret_key            the cluster's SECRET_KEY (made once, mode 0600)
    pids/<node>.pid       gunicorn masters (gunicorn --pid)
    pids/scheduler.pid    flask --app mediation scheduler
    nginx.pid             the nginx master (nginx's own pid file)
    logs/                 one log per process, nginx's access and error logs
    temp/                 nginx's temporary files
    evidence/             EVIDENCE_DIR of every process

``stop`` stops exactly what the pid files name (a pid whose process is gone, or
is not the program the file is for, is left alone) and removes the files.

Usage::

    python deploy/cluster.py start  [--port 8080] [--app-ports 5001,5002]
                                    [--database-url URL] [--redis-url URL]
                                    [--run-dir DIR] [--no-seed]
    python deploy/cluster.py stop   [--run-dir DIR]
    python deploy/cluster.py status [--run-dir DIR]
    python deploy/cluster.py render-nginx --listen 80 \\
        --node app1=10.0.0.11:5001 --node app2=10.0.0.12:5001 \\
        --run-dir /var/lib/mediation-nginx [--cookie-secure]

Defaults come from ``CLUSTER_PORT``, ``CLUSTER_APP_PORTS``,
``CLUSTER_DATABASE_URL``, ``CLUSTER_REDIS_URL`` and ``CLUSTER_RUN_DIR``. Only the
standard library is needed to stop a cluster; starting one uses the project's
virtualenv (gunicorn, flask, SQLAlchemy).
"""

from __future__ import annotations

import argparse
import contextlib
import grp
import http.client
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = Path(__file__).resolve().parent / "nginx.conf.template"
VENV_BIN = Path(sys.executable).parent
DEFAULT_RUN_DIR = ROOT / "instance" / "cluster"
DEFAULT_PORT = 8080
DEFAULT_APP_PORTS = (5001, 5002)
DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/mediation_cluster"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_CHANNEL = "mediation-cluster"
HOST = "127.0.0.1"
#: Bounded waits (seconds).
START_TIMEOUT = 60
STOP_TIMEOUT = 20
CLI_TIMEOUT = 300
#: What each pid file's process must be (a word of its command line).
PROGRAMS = {"nginx": "nginx", "scheduler": "scheduler"}


class ClusterError(RuntimeError):
    """The cluster could not be started or stopped as asked."""


# The shape of a cluster ---------------------------------------------------------


@dataclass(frozen=True)
class Node:
    """One server process: its name (NODE_NAME) and address."""

    name: str
    port: int
    host: str = HOST

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"


@dataclass
class Cluster:
    """What a cluster is made of and where its files go.

    :param env: the environment of every app process and command (database,
        Redis, secret, settings); :meth:`process_env` adds each node's own.
    """

    run_dir: Path
    listen_port: int
    nodes: list[Node]
    env: dict[str, str]
    scheduler: bool = True
    #: Extra gunicorn arguments (e.g. fewer threads in tests).
    gunicorn_args: list[str] = field(default_factory=list)
    _children: dict[str, subprocess.Popen] = field(default_factory=dict, repr=False)

    @property
    def url(self) -> str:
        """The cluster's address: nginx."""
        return f"http://{HOST}:{self.listen_port}"

    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    def pid_file(self, name: str) -> Path:
        if name == "nginx":
            return self.run_dir / "nginx.pid"
        return self.run_dir / "pids" / f"{name}.pid"

    def log_file(self, name: str) -> Path:
        return self.run_dir / "logs" / f"{name}.log"

    def process_env(self, node: Node | None = None) -> dict[str, str]:
        """Return the environment of a process (a node's, or the scheduler's)."""
        env = dict(self.env)
        if node is not None:
            env["NODE_NAME"] = node.name
        else:
            env.pop("NODE_NAME", None)
        return env

    # Starting -----------------------------------------------------------------

    def start(self) -> None:
        """Start the nodes, the scheduler and nginx; wait until nginx is ready.

        :raise ClusterError: when something is already running from this run
            directory, a port is taken, or a process does not come up (what
            was started is stopped again).
        """
        running = [name for name, pid in read_pids(self.run_dir).items() if pid]
        if running:
            raise ClusterError(
                f"already running from {self.run_dir}: {', '.join(running)} "
                "(make cluster-stop first)"
            )
        ports = [self.listen_port, *(n.port for n in self.nodes if n.host == HOST)]
        taken = [p for p in ports if not port_free(p)]
        if taken:
            raise ClusterError(f"port(s) already in use: {taken}")
        for sub in ("pids", "logs", "temp", "evidence"):
            (self.run_dir / sub).mkdir(parents=True, exist_ok=True)
        (self.run_dir / "nginx.conf").write_text(self.render_nginx())
        try:
            for node in self.nodes:
                self.start_node(node.name, wait=False)
            for node in self.nodes:
                self.wait_node(node.name)
            if self.scheduler:
                self.start_scheduler()
            self.start_nginx()
            self.wait_ready()
        except BaseException:
            self.stop()
            raise

    def start_node(self, name: str, *, wait: bool = True) -> None:
        """Start (or start again) the gunicorn of node ``name``."""
        node = self.node(name)
        command = [
            str(_venv_program("gunicorn")),
            "-c",
            str(ROOT / "gunicorn.conf.py"),
            "--pid",
            str(self.pid_file(name)),
            "-b",
            node.address,
            *self.gunicorn_args,
        ]
        self._spawn(name, command, self.process_env(node), pid_file=None)
        if wait:
            self.wait_node(name)

    def wait_node(self, name: str) -> None:
        """Wait until node ``name`` answers ``/health`` (and wrote its pid file)."""
        node = self.node(name)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            child = self._children.get(name)
            if child is not None and child.poll() is not None:
                raise ClusterError(
                    f"{name} exited with {child.returncode}:\n{self.tail(name)}"
                )
            if (
                http_status(node.url + "/health") == 200
                and self.pid_file(name).exists()
            ):
                return
            time.sleep(0.1)  # polling while gunicorn boots
        raise ClusterError(f"{name} did not answer /health:\n{self.tail(name)}")

    def start_scheduler(self) -> None:
        """Start the one scheduler process (``flask --app mediation scheduler``)."""
        command = [str(_venv_program("flask")), "--app", "mediation", "scheduler"]
        child = self._spawn(
            "scheduler",
            command,
            self.process_env(),
            pid_file=self.pid_file("scheduler"),
        )
        # It prints its first line once the app is built and the jobs are added.
        deadline = time.monotonic() + START_TIMEOUT
        log = self.log_file("scheduler")
        while time.monotonic() < deadline:
            if child.poll() is not None:
                raise ClusterError(f"the scheduler exited:\n{self.tail('scheduler')}")
            if "SLA sweep every" in log.read_text(errors="replace"):
                return
            time.sleep(0.1)
        raise ClusterError(f"the scheduler did not start:\n{self.tail('scheduler')}")

    def start_nginx(self) -> None:
        """Start nginx (it daemonizes and writes its own pid file)."""
        command = [
            nginx_binary(),
            "-p",
            str(self.run_dir),
            "-c",
            str(self.run_dir / "nginx.conf"),
            "-e",
            str(self.run_dir / "logs" / "nginx-error.log"),
        ]
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT,
            stdin=subprocess.DEVNULL,
        )
        if result.returncode != 0:
            raise ClusterError(f"nginx did not start:\n{result.stderr}")
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if read_pids(self.run_dir).get("nginx"):
                return
            time.sleep(0.05)
        raise ClusterError("nginx wrote no pid file")

    def wait_ready(self) -> dict:
        """Wait until ``/ready`` through nginx answers 200; return its body."""
        deadline = time.monotonic() + START_TIMEOUT
        body: object = None
        while time.monotonic() < deadline:
            status, body = http_json(self.url + "/ready")
            if status == 200:
                return body
            time.sleep(0.2)
        raise ClusterError(f"the cluster is not ready: {body}")

    def _spawn(
        self,
        name: str,
        command: list[str],
        env: Mapping[str, str],
        *,
        pid_file: Path | None,
    ) -> subprocess.Popen:
        """Start ``command`` in a session of its own, logging to logs/<name>.log.

        :param pid_file: where to write its pid (None: it writes its own).
        """
        with self.log_file(name).open("ab") as log:
            log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} start\n".encode())
            child = subprocess.Popen(
                command,
                cwd=ROOT,
                env=dict(env),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                # Its own process group: stopped (or killed) with its children,
                # and untouched by a Ctrl-C in the terminal that started it.
                start_new_session=True,
            )
        if pid_file is not None:
            pid_file.write_text(f"{child.pid}\n")
        self._children[name] = child
        return child

    # Stopping -----------------------------------------------------------------

    def kill_node(self, name: str) -> list[int]:
        """Kill node ``name`` at once (SIGKILL to its gunicorn and worker).

        For failure tests: nothing shuts down cleanly. Return the killed pids.
        """
        pid = read_pids(self.run_dir).get(name)
        if not pid:
            raise ClusterError(f"{name} is not running")
        pids = [pid, *children_of(pid)]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        self._reap(name)
        wait_gone(pids, STOP_TIMEOUT)
        self.pid_file(name).unlink(missing_ok=True)
        return pids

    def stop(self) -> list[str]:
        """Stop everything this run directory's pid files name."""
        stopped = stop(self.run_dir)
        for name in list(self._children):
            self._reap(name)
        return stopped

    def _reap(self, name: str) -> None:
        child = self._children.pop(name, None)
        if child is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=STOP_TIMEOUT)

    # nginx ----------------------------------------------------------------------

    def render_nginx(self) -> str:
        return render_nginx(
            listen=f"{HOST}:{self.listen_port}",
            nodes=self.nodes,
            run_dir=self.run_dir,
            worker_processes="1",
        )

    def tail(self, name: str, lines: int = 30) -> str:
        try:
            text = self.log_file(name).read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


def render_nginx(
    *,
    listen: str,
    nodes: Iterable[Node],
    run_dir: Path,
    static_dir: Path = ROOT / "static",
    worker_processes: str = "auto",
    worker_connections: int = 4096,
    cookie_secure: bool = False,
) -> str:
    """Return nginx's configuration for ``nodes`` behind ``listen``.

    :param run_dir: nginx's prefix: pid, logs and temporary files go under it.
    :param cookie_secure: mark the sticky cookie ``Secure`` (behind HTTPS).
    """
    nodes = list(nodes)
    if not nodes:
        raise ClusterError("a cluster needs at least one node")
    server = "        server {address} max_fails=1 fail_timeout=5s{backup};"
    node_map = "\n".join(f"        {n.name} odr_{n.name};" for n in nodes)
    all_servers = "\n".join(server.format(address=n.address, backup="") for n in nodes)
    upstreams = []
    for node in nodes:
        lines = [server.format(address=node.address, backup="")]
        lines += [
            server.format(address=other.address, backup=" backup")
            for other in nodes
            if other is not node
        ]
        upstreams.append(
            f"    upstream odr_{node.name} {{\n"
            + "\n".join(lines)
            + "\n        keepalive 16;\n    }"
        )
    user_line = ""
    if os.geteuid() == 0:
        # A master started by root would run its workers as "nobody", who cannot
        # read a private run directory: keep them the current user.
        user_line = (
            f"user {pwd.getpwuid(os.geteuid()).pw_name} "
            f"{grp.getgrgid(os.getegid()).gr_name};"
        )
    values = {
        "USER_LINE": user_line,
        "WORKER_PROCESSES": worker_processes,
        "WORKER_CONNECTIONS": str(worker_connections),
        "RUN_DIR": str(Path(run_dir).resolve()),
        "NODE_MAP": node_map,
        "COOKIE_SECURE": "; Secure" if cookie_secure else "",
        "ALL_SERVERS": all_servers,
        "NODE_UPSTREAMS": "\n".join(upstreams),
        "LISTEN": listen,
        "STATIC_DIR": str(Path(static_dir).resolve()),
    }
    text = TEMPLATE.read_text()
    for key, value in values.items():
        text = text.replace(f"@@{key}@@", value)
    left = re.findall(r"@@[A-Z_]+@@", text)
    if left:
        raise ClusterError(f"the nginx template has unknown places: {left}")
    return text


# Pid files ----------------------------------------------------------------------


def _pid_files(run_dir: Path) -> dict[str, Path]:
    files = {"nginx": run_dir / "nginx.pid"}
    pids_dir = run_dir / "pids"
    if pids_dir.is_dir():
        for path in sorted(pids_dir.glob("*.pid")):
            files[path.stem] = path
    return files


def _program(name: str) -> str:
    return PROGRAMS.get(name, "gunicorn")


def read_pids(run_dir: Path) -> dict[str, int | None]:
    """Return ``{name: pid}`` of each pid file; None where its process is gone
    or is not the program the file is for."""
    out: dict[str, int | None] = {}
    for name, path in _pid_files(run_dir).items():
        try:
            pid = int(path.read_text().strip())
        except (OSError, ValueError):
            continue
        out[name] = pid if is_running(pid, _program(name)) else None
    return out


def is_running(pid: int, program: str) -> bool:
    """Say whether ``pid`` is a live process whose command line names ``program``."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
        if raw.rsplit(")", 1)[1].split()[0] == "Z":
            return False  # exited, not yet reaped
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, IndexError):
        return False
    return program.encode() in cmdline


def children_of(pid: int) -> list[int]:
    """Return the pids whose parent is ``pid``."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            out.append(int(entry))
    return out


def wait_gone(pids: Iterable[int], timeout: float) -> bool:
    """Wait until none of ``pids`` runs any more; return whether they are gone."""
    deadline = time.monotonic() + timeout
    pids = list(pids)
    while time.monotonic() < deadline:
        if not any(is_running(pid, "") for pid in pids):
            return True
        time.sleep(0.05)
    return False


def stop(run_dir: Path) -> list[str]:
    """Stop what the pid files of ``run_dir`` name: nginx, nodes, scheduler.

    Each gets SIGTERM (gunicorn and nginx shut down gracefully), then SIGKILL to
    its process group after ``STOP_TIMEOUT`` seconds. A pid file whose process
    is gone, or is another program, is removed without killing anything.

    :return: a line per pid file, saying what was done.
    """
    files = _pid_files(Path(run_dir))
    order = ["nginx"] + sorted(n for n in files if n not in ("nginx", "scheduler"))
    order += ["scheduler"] if "scheduler" in files else []
    report = []
    for name in order:
        path = files[name]
        try:
            pid = int(path.read_text().strip())
        except (OSError, ValueError):
            path.unlink(missing_ok=True)
            continue
        if not is_running(pid, _program(name)):
            report.append(
                f"{name}: no {_program(name)} with pid {pid} (stale pid file removed)"
            )
            path.unlink(missing_ok=True)
            continue
        group = [pid, *children_of(pid)]
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        if wait_gone(group, STOP_TIMEOUT):
            report.append(f"{name}: stopped (pid {pid})")
        else:
            with contextlib.suppress(ProcessLookupError):
                if os.getpgid(pid) == pid:
                    os.killpg(pid, signal.SIGKILL)
                else:
                    os.kill(pid, signal.SIGKILL)
            wait_gone(group, STOP_TIMEOUT)
            report.append(f"{name}: killed after {STOP_TIMEOUT} s (pid {pid})")
        path.unlink(missing_ok=True)
    return report


# Helpers ------------------------------------------------------------------------


def nginx_binary() -> str:
    """Return nginx's path.

    :raise ClusterError: when nginx is not installed.
    """
    found = shutil.which("nginx") or (
        "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None
    )
    if not found:
        raise ClusterError("nginx is not installed: apt-get install nginx-light")
    return found


def _venv_program(name: str) -> Path:
    path = VENV_BIN / name
    if not path.exists():
        path = ROOT / ".venv" / "bin" / name
    return path


def port_free(port: int, host: str = HOST) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def http_status(url: str, timeout: float = 5) -> int | None:
    """Return the status of ``GET url``, or None when nothing answers."""
    return http_json(url, timeout)[0]


def http_json(url: str, timeout: float = 5) -> tuple[int | None, object]:
    """Return the status and the JSON body (or text) of ``GET url``."""
    rest = url.split("://", 1)[1]
    address, _, path = rest.partition("/")
    host, _, port = address.partition(":")
    conn = http.client.HTTPConnection(host, int(port or 80), timeout=timeout)
    try:
        conn.request("GET", "/" + path)
        response = conn.getresponse()
        raw = response.read()
        try:
            return response.status, json.loads(raw)
        except ValueError:
            return response.status, raw.decode(errors="replace")
    except OSError as exc:
        return None, str(exc)
    finally:
        conn.close()


def secret_key(run_dir: Path) -> str:
    """Return the cluster's SECRET_KEY, made once and kept in the run directory."""
    path = run_dir / "secret_key"
    if not path.exists():
        run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def cluster_env(
    *,
    run_dir: Path,
    public_url: str,
    database_url: str,
    redis_url: str,
    channel: str = DEFAULT_CHANNEL,
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Return the environment of a cluster's processes.

    Production settings: PostgreSQL, Redis, a real secret, one scheduler
    process (none inside the servers), nginx as the one trusted proxy.
    """
    env = {
        k: v
        for k, v in (os.environ if base is None else base).items()
        if k not in ("FLASK_APP", "NODE_NAME", "TEST_DATABASE_URL")
    }
    env.update(
        MEDIATION_ENV="production",
        SECRET_KEY=secret_key(run_dir),
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        SOCKETIO_CHANNEL=channel,
        PUBLIC_URL=public_url,
        TRUSTED_PROXIES="1",
        SCHEDULER_ENABLED="0",
        EVIDENCE_DIR=str(run_dir / "evidence"),
        PYTHONUNBUFFERED="1",
    )
    return env


def run_cli(args: list[str], env: Mapping[str, str]) -> str:
    """Run ``flask --app mediation <args>``; return its output.

    :raise ClusterError: when it fails.
    """
    result = subprocess.run(
        [str(_venv_program("flask")), "--app", "mediation", *args],
        cwd=ROOT,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        stdin=subprocess.DEVNULL,
    )
    if result.returncode != 0:
        raise ClusterError(
            f"flask {' '.join(args)} failed:\n{result.stdout}{result.stderr}"
        )
    return result.stdout


def ensure_database(url: str) -> bool:
    """Create the PostgreSQL database of ``url`` if it does not exist.

    :return: whether it was created.
    """
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise ClusterError(f"the cluster needs PostgreSQL, not {url}")
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"),
                {"name": parsed.database},
            ).scalar()
            if not exists:
                conn.exec_driver_sql(f'CREATE DATABASE "{parsed.database}"')
            return not exists
    except Exception as exc:
        raise ClusterError(f"PostgreSQL at {parsed.host}:{parsed.port}: {exc}") from exc
    finally:
        admin.dispose()


def check_redis(url: str) -> None:
    """:raise ClusterError: when Redis does not answer at ``url``."""
    import redis

    try:
        client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        client.ping()
        client.close()
    except redis.RedisError as exc:
        raise ClusterError(f"Redis at {url}: {exc}") from exc


def prepare(env: Mapping[str, str], *, seed: bool = True) -> list[str]:
    """Create the database if needed, migrate it, load the demo data if empty."""
    lines = []
    if ensure_database(env["DATABASE_URL"]):
        lines.append("database created")
    check_redis(env["REDIS_URL"])
    run_cli(["db", "upgrade"], env)
    lines.append("schema at the migrations' head")
    if seed:
        lines.append(run_cli(["seed-demo", "--if-empty"], env).strip())
    return lines


# Command line -------------------------------------------------------------------


def _nodes(ports: list[int]) -> list[Node]:
    return [Node(f"app{k}", port) for k, port in enumerate(ports, start=1)]


def _ports(value: str) -> list[int]:
    return [int(p) for p in value.split(",") if p.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run_dir_default = os.environ.get("CLUSTER_RUN_DIR") or str(DEFAULT_RUN_DIR)
    for name in ("start", "stop", "status"):
        p = sub.add_parser(name)
        p.add_argument("--run-dir", default=run_dir_default)
        if name == "start":
            p.add_argument(
                "--port",
                type=int,
                default=int(os.environ.get("CLUSTER_PORT") or DEFAULT_PORT),
            )
            p.add_argument(
                "--app-ports",
                type=_ports,
                default=_ports(
                    os.environ.get("CLUSTER_APP_PORTS")
                    or ",".join(map(str, DEFAULT_APP_PORTS))
                ),
            )
            p.add_argument(
                "--database-url",
                default=os.environ.get("CLUSTER_DATABASE_URL") or DEFAULT_DATABASE_URL,
            )
            p.add_argument(
                "--redis-url",
                default=os.environ.get("CLUSTER_REDIS_URL") or DEFAULT_REDIS_URL,
            )
            p.add_argument("--no-seed", action="store_true")
            p.add_argument("--no-scheduler", action="store_true")
    render = sub.add_parser("render-nginx", help="print an nginx.conf")
    render.add_argument("--listen", required=True, help="e.g. 80 or 0.0.0.0:8080")
    render.add_argument(
        "--node",
        action="append",
        required=True,
        help="NAME=HOST:PORT of a server process (repeat)",
    )
    render.add_argument("--run-dir", required=True, help="nginx's prefix directory")
    render.add_argument("--static-dir", default=str(ROOT / "static"))
    render.add_argument("--cookie-secure", action="store_true")
    args = parser.parse_args(argv)
    try:
        if args.command == "render-nginx":
            nodes = []
            for spec in args.node:
                name, _, address = spec.partition("=")
                host, _, port = address.rpartition(":")
                nodes.append(Node(name, int(port), host or HOST))
            sys.stdout.write(
                render_nginx(
                    listen=args.listen,
                    nodes=nodes,
                    run_dir=Path(args.run_dir),
                    static_dir=Path(args.static_dir),
                    cookie_secure=args.cookie_secure,
                )
            )
            return 0
        run_dir = Path(args.run_dir).resolve()
        if args.command == "stop":
            lines = stop(run_dir)
            for line in lines or ["nothing to stop"]:
                print(line)
            return 0
        if args.command == "status":
            pids = read_pids(run_dir)
            for name, pid in pids.items():
                print(f"{name}: {'running, pid ' + str(pid) if pid else 'not running'}")
            if not pids:
                print(f"no cluster in {run_dir}")
            return 0
        public_url = f"http://{HOST}:{args.port}"
        env = cluster_env(
            run_dir=run_dir,
            public_url=public_url,
            database_url=args.database_url,
            redis_url=args.redis_url,
        )
        cluster = Cluster(
            run_dir=run_dir,
            listen_port=args.port,
            nodes=_nodes(args.app_ports),
            env=env,
            scheduler=not args.no_scheduler,
        )
        for line in prepare(env, seed=not args.no_seed):
            print(line)
        cluster.start()
        print(f"nginx      {cluster.url}  (pid file {cluster.pid_file('nginx')})")
        for node in cluster.nodes:
            print(f"{node.name:<10} {node.url}  (log {cluster.log_file(node.name)})")
        if cluster.scheduler:
            print(f"scheduler  log {cluster.log_file('scheduler')}")
        print(f"open {cluster.url}/ ; stop with: make cluster-stop")
        return 0
    except ClusterError as exc:
        print(f"cluster: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
