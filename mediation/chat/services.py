"""Chat services: who may use which room, storing messages, replay, read positions.

Plain functions in the house style: they add and flush, never commit, and queue
the ``message_created`` broadcast for after the commit (so nothing is announced
that was not stored). Every message gets its room's next sequence number before
it is broadcast (see :mod:`mediation.chat.models`).

Rooms: the API names a room ``joint``, or ``caucus`` with a ``party``
(``consumer`` or ``merchant``), or ``group``; stored and internal, a room is a
key: ``joint``, ``caucus:consumer``, ``caucus:merchant``, ``group``. The
Socket.IO room of a key is ``case:<id>:<key>``.

The group room of a case group (:mod:`mediation.analytics.groups`) is reached
through any case of the group but lives on one of them, the group's first case:
its messages, counter, read positions and Socket.IO room are that case's
(:func:`room_home`). There consumers are named by their complaint, never by
name (:func:`serialize_message`, :func:`member_of`).
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import Integer, bindparam, func, true, update
from sqlalchemy.orm import joinedload, make_transient_to_detached

from mediation.auth.models import User
from mediation.auth.permissions import case_relation
from mediation.cases import lifecycle as lc
from mediation.cases.models import Case, Evidence, Offer
from mediation.chat.models import ROOM_KEYS, ChatMessage, ChatReadPosition, ChatRoom
from mediation.errors import (
    DomainError,
    NotFound,
    PermissionDenied,
    ReadOnly,
    TooLong,
    ValidationError,
)
from mediation.extensions import db
from mediation.unit_of_work import after_commit

logger = logging.getLogger(__name__)

NAMESPACE = "/chat"
JOINT = "joint"
CAUCUS = "caucus"
GROUP = "group"
PARTIES = ("consumer", "merchant")
KINDS = ("text", "attachment", "proposal", "system")
#: Default of ``CHAT_MAX_LENGTH`` (characters of one message).
DEFAULT_MAX_LENGTH = 2000
#: Default of ``CHAT_REPLAY_LIMIT``: most messages one replay or page returns.
DEFAULT_REPLAY_LIMIT = 500
_SURROGATE = re.compile("[\ud800-\udfff]")
#: Case actions after which someone may have lost a room (see :func:`on_case_event`).
MEMBERSHIP_ACTIONS = frozenset(
    {"take", "reassign", "auto_assign", "link_merchant", "decide_objection"}
)


# Rooms and access -------------------------------------------------------------

#: The columns of a case that :func:`room_access` and ``case_relation`` read:
#: the socket handlers load only these with the user (other columns load if
#: ever read; ``tests/test_chat_events.py`` counts the statements per event).
ACCESS_COLUMNS = (
    Case.id,
    Case.status,
    Case.consumer_id,
    Case.merchant_id,
    Case.platform_id,
    Case.platform_escalated_at,
    Case.mediator_id,
    Case.arbitrator_id,
    Case.group_id,
)


def room_key(room: str, party: str | None = None) -> str:
    """Return the stored key of an API room.

    :param room: ``joint``, ``caucus`` or ``group``.
    :param party: for ``caucus``, whose: ``consumer`` or ``merchant``.
    :raise ValidationError: for an unknown room, or a caucus without its party.
    """
    if room in (JOINT, GROUP):
        return room
    if room == CAUCUS and party in PARTIES:
        return f"{CAUCUS}:{party}"
    if room == CAUCUS:
        raise ValidationError(
            fields={"party": _l("Name the party: consumer or merchant.")}
        )
    raise ValidationError(fields={"room": _l("The room is joint, caucus or group.")})


def split_room(key: str) -> tuple[str, str | None]:
    """Return the API ``(room, party)`` of a stored room key."""
    room, _, party = key.partition(":")
    return room, party or None


def party_of(relation: str | None) -> str | None:
    """Return the party a relation speaks for (``consumer`` or ``merchant``)."""
    if relation == "consumer":
        return "consumer"
    if relation in ("merchant", "platform"):
        return "merchant"
    return None


def resolve_room(case: Case, user: User, room: str, party: str | None) -> str:
    """Return the room key a user means: a party's ``caucus`` is its own.

    :raise ValidationError: for an unknown room, or a mediator's caucus without
        the party.
    :raise NotFound, PermissionDenied: a ``caucus`` asked by someone who has
        none (see :func:`require_room`).
    """
    if room == CAUCUS and party is None:
        party = party_of(case_relation(user, case))
        if (
            party is None
            and room_access(case, user, group=False).get("caucus:consumer") is None
        ):
            # Not a party nor the mediator: no caucus at all, whichever is meant.
            require_room(case, user, "caucus:consumer")
    return room_key(room, party)


def socket_room(case_id: int, key: str) -> str:
    """Return the Socket.IO room of a stored room key (``case:<id>:<key>``)."""
    return f"case:{case_id}:{key}"


def room_home(case: Case, key: str) -> int:
    """Return the id of the case whose rooms hold room ``key`` of ``case``.

    The case itself, but for the group room: the group's first case.

    :raise PermissionDenied: for the group room of a case in no group.
    """
    if key != GROUP:
        return case.id
    from mediation.analytics.groups import group_room_case_id

    home = group_room_case_id(case)
    if home is None:
        raise PermissionDenied(_l("This complaint is not in a case group."))
    return home


def socket_room_of(case: Case, key: str) -> str:
    """Return the Socket.IO room of room ``key`` of ``case`` (see :func:`room_home`)."""
    return socket_room(room_home(case, key), key)


def is_writable(case: Case) -> bool:
    """Say whether the rooms of a case take messages now (mediation under way)."""
    return case.status == lc.IN_MEDIATION and case.mediator_id is not None


def room_access(case: Case, user: User | None, *, group: bool = True) -> dict[str, str]:
    """Return the rooms of ``case`` the user may use, each ``write`` or ``read``.

    The joint room: the consumer, the merchant side and the assigned mediator
    (write while mediation is under way, read otherwise); the assigned
    arbitrator and regulators read it. A party's caucus: that party and the
    assigned mediator. Nobody else, and nothing for a mediator who is not the
    case's. The group room of a grouped case: see
    :func:`mediation.analytics.groups.group_room_mode`.

    :param group: also say about the group room (costs a query or two for a
        grouped case; the events of the other rooms leave it out).
    """
    relation = case_relation(user, case)
    if relation is None:
        return {}
    mode = "write" if is_writable(case) else "read"
    rooms: dict[str, str] = {}
    if relation == "consumer":
        rooms = {JOINT: mode, "caucus:consumer": mode}
    elif relation in ("merchant", "platform"):
        rooms = {JOINT: mode, "caucus:merchant": mode}
    elif relation == "mediator" and case.mediator_id == user.id:
        rooms = dict.fromkeys(ROOM_KEYS, mode)
    elif relation == "arbitrator" and case.arbitrator_id == user.id:
        rooms = {JOINT: "read"}
    elif relation == "regulator":
        rooms = {JOINT: "read"}
    if group and case.group_id is not None:
        from mediation.analytics.groups import group_room_mode

        grouped = group_room_mode(case, user, relation)
        if grouped is not None:
            rooms[GROUP] = grouped
    return rooms


def require_room(case: Case, user: User, key: str, *, write: bool = False) -> str:
    """Check that ``user`` may use room ``key`` of ``case``; return the mode.

    :raise NotFound: when the user has no relation to the case at all.
    :raise PermissionDenied: when the user knows the case but not this room.
    :raise ReadOnly: when ``write`` is asked of a room the user may only read.
    """
    access = room_access(case, user, group=key == GROUP)
    mode = access.get(key)
    if mode is None:
        if case_relation(user, case) is None:
            raise NotFound()
        raise PermissionDenied(_l("This conversation is not open to you."))
    if write and mode != "write":
        raise ReadOnly()
    return mode


# Storing ----------------------------------------------------------------------


def max_length() -> int:
    """Return the longest message accepted (``CHAT_MAX_LENGTH``)."""
    return int(current_app.config.get("CHAT_MAX_LENGTH") or DEFAULT_MAX_LENGTH)


def replay_limit() -> int:
    """Return the most messages one replay or page holds (``CHAT_REPLAY_LIMIT``)."""
    return int(current_app.config.get("CHAT_REPLAY_LIMIT") or DEFAULT_REPLAY_LIMIT)


def _insert_for() -> Any:
    """Return the ``insert`` construct of the session's database (upserts)."""
    name = db.session.get_bind().dialect.name
    if name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:  # pragma: no cover - the app runs on PostgreSQL or SQLite
        raise RuntimeError(f"no upsert for database {name!r}")
    return insert


