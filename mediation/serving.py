"""Serving: the app behind a reverse proxy, and a serving worker's process settings.

:func:`init_app` (called by ``create_app``) wraps the WSGI app: proxy headers
are trusted for ``TRUSTED_PROXIES`` hops, and every response names the process
that served it (``X-Served-By: NODE_NAME``), Socket.IO's included.

:func:`tune_garbage_collector` is for gunicorn only (``gunicorn.conf.py``): it
changes the whole interpreter, which only a dedicated server process should do;
it never runs in tests or in ``flask`` commands.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

#: The response header naming the server process (``NODE_NAME``).
SERVED_BY_HEADER = "X-Served-By"
#: What a node name may hold: it travels in a header and a cookie.
NODE_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def init_app(app: Flask) -> None:
    """Wrap ``app.wsgi_app`` for serving behind a proxy, in a cluster.

    Call it after every other middleware (Socket.IO's): the wrappers then see
    every request and response of the process.

    :raise ValueError: for a ``NODE_NAME`` that cannot be a header or cookie value.
    """
    node = app.config.get("NODE_NAME")
    if node:
        if not NODE_NAME_PATTERN.match(node):
            raise ValueError(
                f"NODE_NAME {node!r}: use 1-64 letters, digits, '.', '_' or '-'"
            )
        app.wsgi_app = ServedBy(app.wsgi_app, node)  # type: ignore[method-assign]
    hops = int(app.config.get("TRUSTED_PROXIES") or 0)
    if hops > 0:
        # The client's address (rate limits, logs) and scheme as the proxy saw
        # them; only the last ``hops`` entries are trusted, so a client cannot
        # choose its address by sending X-Forwarded-For itself.
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops
        )


class ServedBy:
    """WSGI middleware that adds ``X-Served-By: <node>`` to every response.

    The proxy's sticky cookie is set from it (deploy/nginx.conf.template), and
    tests use it to see which process answered.
    """

    def __init__(self, wsgi_app: Callable[..., Iterable[bytes]], node: str) -> None:
        self.wsgi_app = wsgi_app
        self.header = (SERVED_BY_HEADER, node)

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Any:
        def start(status: str, headers: list, exc_info: Any = None) -> Any:
            headers.append(self.header)
            if exc_info is not None:
                return start_response(status, headers, exc_info)
            return start_response(status, headers)

        return self.wsgi_app(environ, start)


#: The collector's thresholds in a serving worker: CPython's first two, and a
#: full collection considered only after 100 (not 10) collections of the middle
#: generation.
GC_THRESHOLDS = (700, 10, 100)


def tune_garbage_collector() -> None:
    """Make full garbage collections rare and short in a long-running server.

    A full collection holds the GIL while it walks every tracked object; with the
    app loaded that was ~220,000 objects and 100-400 ms, several times a minute
    under chat load, and every WebSocket of the process waited (BENCHMARKS.md,
    "Real-time chat"). So, once the app is loaded:

    - ``gc.freeze()`` moves everything alive now (modules, classes, the app, its
      mapped models: objects that live as long as the process) out of the
      collector's sight, so full collections walk only what came later;
    - full collections are considered ten times less often (``GC_THRESHOLDS``).
      Objects that outlive a few young collections because a request or event was
      still using them otherwise count towards the next full collection, and with
      hundreds of threads in flight that triggered one every few seconds.

    Young collections are unchanged, so cyclic garbage is still found; reference
    counting frees the rest as before.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
