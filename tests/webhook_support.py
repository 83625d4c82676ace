"""Helpers of the feed and webhook tests: a real receiving HTTP server, ledger
changes made through the real ledger, a dead address."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from mediation import clock
from mediation.credit import ledger
from mediation.credit.model import DEFAULT_MODEL, points_for
from mediation.credit.models import CreditEvent
from mediation.extensions import db


@dataclass
class Received:
    """One request the receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class Receiver:
    """An HTTP server on 127.0.0.1 that records every POST.

    ``statuses`` are the answers to give, in order (200 once they run out).
    """

    statuses: list[int] = field(default_factory=list)
    requests: list[Received] = field(default_factory=list)
    port: int = 0
    #: Seconds to wait before answering (a slow receiver).
    delay: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def answer(self) -> int:
        with self.lock:
            return self.statuses.pop(0) if self.statuses else 200

    def record(self, received: Received) -> None:
        with self.lock:
            self.requests.append(received)


@contextmanager
def receiver(statuses: list[int] | None = None) -> Iterator[Receiver]:
    """Run a :class:`Receiver` for the duration of the block."""
    state = Receiver(statuses=list(statuses or []))

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            state.record(Received(self.path, dict(self.headers.items()), body))
            if state.delay:
                time.sleep(state.delay)
            status = state.answer()
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass  # quiet tests

    class Server(ThreadingHTTPServer):
        def handle_error(self, request: Any, client_address: Any) -> None:
            pass  # a client that gave up waiting (the timeout test)

    server = Server(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def dead_url() -> str:
    """Return an address where nothing listens (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


def add_event(merchant_id: int, kind: str = "not_fulfilled") -> CreditEvent:
    """Add a ledger event (no case) for ``merchant_id``; the caller refreshes."""
    now = clock.now_utc()
    event = CreditEvent(
        merchant_id=merchant_id,
        case_id=None,
        kind=kind,
        points=points_for(kind, "merchant", DEFAULT_MODEL),
        occurred_at=now,
        data={"reference": "TEST"},
        lists=kind in DEFAULT_MODEL["listing"]["kinds"],
        created_at=now,
    )
    db.session.add(event)
    db.session.flush()
    return event


def list_merchant(app, merchant_id: int) -> None:
    """Put a merchant on the dishonesty list through the ledger and commit.

    Two feed rows: ``grade`` (A -> D) and ``listed``.
    """
    with app.app_context():
        add_event(merchant_id)
        ledger.refresh_standing(merchant_id, now=clock.now_utc())
        db.session.commit()


def delist_merchant(app, merchant_id: int) -> None:
    """Repair every listing event of a merchant and commit (``delisted``, ``grade``)."""
    with app.app_context():
        now = clock.now_utc()
        for event in db.session.scalars(
            db.select(CreditEvent).where(
                CreditEvent.merchant_id == merchant_id, CreditEvent.lists
            )
        ):
            event.repaired_at = now
        ledger.refresh_standing(merchant_id, now=now)
        db.session.commit()
