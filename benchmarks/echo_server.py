"""The baseline of ``benchmarks/chat.py``: a Socket.IO room echo that stores nothing.

It speaks the same events as the real ``/chat`` namespace (``join_case``,
``send_message`` with an ack, ``message_created`` to the room), with the same
Flask-SocketIO settings as ``mediation.create_app`` (threading mode,
``async_handlers=False``, simple-websocket under gunicorn gthread, the Redis
message queue when ``REDIS_URL`` is set), but without a database,
authentication, access checks or limits: the floor of any chat server on this
stack. Never deployed; the benchmark serves it with::

    gunicorn -k gthread -w 1 --threads N "benchmarks.echo_server:create_app()"

Environment: ``REDIS_URL`` (optional) and ``SOCKETIO_CHANNEL`` (the Redis channel,
default ``flask-socketio``).
"""

from __future__ import annotations

import itertools
import os
import threading
from datetime import UTC, datetime

from flask import Flask, request
from flask_socketio import SocketIO, join_room

socketio = SocketIO()
_lock = threading.Lock()
#: Per-room counters standing in for the stored sequence numbers.
_seqs: dict[str, itertools.count] = {}
_ids = itertools.count(1)


def _room(data: object) -> str | None:
    if not isinstance(data, dict) or not isinstance(data.get("case_id"), int):
        return None
    if data.get("room") == "caucus":
        return f"case:{data['case_id']}:caucus:{data.get('party') or 'consumer'}"
    return f"case:{data['case_id']}:joint"


def _error(message: str) -> dict:
    return {"ok": False, "error": {"code": "validation", "message": message}}


@socketio.on("connect", namespace="/chat")
def connect(auth=None):
    return True


@socketio.on("join_case", namespace="/chat")
def join_case(data):
    room = _room(data)
    if room is None:
        return _error("case_id")
    join_room(room)
    return {"ok": True, "messages": []}


@socketio.on("send_message", namespace="/chat")
def send_message(data):
    room = _room(data)
    if room is None or not isinstance(data.get("body"), str):
        return _error("case_id, body")
    with _lock:
        seq = next(_seqs.setdefault(room, itertools.count(1)))
        message_id = next(_ids)
    payload = {
        "case_id": data["case_id"],
        "room": data.get("room", "joint"),
        "seq": seq,
        "id": message_id,
        "client_id": data.get("client_id"),
        "author": {"id": 0, "name": request.sid},
        "role": "consumer",
        "body": data["body"],
        "sent_at": datetime.now(UTC).isoformat(),
        "kind": "text",
    }
    socketio.emit("message_created", payload, to=room, namespace="/chat")
    return {"ok": True, "seq": seq, "id": message_id}


def create_app() -> Flask:
    """Build the echo app (gunicorn calls this once per worker)."""
    app = Flask(__name__)
    app.config["SECRET_KEY"] = "bench-echo"

    @app.get("/health")
    def health():
        return {"status": "ok"}

    socketio.init_app(
        app,
        async_mode="threading",
        message_queue=os.environ.get("REDIS_URL") or None,
        channel=os.environ.get("SOCKETIO_CHANNEL") or "flask-socketio",
        cors_allowed_origins="*",
        # As the app: a connection's events in order, in its own thread.
        async_handlers=False,
        logger=False,
        engineio_logger=False,
    )
    return app
