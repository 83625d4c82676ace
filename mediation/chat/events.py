"""Socket.IO handlers of the ``/chat`` namespace (API.md "Real-time chat").

Each handler is a thin adapter: it parses the payload with a schema, finds the
user of the connection and the case, checks role, relation and room again (a
mediator replaced a minute ago gets nothing), calls one service, commits once,
and answers with an acknowledgement. Broadcasts go out after the commit.
Refusals come back in the acknowledgement as ``{"ok": false, "error": {"code",
"message"}}`` and the connection stays open; no exception leaves a handler.

The connection belongs to the signed-in session (cookie), or to an API token
given as ``auth={"token": ...}`` or an ``Authorization: Bearer`` header; it is
checked again at every event, so a revoked token or a signed-out account stops
working at once. The handshake's ``Origin`` must be one of the configured
origins (``SOCKETIO_CORS_ORIGINS``, by default the origin of ``PUBLIC_URL``).

The hot path is short on purpose (a chat message is one event of many per
second): one query checks the connection's credentials and loads the case's
access columns (:func:`user_and_case`); storing a message is one more
statement (see :func:`mediation.chat.services.post_message`); ``typing``
writes nothing. ``tests/test_chat_events.py`` counts the statements per event.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, current_app, g, request, session
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_socketio import join_room, leave_room
from limits import parse as parse_limit
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
from sqlalchemy import bindparam
from sqlalchemy.orm import load_only

from mediation import clock
from mediation.auth.models import ApiToken, User
from mediation.cases.models import Case
from mediation.chat import schemas
from mediation.chat import services as chat
from mediation.chat.presence import online, presence_for
from mediation.errors import (
    DomainError,
    NotFound,
    RateLimited,
    Unauthorized,
    socket_error,
)
from mediation.extensions import db, socketio

logger = logging.getLogger(__name__)

NAMESPACE = chat.NAMESPACE
#: Default of ``CHAT_RATE_LIMIT``.
DEFAULT_RATE_LIMIT = "20 per 10 seconds"
_RATE_KEY = "mediation.chat.rate"


# Origins ----------------------------------------------------------------------


def _origin_of(url: str) -> str:
    """Return ``scheme://host[:port]`` of a URL (an Origin header's form)."""
    parts = urlsplit(url.strip())
    if not parts.scheme or not parts.netloc:
        return url.strip().rstrip("/")
    return f"{parts.scheme}://{parts.netloc}"


def allowed_origins(config: Any) -> list[str] | str:
    """Return the Origins a Socket.IO handshake may come from.

    ``SOCKETIO_CORS_ORIGINS``: ``*`` (any; tests and benchmarks only) or a
    comma-separated list; unset, the origin of ``PUBLIC_URL``.
    """
    raw = config.get("SOCKETIO_CORS_ORIGINS")
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return [_origin_of(config["PUBLIC_URL"])]
    if isinstance(raw, str):
        if raw.strip() == "*":
            return "*"
        raw = raw.split(",")
    return [_origin_of(o) for o in raw if o.strip()]


def _origin_ok() -> bool:
    """Say whether the handshake's Origin (if any) is allowed.

    Engine.IO already refuses a foreign Origin before any handler runs; this
    second check covers transports that do not pass through it.
    """
    origin = request.headers.get("Origin")
    if not origin:
        return True  # not a browser: nothing cross-site to guard against
    allowed = allowed_origins(current_app.config)
    return allowed == "*" or origin.rstrip("/") in allowed


# Who is connected -------------------------------------------------------------

#: Socket-session key: the hash of the API token the connection signed in with.
_TOKEN_KEY = "chat_token_hash"
#: Socket-session key: ``"<user id>:<session nonce>"`` of a signed-in session.
_USER_KEY = "chat_user"


def _token_valid(token_hash: Any) -> Any:
    """Return the conditions for a valid token (unrevoked, unexpired) of an
    active user."""
    return (
        ApiToken.token_hash == token_hash,
        ApiToken.revoked_at.is_(None),
        ApiToken.expires_at > bindparam("now"),
        User.is_active_account.is_(True),
    )