#: Built once per database: (seq, id) of a message, or (seq, None) for a retry.
_INSERT_STATEMENTS: dict[str, Any] = {}
_MESSAGE_COLUMNS = (
    "case_id",
    "room",
    "author_id",
    "author_role",
    "kind",
    "body",
    "data",
    "client_id",
    "sent_at",
)


def _insert_statements(name: str) -> Any:
    """Return the statements that number and store a message (built once).

    On PostgreSQL one statement: a CTE draws the room's next ``seq`` (the
    counter row is created on the room's first message by the same upsert) and
    inserts the message with it, ``ON CONFLICT (author_id, client_id) DO
    NOTHING``; it returns ``(seq, id)``, ``id`` None when the client id was
    stored before. SQLite has no data-modifying CTEs: the same two statements
    one after the other.
    """
    found = _INSERT_STATEMENTS.get(name)
    if found is not None:
        return found
    insert = _insert_for()
    rooms = ChatRoom.__table__
    messages = ChatMessage.__table__
    bump = (
        insert(rooms)
        .values(case_id=bindparam("case_id"), room=bindparam("room"), last_seq=1)
        .on_conflict_do_update(
            index_elements=[rooms.c.case_id, rooms.c.room],
            set_={"last_seq": rooms.c.last_seq + 1},
        )
        .returning(rooms.c.last_seq)
    )
    params = {c: bindparam(c, type_=messages.c[c].type) for c in _MESSAGE_COLUMNS}
    if name == "postgresql":
        counter = bump.cte("bump")
        source = db.select(*(params[c] for c in _MESSAGE_COLUMNS), counter.c.last_seq)
        stored = (
            insert(messages)
            .from_select([*_MESSAGE_COLUMNS, "seq"], source)
            .on_conflict_do_nothing(
                index_elements=[messages.c.author_id, messages.c.client_id]
            )
            .returning(messages.c.id)
            .cte("stored")
        )
        found = db.select(counter.c.last_seq, stored.c.id).select_from(
            counter.outerjoin(stored, true())
        )
    else:
        found = (
            bump,
            insert(messages)
            .values(**params, seq=bindparam("seq", type_=messages.c.seq.type))
            .on_conflict_do_nothing(
                index_elements=[messages.c.author_id, messages.c.client_id]
            )
            .returning(messages.c.id),
        )
    _INSERT_STATEMENTS[name] = found
    return found


