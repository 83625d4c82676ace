"""JSON shapes of the chat: socket event payloads, the transcript API's in and out.

Input schemas check types and shapes only; the message text's rules (empty,
too long) stay in :mod:`mediation.chat.services`, which words them.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from marshmallow import Schema, fields, validate

from mediation.cases.schemas import MAX_ID, Id
from mediation.schemas import BaseSchema

#: ``group``: the shared room of a case group (any case of the group reaches it).
ROOMS = ("joint", "caucus", "group")
PARTIES = ("consumer", "merchant")
CLIENT_ID_MAX = 64


def Seq(**kw) -> fields.Integer:  # noqa: N802  (reads like a field class)
    """A sequence number of a room (0: before the first message)."""
    kw.setdefault("metadata", {"description": "A message's `seq` in its room."})
    return fields.Integer(
        strict=True,
        validate=validate.Range(0, MAX_ID, error=_l("Enter a whole number.")),
        **kw,
    )


class RoomSchema(BaseSchema):
    """Which room of which case: ``joint``, ``caucus`` (and whose) or ``group``."""

    case_id = Id(required=True)
    room = fields.String(required=True, validate=validate.OneOf(ROOMS))
    party = fields.String(
        allow_none=True,
        load_default=None,
        validate=validate.OneOf(PARTIES),
        metadata={"description": "Whose caucus (the mediator names it)."},
    )


class JoinCaseSchema(RoomSchema):
    """``join_case``: the room and the last ``seq`` the client has."""

    after = Seq(load_default=0)


class SendMessageSchema(RoomSchema):
    """``send_message``: the text and the client's id of the message."""

    body = fields.String(load_default="")
    client_id = fields.String(
        required=True,
        validate=[
            validate.Length(1, CLIENT_ID_MAX),
            validate.Regexp(
                r"^[A-Za-z0-9._:-]+$", error=_l("Use a UUID as the client id.")
            ),
        ],
    )
    evidence_id = Id(allow_none=True, load_default=None)


class ReadSchema(RoomSchema):
    """``read``: the ``seq`` of the last message the user saw."""

    seq = Seq(required=True)


JOIN = JoinCaseSchema()
LEAVE = RoomSchema()
TYPING = RoomSchema()
SEND = SendMessageSchema()
READ = ReadSchema()


# The transcript API -------------------------------------------------------------


class MessagesArgsSchema(BaseSchema):
    """Query of ``GET /api/v1/cases/{id}/messages``."""

    room = fields.String(load_default="joint", validate=validate.OneOf(ROOMS))
    party = fields.String(load_default=None, validate=validate.OneOf(PARTIES))
    after = fields.Integer(
        load_default=0, validate=validate.Range(0, MAX_ID), metadata={"example": 0}
    )
    limit = fields.Integer(load_default=None, validate=validate.Range(1, 500))


class ChatAuthorSchema(Schema):
    id = fields.Integer()
    name = fields.String()


class ChatMessageSchema(Schema):
    """One message of a room, as ``message_created`` carries it."""

    case_id = fields.Integer()
    room = fields.String(
        metadata={"description": "`joint`, `caucus` or `group` (a case group's room)."}
    )
    party = fields.String(
        allow_none=True, metadata={"description": "Whose caucus; null for joint."}
    )
    room_key = fields.String(
        metadata={
            "description": "`joint`, `caucus:consumer`, `caucus:merchant` or `group`."
        }
    )
    seq = fields.Integer(metadata={"description": "1, 2, 3 ... within the room."})
    id = fields.Integer()
    client_id = fields.String(allow_none=True)
    author = fields.Nested(
        ChatAuthorSchema,
        allow_none=True,
        metadata={
            "description": "Null: system. In the group room a consumer's `name` is "
            "null: `data.case_reference` names them by their complaint."
        },
    )
    role = fields.String(
        metadata={"description": "consumer, merchant, platform, mediator or system."}
    )
    kind = fields.String(
        metadata={"description": "`text`, `attachment`, `proposal` or `system`."}
    )
    body = fields.String(metadata={"description": "Plain text (escape it)."})
    data = fields.Dict(
        metadata={
            "description": "proposal: offer_id, type, amount, deadline, text, "
            "status, consumer_accepted_at, merchant_accepted_at; system: action, "
            "status, from_status, due_at and the event's data; attachment: "
            "evidence_id, name, size, content_type, sha256; a consumer's message "
            "in the group room: case_id, case_reference."
        }
    )
    sent_at = fields.String(metadata={"description": "ISO 8601, UTC."})


class ChatMessagesSchema(Schema):
    """A page of a room's transcript."""

    items = fields.List(fields.Nested(ChatMessageSchema))
    next = fields.Integer(
        allow_none=True,
        metadata={"description": "The `after` of the next page; null at the end."},
    )
