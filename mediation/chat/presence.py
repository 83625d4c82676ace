"""Who is online in which chat room: in this process, or in Redis for several.

The registry maps each Socket.IO room to the connections (sids) in it and who
they are (``{"id", "name", "role"}``). With ``REDIS_URL`` set every server
process shares it through Redis, so a member connected to another process is
online too; otherwise a dict of this process is enough.

A server process that dies without its connections disconnecting (killed, or
its machine lost) leaves its entries behind. In Redis every entry names the
process that added it, and each process keeps a liveness key alive
(``<prefix>:node:<id>``, refreshed every third of ``CHAT_PRESENCE_TTL_SECONDS``):
entries of a process whose key expired are dropped when the room is next read.
Rooms expire a day after their last join.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from typing import Any, Protocol

from flask import Flask, current_app

logger = logging.getLogger(__name__)

#: Seconds a room's entries live in Redis after the last join to it.
REDIS_TTL = 24 * 3600
#: Default seconds a process's liveness key outlives its last refresh.
NODE_TTL = 30
_EXTENSION_KEY = "mediation.chat.presence"
_create_lock = threading.Lock()
_node_ids: dict[int, str] = {}
#: The liveness keys this process keeps alive: key -> refreshing thread.
_heartbeats: dict[str, threading.Thread] = {}
_heartbeat_lock = threading.Lock()


class Presence(Protocol):
    """What the chat needs of a presence registry."""

    def add(self, room: str, sid: str, member: dict[str, Any]) -> None:
        """Record that connection ``sid`` of ``member`` is in ``room``."""

    def remove(self, room: str, sid: str) -> bool:
        """Forget ``sid`` in ``room``; return whether it was there."""

    def remove_sid(self, sid: str) -> list[str]:
        """Forget ``sid`` everywhere; return the rooms it was in."""

    def entries(self, room: str) -> dict[str, dict[str, Any]]:
        """Return ``{sid: member}`` of ``room``."""


def online(registry: Presence, room: str) -> list[dict[str, Any]]:
    """Return the members online in ``room``, once per user, sorted by name."""
    people: dict[int, dict[str, Any]] = {}
    for member in registry.entries(room).values():
        people.setdefault(member["id"], member)
    return sorted(people.values(), key=lambda m: (m.get("name") or "", m["id"]))


class MemoryPresence:
    """The registry of a single server process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rooms: dict[str, dict[str, dict[str, Any]]] = {}
        self._sids: dict[str, set[str]] = {}

    def add(self, room: str, sid: str, member: dict[str, Any]) -> None:
        with self._lock:
            self._rooms.setdefault(room, {})[sid] = dict(member)
            self._sids.setdefault(sid, set()).add(room)

    def remove(self, room: str, sid: str) -> bool:
        with self._lock:
            members = self._rooms.get(room, {})
            found = members.pop(sid, None) is not None
            if not members:
                self._rooms.pop(room, None)
            rooms = self._sids.get(sid)
            if rooms is not None:
                rooms.discard(room)
                if not rooms:
                    del self._sids[sid]
            return found

    def remove_sid(self, sid: str) -> list[str]:
        with self._lock:
            rooms = sorted(self._sids.pop(sid, set()))
            for room in rooms:
                members = self._rooms.get(room, {})
                members.pop(sid, None)
                if not members:
                    self._rooms.pop(room, None)
            return rooms

    def entries(self, room: str) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {sid: dict(m) for sid, m in self._rooms.get(room, {}).items()}


