"""Gunicorn settings of the platform's server processes.

Gunicorn reads ``./gunicorn.conf.py`` when started in this directory (or pass
``-c gunicorn.conf.py``), so a server process is just::

    GUNICORN_BIND=127.0.0.1:5001 gunicorn --pid run/app1.pid

Options on the command line win over this file (``-b``, ``--threads`` ...).

- One worker per gunicorn (``workers = 1``): a Socket.IO (Engine.IO) session
  lives in one process, and the proxy can keep a browser on one process only
  if every process has its own address. More processes on a machine are more
  gunicorns on more ports, each a server in the proxy's upstream
  (deploy/README.md).
- Threads (``gthread``, WebSockets by simple-websocket): every chat WebSocket
  holds a thread for its whole life, so the pool is the chat connections the
  process must hold (``GUNICORN_CONNECTIONS``, default 200) plus
  ``SPARE_THREADS`` for ordinary requests; gunicorn stops accepting at
  ``worker_connections``, set above the threads.
"""

import os

#: The WSGI app (``gunicorn`` alone serves it; a command-line app wins).
wsgi_app = "mediation:create_app()"
bind = [os.environ.get("GUNICORN_BIND", "127.0.0.1:5000")]
worker_class = "gthread"
workers = 1
#: Threads beyond the chat connections: pages, API calls, long-polling.
SPARE_THREADS = 50
#: Chat WebSockets one process must hold at once.
CONNECTIONS = int(os.environ.get("GUNICORN_CONNECTIONS") or 200)
threads = CONNECTIONS + SPARE_THREADS
worker_connections = threads + SPARE_THREADS
#: Seconds a stopping worker gives its requests (open WebSockets are closed
#: after it; clients reconnect to another process through the proxy).
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT") or 10)
#: No control socket: several gunicorns of one user would share its default path.
control_socket_disable = True


def post_worker_init(worker):  # noqa: ARG001 - gunicorn's hook signature
    """Once the app is loaded in a worker: settle the garbage collector."""
    from mediation.serving import tune_garbage_collector

    tune_garbage_collector()