@functools.cache
def _user_and_case_queries() -> tuple[Any, Any]:
    """Return the queries of the connection's user and the event's case, by
    token and by session (built once, on first use).

    No row: the token or the session is no longer valid. No case: none such.
    Of the user only what the handlers read is loaded: who they are, role and
    shop (the access check), the name (presence, typing); of the case the
    access check's columns. Anything else loads if ever read.
    """
    columns = (
        load_only(
            User.id, User.name, User.role, User.merchant_id, User.is_active_account
        ),
        load_only(*chat.ACCESS_COLUMNS),
    )
    by_token = (
        db.select(User, Case)
        .join(ApiToken, ApiToken.user_id == User.id)
        .outerjoin(Case, Case.id == bindparam("case_id"))
        .where(*_token_valid(bindparam("token_hash")))
        .options(*columns)
    )
    by_session = (
        db.select(User, Case)
        .outerjoin(Case, Case.id == bindparam("case_id"))
        .where(
            User.id == bindparam("user_id"),
            User.session_nonce == bindparam("nonce"),
            User.is_active_account.is_(True),
        )
        .options(*columns)
    )
    return by_token, by_session


def _token_user(token_hash: str) -> User | None:
    """Return the active user of a valid (unrevoked, unexpired) token hash."""
    return db.session.scalar(
        db.select(User)
        .join(ApiToken, ApiToken.user_id == User.id)
        .where(*_token_valid(token_hash)),
        {"now": clock.now_utc()},
    )


def user_and_case(case_id: int) -> tuple[User, Case]:
    """Return the user of this connection, checked again now, and the case.

    One query checks the connection's credentials (the token is still valid,
    the session's nonce unchanged, the account active) and loads the case:
    a revoked token or a signed-out account stops working at the next event.
    The relation to the case is checked here too (role AND relation); what
    the user may do in which room is the service's check.

    :raise Unauthorized: when the token was revoked or the session ended.
    :raise NotFound: when there is no such case or the user has no relation
        (nobody learns whether a case they may not see exists).
    """
    by_token, by_session = _user_and_case_queries()
    token_hash = session.get(_TOKEN_KEY)
    row = None
    if token_hash:
        row = db.session.execute(
            by_token,
            {"token_hash": token_hash, "case_id": case_id, "now": clock.now_utc()},
        ).first()
    else:
        user_id, _, nonce = (session.get(_USER_KEY) or "").partition(":")
        if user_id.isdigit():
            row = db.session.execute(
                by_session,
                {"user_id": int(user_id), "nonce": nonce, "case_id": case_id},
            ).first()
    if row is None:
        raise Unauthorized()
    user, case = row
    if case is None or chat.case_relation(user, case) is None:
        raise NotFound()
    return user, case


class LocalMovingWindow:
    """A moving-window counter per key, in this process: ``hit`` is O(1) amortised.

    For a single server process (no ``REDIS_URL``). The ``limits`` library's
    memory storage starts a timer thread on every hit that scans every key, which
    at 2,000 chat users doubled the CPU cost of a message (benchmarks/chat.py).
    Times come from :mod:`mediation.clock`, so tests can move them.
    """

    def __init__(self, amount: int, seconds: float) -> None:
        self.amount, self.seconds = amount, seconds
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()
        self._pruned = 0.0

    def hit(self, key: str) -> bool:
        """Count a hit of ``key`` unless it is over the limit; say whether counted."""
        now = clock.now_utc().timestamp()
        horizon = now - self.seconds
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= horizon:
                hits.popleft()
            if len(hits) >= self.amount:
                return False
            hits.append(now)
            if now - self._pruned > self.seconds:
                # Forget users who sent nothing in the last window.
                self._pruned = now
                for stale in [k for k, v in self._hits.items() if v[-1] <= horizon]:
                    del self._hits[stale]
            return True


def _rate_limiter(app: Flask) -> Callable[[str], bool] | None:
    """Return the chat's per-user limiter (None: no limit): ``hit(user key)``.

    With ``REDIS_URL`` it counts in Redis (the rate-limit storage), so the limit
    holds across server processes; otherwise in this process.
    """
    spec = app.config.get("CHAT_RATE_LIMIT", DEFAULT_RATE_LIMIT)
    if not spec or str(spec).strip() in ("0", "off", "none"):
        return None
    cached = app.extensions.get(_RATE_KEY)
    if cached is None or cached[1] != spec:
        item = parse_limit(spec)
        uri = app.config.get("RATELIMIT_STORAGE_URI") or "memory://"
        if uri.startswith("memory://"):
            local = LocalMovingWindow(item.amount, item.get_expiry())
            hit = local.hit
        else:
            shared = MovingWindowRateLimiter(storage_from_string(uri))

            def hit(key: str) -> bool:
                return shared.hit(item, "chat", key)

        cached = (hit, spec)
        app.extensions[_RATE_KEY] = cached
    return cached[0]


def _check_rate(user: User) -> None:
    """Count one message of ``user`` (called once it is stored and known to be
    new: a retry of a stored message is never counted nor refused).

    :raise RateLimited: when the user sent ``CHAT_RATE_LIMIT`` messages already.
    """
    hit = _rate_limiter(current_app._get_current_object())
    if hit is None:
        return
    if not hit(str(user.id)):
        raise RateLimited(
            _l("You are sending messages too fast; wait a moment and try again.")
        )