def _insert_message(values: dict[str, Any]) -> tuple[int, int | None]:
    """Number and insert a message; return ``(seq, id)``.

    ``id`` is None when the author's ``client_id`` is stored already (a retry):
    nothing is inserted and the room's counter is given its number back (the
    counter row stays locked by this transaction, so nobody drew a number
    since). Numbers stay gap-free.
    """
    session = db.session
    session.flush()  # anything pending goes first (the statements are Core)
    connection = session.connection()
    name = connection.dialect.name
    statements = _insert_statements(name)
    if name == "postgresql":
        seq, message_id = connection.execute(statements, values).one()
    else:
        bump, insert_message = statements
        seq = connection.execute(
            bump, {"case_id": values["case_id"], "room": values["room"]}
        ).scalar_one()
        message_id = connection.execute(insert_message, {**values, "seq": seq}).scalar()
    if message_id is None:
        connection.execute(
            update(ChatRoom)
            .where(
                ChatRoom.case_id == values["case_id"],
                ChatRoom.room == values["room"],
            )
            .values(last_seq=ChatRoom.last_seq - 1)
        )
    return seq, message_id


def last_seq(case: Case, key: str) -> int:
    """Return the ``seq`` of the room's latest message (0 when empty)."""
    row = db.session.get(ChatRoom, (room_home(case, key), key))
    return row.last_seq if row is not None else 0


def room_state(user: User, case: Case, key: str) -> tuple[int, int]:
    """Return ``(read position of user, seq of the latest message)`` of a room.

    One query for what :func:`read_position` and :func:`last_seq` give.
    """
    row = db.session.execute(
        _ROOM_STATE,
        {"user_id": user.id, "case_id": room_home(case, key), "room": key},
    ).one()
    return int(row[0]), int(row[1])