class RedisPresence:
    """The registry shared by every server process through Redis.

    Keys: ``<prefix>:room:<room>`` is a hash sid -> member (JSON);
    ``<prefix>:sid:<sid>`` is the set of rooms of a connection.
    """

    def __init__(
        self,
        client: Any,
        prefix: str,
        *,
        node: str | None = None,
        node_ttl: int = NODE_TTL,
    ) -> None:
        self._redis = client
        self._prefix = prefix
        self._node = node or node_id()
        self._node_ttl = max(int(node_ttl), 1)

    def _alive(self, node: str) -> str:
        return f"{self._prefix}:node:{node}"

    def keep_alive(self) -> None:
        """Mark this process alive now, and keep it so from a daemon thread."""
        key = self._alive(self._node)
        try:
            self._redis.set(key, 1, ex=self._node_ttl)
        except Exception:  # Redis away: the thread (and every add) retries
            logger.warning("presence heartbeat failed", exc_info=True)
        with _heartbeat_lock:
            if key in _heartbeats and _heartbeats[key].is_alive():
                return
            thread = threading.Thread(
                target=self._beat, args=(key,), name="presence-heartbeat", daemon=True
            )
            _heartbeats[key] = thread
            thread.start()

    def _beat(self, key: str) -> None:
        stop = threading.Event()  # never set: the thread ends with the process
        while not stop.wait(self._node_ttl / 3):
            try:
                self._redis.set(key, 1, ex=self._node_ttl)
            except Exception:  # Redis away for a moment: try again next beat
                logger.warning("presence heartbeat failed", exc_info=True)

    def _room(self, room: str) -> str:
        return f"{self._prefix}:room:{room}"

    def _sid(self, sid: str) -> str:
        return f"{self._prefix}:sid:{sid}"

    def add(self, room: str, sid: str, member: dict[str, Any]) -> None:
        pipe = self._redis.pipeline()
        pipe.hset(self._room(room), sid, json.dumps({**member, "_node": self._node}))
        pipe.set(self._alive(self._node), 1, ex=self._node_ttl)
        pipe.expire(self._room(room), REDIS_TTL)
        pipe.sadd(self._sid(sid), room)
        pipe.expire(self._sid(sid), REDIS_TTL)
        pipe.execute()

    def remove(self, room: str, sid: str) -> bool:
        pipe = self._redis.pipeline()
        pipe.hdel(self._room(room), sid)
        pipe.srem(self._sid(sid), room)
        removed, _ = pipe.execute()
        return bool(removed)

    def remove_sid(self, sid: str) -> list[str]:
        rooms = sorted(
            r.decode() if isinstance(r, bytes) else r
            for r in self._redis.smembers(self._sid(sid))
        )
        pipe = self._redis.pipeline()
        for room in rooms:
            pipe.hdel(self._room(room), sid)
        pipe.delete(self._sid(sid))
        pipe.execute()
        return rooms

    def entries(self, room: str) -> dict[str, dict[str, Any]]:
        raw = self._redis.hgetall(self._room(room))
        out: dict[str, dict[str, Any]] = {}
        nodes: dict[str, str | None] = {}
        for sid, value in raw.items():
            key = sid.decode() if isinstance(sid, bytes) else sid
            out[key] = json.loads(value)
            nodes[key] = out[key].pop("_node", None)
        known = sorted({n for n in nodes.values() if n})
        if known:
            alive = self._redis.mget([self._alive(n) for n in known])
            dead = {n for n, flag in zip(known, alive, strict=True) if flag is None}
            gone = [sid for sid, node in nodes.items() if node in dead]
            if gone:
                # Connections of a process that died: forget them for good.
                pipe = self._redis.pipeline()
                pipe.hdel(self._room(room), *gone)
                for sid in gone:
                    pipe.delete(self._sid(sid))
                    del out[sid]
                pipe.execute()
        return out


def node_id() -> str:
    """Return this process's id in presence entries (a restarted process, or a
    forked one, is a new one)."""
    pid = os.getpid()
    if pid not in _node_ids:
        name = os.environ.get("NODE_NAME") or "node"
        _node_ids[pid] = f"{name}-{pid}-{uuid.uuid4().hex[:8]}"
    return _node_ids[pid]


def presence_for(app: Flask | None = None) -> Presence:
    """Return the app's registry: Redis when ``REDIS_URL`` is set, else memory."""
    app = app or current_app._get_current_object()
    registry = app.extensions.get(_EXTENSION_KEY)
    if registry is not None:
        return registry
    with _create_lock:
        registry = app.extensions.get(_EXTENSION_KEY)
        if registry is not None:
            return registry
        url = app.config.get("REDIS_URL")
        if url:
            import redis

            channel = app.config.get("SOCKETIO_CHANNEL") or "flask-socketio"
            # A blocking pool: when every connection is busy (hundreds of sockets
            # leaving at once) a caller waits a moment instead of failing with
            # "Too many connections" and leaving stale presence behind.
            pool = redis.BlockingConnectionPool.from_url(
                url,
                max_connections=app.config.get("REDIS_MAX_CONNECTIONS", 50),
                timeout=5,
            )
            registry = RedisPresence(
                redis.Redis(connection_pool=pool),
                prefix=f"{channel}:chat:presence",
                node_ttl=app.config.get("CHAT_PRESENCE_TTL_SECONDS") or NODE_TTL,
            )
            registry.keep_alive()
        else:
            registry = MemoryPresence()
        app.extensions[_EXTENSION_KEY] = registry
        return registry