# Handlers ---------------------------------------------------------------------


def _event(fn: Callable[..., dict[str, Any] | None]) -> Callable[..., Any]:
    """Run a handler as one unit of work and turn every failure into an ack.

    Domain errors become ``{"ok": false, "error": ...}``; anything else is
    logged and answered with the generic ``internal`` error. The transaction is
    rolled back in both cases.
    """

    @functools.wraps(fn)
    def wrapper(data: Any = None, *args: Any) -> dict[str, Any] | None:
        try:
            with _turn(current_app):
                return fn(data)
        except DomainError as exc:
            _rollback()
            return socket_error(exc)
        except Exception:
            _rollback()
            logger.exception("chat event %s failed", fn.__name__)
            return {
                "ok": False,
                "error": {
                    "code": "internal",
                    "message": gettext(
                        "Something went wrong on our side. Please try again."
                    ),
                },
            }

    return wrapper


_GATE_KEY = "mediation.chat.gate"


def _turn(app: Flask) -> Any:
    """Wait for one of the process's ``CHAT_EVENT_CONCURRENCY`` event slots.

    Every WebSocket has a thread of its own, and each event makes a few database
    round trips, each releasing and retaking the GIL. After any pause (a garbage
    collection, a slow commit) dozens of connections' events would run at once and
    every round trip would queue for the GIL behind all the others: a convoy that
    took seconds to drain (benchmarks/chat.py). A few slots keep the CPU busy while
    the rest wait on a semaphore, which holds no GIL; they go on in turn.
    """
    gate = app.extensions.get(_GATE_KEY)
    if gate is None:
        size = int(app.config.get("CHAT_EVENT_CONCURRENCY") or 0)
        gate = (
            threading.BoundedSemaphore(size) if size > 0 else contextlib.nullcontext()
        )
        gate = app.extensions.setdefault(_GATE_KEY, gate)
    return gate


def _rollback() -> None:
    """Roll back the event's transaction; a broken connection is only logged."""
    try:
        db.session.rollback()
    except Exception:
        logger.exception("rollback after a failed chat event failed")


@socketio.on("connect", namespace=NAMESPACE)
def connect(auth: Any = None) -> bool:
    """Accept a signed-in session or a valid API token from an allowed Origin.

    :param auth: optional ``{"token": "<API token>"}``.
    """
    try:
        if not _origin_ok():
            logger.info("chat connection refused: origin %s", request.origin)
            return False
        session.pop(_TOKEN_KEY, None)
        session.pop(_USER_KEY, None)
        token = auth.get("token") if isinstance(auth, dict) else None
        if token:
            if not isinstance(token, str):
                return False
            token_hash = ApiToken.hash_token(token.strip())
            if _token_user(token_hash) is None:
                return False
            session[_TOKEN_KEY] = token_hash
            return True
        if not current_user.is_authenticated:
            return False
        api_token = g.get("api_token")  # an Authorization: Bearer header
        if api_token is not None:
            session[_TOKEN_KEY] = api_token.token_hash
        else:
            session[_USER_KEY] = current_user.get_id()
        return True
    except Exception:
        logger.exception("chat connect failed")
        return False


@socketio.on("disconnect", namespace=NAMESPACE)
def disconnect(*_args: Any) -> None:
    """Forget the connection in every room it was in; tell those rooms."""
    try:
        registry = presence_for()
        for name in registry.remove_sid(request.sid):
            _emit_presence(registry, name)
    except Exception:
        logger.exception("chat disconnect failed")


def _emit_presence(registry: Any, name: str) -> None:
    _, case_id, key = name.split(":", 2)
    socketio.emit(
        "presence",
        chat.presence_payload(int(case_id), key, online(registry, name)),
        to=name,
        namespace=NAMESPACE,
    )