_ROOM_STATE = db.select(
    func.coalesce(
        db.select(ChatReadPosition.seq)
        .where(
            ChatReadPosition.user_id == bindparam("user_id"),
            ChatReadPosition.case_id == bindparam("case_id"),
            ChatReadPosition.room == bindparam("room"),
        )
        .scalar_subquery(),
        0,
    ),
    func.coalesce(
        db.select(ChatRoom.last_seq)
        .where(
            ChatRoom.case_id == bindparam("case_id"),
            ChatRoom.room == bindparam("room"),
        )
        .scalar_subquery(),
        0,
    ),
)


def _store(
    case: Case,
    key: str,
    *,
    author: User | None,
    role: str,
    kind: str,
    body: str,
    data: dict[str, Any],
    client_id: str | None,
    now: datetime,
) -> ChatMessage | None:
    """Insert a message with the room's next seq; return it (not yet announced).

    :return: None when ``client_id`` of ``author`` is stored already (nothing
        inserted).
    """
    values = {
        "case_id": room_home(case, key),
        "room": key,
        "author_id": author.id if author else None,
        "author_role": role,
        "kind": kind,
        "body": body,
        "data": data,
        "client_id": client_id,
        "sent_at": now,
    }
    seq, message_id = _insert_message(values)
    if message_id is None:
        return None
    message = ChatMessage(id=message_id, seq=seq, **values)
    message.author = author
    # Stored by the statement above: the session takes it as loaded, no INSERT.
    make_transient_to_detached(message)
    db.session.add(message)
    return message


def _announce_stored(message: ChatMessage) -> None:
    """Queue the broadcast of a stored message and log it."""
    announce(message)
    logger.info(
        "chat message",
        extra={
            "case_id": message.case_id,
            "room": message.room,
            "seq": message.seq,
            "kind": message.kind,
            "actor_id": message.author_id,
            "actor_role": message.author_role,
        },
    )


def _store_announced(case: Case, key: str, **kw: Any) -> ChatMessage:
    """Store a message without a client id (system, proposal) and announce it."""
    message = _store(case, key, client_id=None, **kw)
    if message is None:  # pragma: no cover - no client id, no conflict
        raise RuntimeError("a message without a client id was not stored")
    _announce_stored(message)
    return message


def find_message(author: User, client_id: str) -> ChatMessage | None:
    """Return the message ``author`` already sent with ``client_id``, if any."""
    return db.session.scalar(
        db.select(ChatMessage).where(
            ChatMessage.author_id == author.id, ChatMessage.client_id == client_id
        )
    )


def _clean_body(body: Any, *, allow_empty: bool) -> str:
    """Return the message text, trimmed, or raise the error that explains why not.

    :raise ValidationError: not text, empty, or with characters databases refuse.
    :raise TooLong: above ``CHAT_MAX_LENGTH``.
    """
    if not isinstance(body, str):
        raise ValidationError(fields={"body": _l("Enter text.")})
    text = body.strip()
    if "\x00" in text or _SURROGATE.search(text):
        raise ValidationError(
            fields={"body": _l("The text contains characters that are not allowed.")}
        )
    if not text and not allow_empty:
        raise ValidationError(fields={"body": _l("Write a message.")})
    limit = max_length()
    if len(text) > limit:
        raise TooLong(
            _l(
                "A message may have at most %(limit)s characters.",
                limit=limit,
            ),
            fields={"body": _l("Too long.")},
        )
    return text


def _attachment(case: Case, author: User, evidence_id: Any) -> dict[str, Any]:
    """Return the card data of evidence the author uploaded to this case.

    :raise ValidationError: for anything else.
    """
    evidence = (
        db.session.get(Evidence, evidence_id)
        if isinstance(evidence_id, int) and not isinstance(evidence_id, bool)
        else None
    )
    if (
        evidence is None
        or evidence.case_id != case.id
        or (evidence.uploader_id != author.id)
    ):
        raise ValidationError(
            fields={"evidence_id": _l("Attach evidence you added to this case.")}
        )
    return {
        "evidence_id": evidence.id,
        "name": evidence.original_name,
        "size": evidence.size,
        "content_type": evidence.content_type,
        "sha256": evidence.sha256,
    }


