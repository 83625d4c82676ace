"""Chat rooms, their messages and each reader's read position.

How a room numbers its messages
-------------------------------

Every message of a room gets the next sequence number ``seq`` (1, 2, 3 ...)
before it is broadcast; clients resume with "everything after ``seq``". The
number is drawn from a counter row per room, :class:`ChatRoom`, with one upsert
``INSERT INTO chat_rooms ... VALUES (case, room, 1) ON CONFLICT (case_id, room)
DO UPDATE SET last_seq = chat_rooms.last_seq + 1 RETURNING last_seq``:

- it is race-safe across any number of server processes: PostgreSQL locks the
  counter row until the transaction ends, so a second writer of the same room
  waits and then reads the incremented value (no retry loop, no error to
  handle, no ``SELECT max(seq)`` that two writers could both read); the room's
  first message creates the row in the same statement;
- it is gap-free: the increment belongs to the message's transaction, so a
  rolled-back message gives its number back, and a retry that stores nothing
  (its ``client_id`` is known) gives it back at once, while it still holds the
  row's lock;
- rooms do not contend with each other (one row each) and the lock is held only
  until the event's commit, right after the insert.

On PostgreSQL the upsert and the message's ``INSERT ... ON CONFLICT (author_id,
client_id) DO NOTHING`` are one statement (a CTE): storing a message is one
round trip (see :mod:`mediation.chat.services`).

The unique constraint ``(case_id, room, seq)`` stays as the guarantee that no
number is ever handed out twice. The alternative (``max(seq) + 1`` with that
constraint and a retry in a savepoint) needs no extra table but turns every
collision into an exception and a retry, which under a busy room is most of
them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mediation.dbtypes import UTCDateTime
from mediation.extensions import db

#: Room keys as stored (``room`` columns): the joint room and the two caucuses.
ROOM_KEYS = ("joint", "caucus:consumer", "caucus:merchant")


class ChatRoom(db.Model):
    """The sequence counter of one room of a case (see the module docstring)."""

    __tablename__ = "chat_rooms"

    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), primary_key=True)
    #: ``joint``, ``caucus:consumer`` or ``caucus:merchant``.
    room: Mapped[str] = mapped_column(String(20), primary_key=True)
    #: The ``seq`` of the room's latest message (0: none yet).
    last_seq: Mapped[int] = mapped_column(default=0)


class ChatMessage(db.Model):
    """One message of a room, stored before it is broadcast."""

    __tablename__ = "chat_messages"
    __table_args__ = (
        UniqueConstraint("case_id", "room", "seq"),
        # A retry of the same message (same sender, same client id) stores once.
        UniqueConstraint("author_id", "client_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    #: ``joint``, ``caucus:consumer`` or ``caucus:merchant``.
    room: Mapped[str] = mapped_column(String(20))
    #: 1, 2, 3 ... within the room, in the order the messages were stored.
    seq: Mapped[int] = mapped_column()
    #: None for system messages and proposal cards.
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    #: The author's relation to the case when writing (consumer, merchant,
    #: platform, mediator) or ``system``.
    author_role: Mapped[str] = mapped_column(String(20))
    #: ``text``, ``attachment``, ``proposal`` or ``system``.
    kind: Mapped[str] = mapped_column(String(20), default="text")
    #: Plain text as typed (escaped on display); empty for system messages.
    body: Mapped[str] = mapped_column(Text, default="")
    #: Structured content: the proposal's fields, the system event, the evidence.
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: The sender's id for the message (a UUID): a retry with it stores once.
    client_id: Mapped[str | None] = mapped_column(String(64))
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime())

    author = relationship("User")

    def __repr__(self) -> str:
        return f"<ChatMessage {self.case_id}/{self.room}#{self.seq}>"


class ChatReadPosition(db.Model):
    """How far a user has read a room: the ``seq`` of the last message seen."""

    __tablename__ = "chat_read_positions"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), primary_key=True)
    room: Mapped[str] = mapped_column(String(20), primary_key=True)
    seq: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
