"""The transcript endpoint of the JSON API: ``GET /api/v1/cases/{id}/messages``.

A thin adapter like the case endpoints: parse the query, load the case through
the access checks, check the room, read, serialize. The YAML after ``---`` is
the endpoint's OpenAPI operation (see :mod:`mediation.api.spec`).
"""

from __future__ import annotations

from flask import jsonify, request

from mediation.api import bp
from mediation.auth import permissions
from mediation.chat import services as chat
from mediation.chat.schemas import MessagesArgsSchema

CASE = "<int(max=2147483647):case_id>"
MESSAGES_ARGS = MessagesArgsSchema()
#: Messages per page when the query names no ``limit``.
DEFAULT_PAGE = 100


@bp.get(f"/cases/{CASE}/messages")
def case_messages(case_id: int):
    """Read the transcript of one chat room of a case.

    `room=joint` (default) is the conversation of the consumer, the merchant's
    side and the mediator; the assigned arbitrator and regulators may read it.
    `room=caucus` is a party's private room with the mediator: a party reads its
    own (no `party` needed), the mediator names it (`party=consumer` or
    `merchant`); nobody else reads a caucus. `room=group` is the shared room of
    the case's group (every consumer of the group, the merchant's staff, the
    group's mediator; regulators read): the same transcript through any case of
    the group, its `case_id` the group's first case, consumers named only by
    their complaint's reference. Messages come oldest first, those with `seq`
    above `after`; `next` is the `after` of the following page.
    ---
    get:
      security: [{bearerAuth: []}, {cookieAuth: []}]
      parameters:
        - in: query
          name: room
          required: false
          schema: {type: string, enum: [joint, caucus, group], default: joint}
        - in: query
          name: party
          required: false
          schema: {type: string, enum: [consumer, merchant]}
        - in: query
          name: after
          required: false
          schema: {type: integer, minimum: 0, default: 0}
        - in: query
          name: limit
          required: false
          schema: {type: integer, minimum: 1, maximum: 500, default: 100}
      responses:
        200:
          description: One page of the room's messages.
          content:
            application/json:
              schema: ChatMessagesSchema
        401: {$ref: "#/components/responses/Error"}
        403: {$ref: "#/components/responses/Error"}
        404: {$ref: "#/components/responses/Error"}
        422: {$ref: "#/components/responses/Error"}
    """
    user = permissions.require_user()
    args = MESSAGES_ARGS.load_or_raise(
        {k: v for k, v in request.args.items() if v != ""}
    )
    case, _relation = permissions.get_case_for(user, case_id)
    key = chat.resolve_room(case, user, args["room"], args["party"])
    chat.require_room(case, user, key)
    limit = min(args["limit"] or DEFAULT_PAGE, chat.replay_limit())
    found = chat.messages_after(case, key, args["after"], limit + 1)
    page = found[:limit]
    return jsonify(
        {
            "items": [chat.serialize_message(m) for m in page],
            "next": page[-1].seq if len(found) > limit else None,
        }
    )