def post_message(
    case: Case,
    *,
    room: str,
    author: User,
    body: Any,
    client_id: str | None,
    now: datetime,
    evidence_id: int | None = None,
    admit: Callable[[User], None] | None = None,
) -> tuple[ChatMessage, bool]:
    """Store a participant's message in a room of the case.

    The same ``client_id`` from the same author returns the message already
    stored (a retry after a lost acknowledgement), not a second one. The
    duplicate check is the insert itself (``ON CONFLICT DO NOTHING`` on the
    unique ``(author_id, client_id)``): a new message costs no extra query, and
    two copies of one retry reaching two server processes at once store once.

    :param room: the stored room key (see :func:`room_key`).
    :param evidence_id: evidence of this case uploaded by the author: the
        message becomes an ``attachment`` card (``body`` is then optional).
    :param admit: called with the author once the message is stored and known
        to be new (a retry never is): the adapter's rate limit. What it raises
        refuses the message; the caller then rolls back, as on every refusal.
    :return: the message and whether it was stored now (False: a retry).
    :raise NotFound, PermissionDenied, ReadOnly: see :func:`require_room`.
    :raise ValidationError: an empty body, a bad evidence id, a client id used
        for another room.
    :raise TooLong: above ``CHAT_MAX_LENGTH``.
    """
    try:
        require_room(case, author, room, write=True)
        text = _clean_body(body, allow_empty=evidence_id is not None)
        data: dict[str, Any] = {}
        kind = "text"
        relation = case_relation(author, case) or "unknown"
        if evidence_id is not None:
            if room == GROUP:
                # Evidence belongs to one case, which the others may not open.
                raise ValidationError(
                    fields={
                        "evidence_id": _l(
                            "Files go to your own complaint, not to the group room."
                        )
                    }
                )
            data = _attachment(case, author, evidence_id)
            kind = "attachment"
        if room == GROUP and relation == "consumer":
            # Named by the complaint in the group room, never by name.
            data = {"case_id": case.id, "case_reference": case.reference}
    except DomainError:
        # A retry of a message stored before is answered even if it would not
        # pass now (the room closed since, the limit was lowered...).
        existing = find_message(author, client_id) if client_id else None
        if existing is None:
            raise
        return _replayed(existing, case, room), False
    message = _store(
        case,
        room,
        author=author,
        role=relation,
        kind=kind,
        body=text,
        data=data,
        client_id=client_id,
        now=now,
    )
    if message is None:
        # A retry (perhaps a moment ago, through another server process).
        existing = find_message(author, client_id) if client_id else None
        if existing is None:  # pragma: no cover - the conflict says it exists
            raise RuntimeError("a conflicting chat message vanished")
        return _replayed(existing, case, room), False
    if admit is not None:
        admit(author)
    _announce_stored(message)
    return message, True


def _replayed(message: ChatMessage, case: Case, room: str) -> ChatMessage:
    """Return a message found by its client id, if it is the one retried.

    :raise ValidationError: when the client id was used for another room.
    """
    if message.room != room or message.case_id != room_home(case, room):
        raise ValidationError(
            fields={"client_id": _l("This id was already used for another message.")}
        )
    return message


def post_system_message(
    case: Case, *, action: str, data: dict[str, Any], now: datetime
) -> ChatMessage:
    """Store a system message about a case event in the joint room.

    :param data: ``{"action", "status", ...}``; the reader's page words it.
    """
    return _store_announced(
        case,
        JOINT,
        author=None,
        role="system",
        kind="system",
        body="",
        data=_jsonable({"action": action, **data}),
        now=now,
    )


def post_proposal(case: Case, offer: Offer, *, now: datetime) -> ChatMessage:
    """Store the card of a mediator's settlement proposal in the joint room."""
    return _store_announced(
        case,
        JOINT,
        author=offer.author,
        role="mediator",
        kind="proposal",
        body=offer.text,
        data=_offer_data(offer),
        now=now,
    )