@socketio.on("join_case", namespace=NAMESPACE)
@_event
def join_case(data: Any) -> dict[str, Any]:
    """Enter a room of a case and get what was missed since ``after``.

    Payload ``{"case_id", "room": "joint"|"caucus", "party"?, "after"?}``.
    Ack ``{"ok": true, "room", "party", "room_key", "messages": [...],
    "more": bool, "read_only": bool, "last_read": seq, "last_seq": seq}``;
    ``more`` says that more missed messages wait (join again with the last
    ``seq`` received). Everyone in the room gets the new ``presence``.
    """
    args = schemas.JOIN.load_or_raise(data)
    user, case = user_and_case(args["case_id"])
    key = chat.resolve_room(case, user, args["room"], args.get("party"))
    mode = chat.require_room(case, user, key)
    name = chat.socket_room_of(case, key)
    # In the room before reading: a message stored meanwhile is then broadcast
    # to this connection, replayed, or both (clients keep one per seq), never
    # neither.
    join_room(name, namespace=NAMESPACE)
    limit = chat.replay_limit()
    missed = chat.messages_after(case, key, args.get("after", 0), limit + 1)
    last_read, last_seq = chat.room_state(user, case, key)
    answer = {
        "ok": True,
        "room": chat.split_room(key)[0],
        "party": chat.split_room(key)[1],
        "room_key": key,
        "messages": [chat.serialize_message(m) for m in missed[:limit]],
        "more": len(missed) > limit,
        "read_only": mode != "write",
        "last_read": last_read,
        "last_seq": last_seq,
    }
    member = chat.member_of(user, case, key)
    db.session.commit()
    registry = presence_for()
    registry.add(name, request.sid, member)
    _emit_presence(registry, name)
    return answer


@socketio.on("leave_case", namespace=NAMESPACE)
@_event
def leave_case(data: Any) -> dict[str, Any]:
    """Leave a room (payload ``{"case_id", "room", "party"?}``); ack ``{"ok"}``."""
    args = schemas.LEAVE.load_or_raise(data)
    user, case = user_and_case(args["case_id"])
    key = chat.resolve_room(case, user, args["room"], args.get("party"))
    db.session.commit()
    name = chat.socket_room_of(case, key)
    leave_room(name, namespace=NAMESPACE)
    registry = presence_for()
    if registry.remove(name, request.sid):
        _emit_presence(registry, name)
    return {"ok": True}


@socketio.on("send_message", namespace=NAMESPACE)
@_event
def send_message(data: Any) -> dict[str, Any]:
    """Store a message, then broadcast ``message_created`` to its room.

    Payload ``{"case_id", "room", "party"?, "body", "client_id", "evidence_id"?}``.
    Ack ``{"ok": true, "seq", "id", "message": {...}}``; the same ``client_id``
    again answers with the message stored the first time (``"duplicate":
    true``) and stores nothing.
    """
    args = schemas.SEND.load_or_raise(data)
    user, case = user_and_case(args["case_id"])
    key = chat.resolve_room(case, user, args["room"], args.get("party"))
    message, created = chat.post_message(
        case,
        room=key,
        author=user,
        body=args.get("body", ""),
        client_id=args["client_id"],
        evidence_id=args.get("evidence_id"),
        now=clock.now_utc(),
        admit=_check_rate,
    )
    answer = {
        "ok": True,
        "seq": message.seq,
        "id": message.id,
        "duplicate": not created,
        "message": chat.serialize_message(message),
    }
    db.session.commit()
    return answer


@socketio.on("typing", namespace=NAMESPACE)
@_event
def typing(data: Any) -> dict[str, Any]:
    """Tell the others in the room that the user is typing.

    Payload ``{"case_id", "room", "party"?}``; the others get ``typing
    {"case_id", "room", "party", "room_key", "user": {"id", "name"}, "role"}``
    (in the group room a consumer's ``name`` is null and ``case_reference``
    names them; ``case_id`` is the group room's case).
    """
    args = schemas.TYPING.load_or_raise(data)
    user, case = user_and_case(args["case_id"])
    key = chat.resolve_room(case, user, args["room"], args.get("party"))
    chat.require_room(case, user, key, write=True)
    room, party = chat.split_room(key)
    member = chat.member_of(user, case, key)
    payload = {
        "case_id": chat.room_home(case, key),
        "room": room,
        "party": party,
        "room_key": key,
        "user": {"id": user.id, "name": member["name"]},
        "role": member["role"],
    }
    if member.get("case_reference"):
        payload["case_reference"] = member["case_reference"]
    db.session.commit()
    socketio.emit(
        "typing",
        payload,
        to=chat.socket_room_of(case, key),
        skip_sid=request.sid,
        namespace=NAMESPACE,
    )
    return {"ok": True}


@socketio.on("read", namespace=NAMESPACE)
@_event
def read(data: Any) -> dict[str, Any]:
    """Move the user's read position (payload ``{"case_id", "room", "party"?,
    "seq"}``); ack ``{"ok": true, "last_read": seq}``."""
    args = schemas.READ.load_or_raise(data)
    user, case = user_and_case(args["case_id"])
    key = chat.resolve_room(case, user, args["room"], args.get("party"))
    position = chat.mark_read(user, case, key, args["seq"], now=clock.now_utc())
    answer = {"ok": True, "last_read": position.seq}
    db.session.commit()
    return answer