def _offer_data(offer: Offer) -> dict[str, Any]:
    return _jsonable(
        {
            "offer_id": offer.id,
            "type": offer.type,
            "amount": offer.amount,
            "deadline": offer.deadline,
            "text": offer.text,
            "status": offer.status,
            "consumer_accepted_at": offer.consumer_accepted_at,
            "merchant_accepted_at": offer.merchant_accepted_at,
        }
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value


def on_case_event(
    case: Case,
    *,
    action: str,
    from_status: str | None,
    data: dict[str, Any] | None,
    now: datetime,
) -> None:
    """Tell the joint room about a case event (called by ``apply_action``).

    Only cases with a mediator have a conversation: a ``propose`` posts the
    proposal card, every other event a system message. Connections of people
    the event took out of a room (a mediator replaced, say) leave it.
    """
    if action in MEMBERSHIP_ACTIONS:
        _evict_lost_members(case)
    if case.mediator_id is None:
        return
    data = data or {}
    if action == "propose" and data.get("offer_id"):
        offer = db.session.get(Offer, data["offer_id"])
        if offer is not None:
            post_proposal(case, offer, now=now)
            return
    details = {k: v for k, v in data.items() if k not in ("action",)}
    post_system_message(
        case,
        action=action,
        data={
            **details,
            "status": case.status,
            "from_status": from_status,
            "due_at": case.due_at,
        },
        now=now,
    )


def _evict_lost_members(case: Case) -> None:
    """After the commit, take out of the case's rooms whoever lost them."""
    from mediation.chat.presence import presence_for

    registry = presence_for()
    leaving: list[tuple[str, str]] = []
    for key in ROOM_KEYS:
        name = socket_room(case.id, key)
        for sid, member in registry.entries(name).items():
            user = db.session.get(User, member.get("id"))
            if key not in room_access(case, user):
                leaving.append((sid, name))
    if leaving:
        after_commit(lambda: leave_rooms(case.id, leaving))


def leave_rooms(case_id: int, leaving: list[tuple[str, str]]) -> None:
    """Take connections out of rooms of a case and tell the rooms (run after
    the commit that took the rooms from them).

    :param leaving: ``(sid, Socket.IO room name)`` pairs.
    """
    from mediation.chat.presence import online, presence_for
    from mediation.extensions import socketio

    registry = presence_for()
    rooms = set()
    for sid, name in leaving:
        socketio.server.leave_room(sid, name, namespace=NAMESPACE)
        registry.remove(name, sid)
        rooms.add(name)
    for name in sorted(rooms):
        key = name.split(":", 2)[2]
        socketio.emit(
            "presence",
            presence_payload(case_id, key, online(registry, name)),
            to=name,
            namespace=NAMESPACE,
        )


# Reading ----------------------------------------------------------------------


def messages_after(
    case: Case, room: str, after: int, limit: int | None = None
) -> list[ChatMessage]:
    """Return the room's messages with ``seq`` above ``after``, oldest first.

    :param limit: at most this many (None: ``CHAT_REPLAY_LIMIT``).
    """
    return list(
        db.session.scalars(
            _messages_after_query(),
            {
                "case_id": room_home(case, room),
                "room": room,
                "after": after,
                "limit": limit or replay_limit(),
            },
        ).all()
    )


@functools.cache
def _messages_after_query() -> Any:
    """Return the replay query (built once, on first use: the mappers must be
    configured by then)."""
    return (
        db.select(ChatMessage)
        .where(
            ChatMessage.case_id == bindparam("case_id"),
            ChatMessage.room == bindparam("room"),
            ChatMessage.seq > bindparam("after"),
        )
        .order_by(ChatMessage.seq)
        .limit(bindparam("limit", type_=Integer))
        .options(joinedload(ChatMessage.author))
    )


def serialize_message(message: ChatMessage) -> dict[str, Any]:
    """Return the ``message_created`` payload of a message (API.md, plus ``data``).

    ``room`` and ``party`` are the API's names of the room (``joint``, or
    ``caucus`` and the party, or ``group``); ``room_key`` is the stored key. A
    proposal card carries the proposal's current status and acceptances. In
    the group room a consumer's name is left out (``author.name`` null): the
    reader's page names them by their complaint (``data.case_reference``).
    """
    room, party = split_room(message.room)
    author = message.author
    data = dict(message.data or {})
    if message.kind == "proposal" and data.get("offer_id"):
        offer = db.session.get(Offer, data["offer_id"])
        if offer is not None:
            data = _offer_data(offer)
    if (
        author is not None
        and message.room == GROUP
        and message.author_role in ("consumer",)
    ):
        shown = {"id": author.id, "name": None}
    else:
        shown = {"id": author.id, "name": author.name} if author else None
    return {
        "case_id": message.case_id,
        "room": room,
        "party": party,
        "room_key": message.room,
        "seq": message.seq,
        "id": message.id,
        "client_id": message.client_id,
        "author": shown,
        "role": message.author_role,
        "kind": message.kind,
        "body": message.body,
        "data": data,
        "sent_at": message.sent_at.isoformat(),
    }


def announce(message: ChatMessage) -> None:
    """Broadcast ``message_created`` to the message's room after the commit."""
    from mediation.extensions import socketio

    payload = serialize_message(message)
    name = socket_room(message.case_id, message.room)
    after_commit(
        lambda: socketio.emit("message_created", payload, to=name, namespace=NAMESPACE)
    )


def member_of(user: User, case: Case, key: str) -> dict[str, Any]:
    """Return how the presence list and typing line show ``user`` in room
    ``key`` of ``case``: id, name, relation. In the group room a consumer has no
    name but their complaint's reference (``case_reference``); ``via_case_id``
    says through which case they came (for :func:`room_access` later)."""
    relation = case_relation(user, case) or user.role
    member: dict[str, Any] = {"id": user.id, "name": user.name, "role": relation}
    if key == GROUP:
        member["via_case_id"] = case.id
        if relation == "consumer":
            member["name"] = None
            member["case_reference"] = case.reference
    return member


def presence_payload(
    case_id: int, key: str, online: list[dict[str, Any]]
) -> dict[str, Any]:
    """Return the ``presence`` payload of a room."""
    room, party = split_room(key)
    return {
        "case_id": case_id,
        "room": room,
        "party": party,
        "room_key": key,
        "online": online,
    }


# Read positions ---------------------------------------------------------------


def read_position(user: User, case: Case, room: str) -> int:
    """Return the ``seq`` up to which ``user`` has read the room (0: nothing)."""
    row = db.session.get(ChatReadPosition, (user.id, room_home(case, room), room))
    return row.seq if row is not None else 0


_MARK_READ_STATEMENTS: dict[str, Any] = {}


def _mark_read_statement() -> Any:
    """Return the upsert of a read position (built once per database).

    Clamped to the room's last seq, and it only moves forward: two tabs of one
    user marking at once both land on the larger position. RETURNING gives no
    row when the position stays where it was.
    """
    name = db.session.get_bind().dialect.name
    found = _MARK_READ_STATEMENTS.get(name)
    if found is not None:
        return found
    latest = func.coalesce(
        db.select(ChatRoom.last_seq)
        .where(
            ChatRoom.case_id == bindparam("case_id"),
            ChatRoom.room == bindparam("room"),
        )
        .scalar_subquery(),
        0,
    )
    wanted = bindparam("wanted", type_=ChatReadPosition.seq.type)
    insert = _insert_for()(ChatReadPosition).values(
        user_id=bindparam("user_id"),
        case_id=bindparam("case_id"),
        room=bindparam("room"),
        seq=db.case((latest < wanted, latest), else_=wanted),
        updated_at=bindparam("now"),
    )
    found = insert.on_conflict_do_update(
        index_elements=[
            ChatReadPosition.user_id,
            ChatReadPosition.case_id,
            ChatReadPosition.room,
        ],
        set_={"seq": insert.excluded.seq, "updated_at": insert.excluded.updated_at},
        where=ChatReadPosition.seq < insert.excluded.seq,
    ).returning(ChatReadPosition)
    _MARK_READ_STATEMENTS[name] = found
    return found


def mark_read(
    user: User, case: Case, room: str, seq: int, *, now: datetime
) -> ChatReadPosition:
    """Move the user's read position in a room forward to ``seq``.

    A position never moves back, nor past the room's latest message.

    :raise NotFound, PermissionDenied: see :func:`require_room`.
    :raise ValidationError: for a ``seq`` that is not a whole number >= 0.
    """
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise ValidationError(fields={"seq": _l("Enter a whole number.")})
    require_room(case, user, room)
    home = room_home(case, room)
    position = db.session.scalars(
        _mark_read_statement(),
        {
            "user_id": user.id,
            "case_id": home,
            "room": room,
            "wanted": seq,
            "now": now,
        },
        execution_options={"populate_existing": True},
    ).first()
    if position is None:  # not forward of the stored position: unchanged
        position = db.session.get(ChatReadPosition, (user.id, home, room))
    return position
