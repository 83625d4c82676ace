"""The chat panel of the case page: its rooms, transcripts and browser texts.

The case page renders each room's full transcript on the server (escaped by
Jinja, readable without JavaScript); ``static/js/chat/`` then keeps it live over
Socket.IO. Everything the scripts show comes from here, translated, in a JSON
block, so the panel speaks the page's language.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import current_app, url_for
from flask_babel import lazy_gettext as _l

from mediation import labels
from mediation.auth.models import User
from mediation.auth.permissions import can_upload_evidence
from mediation.cases import lifecycle as lc
from mediation.cases.models import Case
from mediation.chat import services as chat_services
from mediation.formatting import local_time

#: The rooms in the order of the panel's tabs (``group``: a case group's room).
ROOM_ORDER = ("joint", "caucus:consumer", "caucus:merchant", "group")

#: Tab names for the parties (their own caucus is "private with the mediator").
PARTY_ROOM_LABELS: dict[str, Any] = {
    "joint": _l("Joint room"),
    "caucus:consumer": _l("Private with the mediator"),
    "caucus:merchant": _l("Private with the mediator"),
    "group": _l("Group room"),
}

#: Tab names for the mediator and the read-only members.
STAFF_ROOM_LABELS: dict[str, Any] = {
    "joint": _l("Joint room"),
    "caucus:consumer": _l("Private with the consumer"),
    "caucus:merchant": _l("Private with the merchant"),
    "group": _l("Group room"),
}

#: Texts the scripts show; ``{name}`` placeholders are filled in the browser.
STRINGS: dict[str, Any] = {
    "pending": _l("Sending…"),
    "failed": _l("Not delivered"),
    "retry": _l("Retry"),
    "discard": _l("Delete"),
    "typing_one": _l("{name} is typing…"),
    "typing_many": _l("{names} are typing…"),
    "online": _l("Online: {names}"),
    "nobody_online": _l("Nobody is online."),
    "connecting": _l("Connecting…"),
    "connected": _l("Connected"),
    "offline": _l(
        "Offline: your messages are kept and sent when the connection is back."
    ),
    "counter": _l("{count} / {max}"),
    "too_long": _l("Your message is too long: at most {max} characters."),
    "rate_limited": _l("You are sending messages too fast. Wait a moment, then retry."),
    "read_only": _l("This room is read-only."),
    "forbidden": _l("You cannot write in this room."),
    "not_delivered": _l("The message could not be delivered."),
    "empty": _l("Write a message first."),
    "proposal": _l("Settlement proposal"),
    "type": _l("Type"),
    "amount": _l("Amount"),
    "deadline": _l("To be done by"),
    "state_open": _l("Waiting for both parties."),
    "state_accepted": _l("Accepted by both parties: the case is settled."),
    "state_rejected": _l("Declined."),
    "state_lapsed": _l("No longer open."),
    "accepted_by_consumer": _l("The consumer accepted."),
    "accepted_by_merchant": _l("The merchant accepted."),
    "you_accepted": _l("You accepted this proposal."),
    "accept": labels.ACTION["accept_proposal"],
    "decline": labels.ACTION["decline_proposal"],
    "decline_reason": _l("Why do you decline?"),
    "decline_confirm": _l("Decline"),
    "cancel": _l("Cancel"),
    "reason_required": _l("Give a reason."),
    "action_failed": _l("That did not work: reload the page and try again."),
    "attachment": _l("Attachment"),
    "uploading": _l("Uploading {name}…"),
    "upload_failed": _l("The file could not be uploaded."),
    "unread": _l("{count} unread"),
    "system": labels.ROLE["system"],
    "group_consumer": _l("Consumer of {reference}"),
}


def _transcript(case: Case, key: str) -> list[Any]:
    """Return every message of a room, oldest first (page by page)."""
    messages: list[Any] = []
    while True:
        after = messages[-1].seq if messages else 0
        page = chat_services.messages_after(case, key, after)
        messages.extend(page)
        if len(page) < chat_services.replay_limit():
            return messages


def _sent_at(payload: dict[str, Any], message: Any) -> datetime | None:
    value = getattr(message, "sent_at", None)
    if isinstance(value, datetime):
        return value
    raw = payload.get("sent_at")
    return datetime.fromisoformat(raw) if isinstance(raw, str) else None


def _offer_states(case: Case) -> dict[str, dict[str, Any]]:
    """Return each proposal's state (what the cards show), keyed by offer id."""
    return {
        str(offer.id): {
            "status": offer.status,
            "consumer_accepted": offer.consumer_accepted_at is not None,
            "merchant_accepted": offer.merchant_accepted_at is not None,
        }
        for offer in case.offers
        if offer.kind == "proposal"
    }


def chat_panel(case: Case, user: User, relation: str | None) -> dict[str, Any] | None:
    """Return what the case page needs to show the chat panel to ``user``.

    :param relation: the user's relation to the case (``case_relation``).
    :return: None when the user is in no room of the case; otherwise ``rooms``
        (each with its full transcript, for the page) and ``config`` (JSON for
        the scripts: rooms without messages, texts, labels, proposal states).
    """
    access = chat_services.room_access(case, user)
    if not access:
        return None
    party = chat_services.party_of(relation)
    names = PARTY_ROOM_LABELS if party else STAFF_ROOM_LABELS
    rooms: list[dict[str, Any]] = []
    for key in ROOM_ORDER:
        mode = access.get(key)
        if mode is None:
            continue
        messages = []
        for message in _transcript(case, key):
            payload = chat_services.serialize_message(message)
            sent_at = _sent_at(payload, message)
            messages.append(
                {
                    "m": payload,
                    "time": local_time(sent_at) if sent_at else "",
                    "iso": sent_at.isoformat() if sent_at else "",
                }
            )
        api_room, api_party = chat_services.split_room(key)
        rooms.append(
            {
                "key": key,
                "room": api_room,
                "party": api_party,
                "mode": mode,
                "label": str(names[key]),
                "messages": messages,
                "last_seq": max((m["m"]["seq"] for m in messages), default=0),
                "read_seq": chat_services.read_position(user, case, key),
            }
        )
    waiting = case.status == lc.IN_MEDIATION and case.mediator_id is None
    if not waiting and not any(r["mode"] == "write" or r["messages"] for r in rooms):
        return None  # nothing to read and nothing to say
    # The first tab open is the first room one may write in (a grouped case
    # before its mediation: the group room), else the first.
    active = next((r for r in rooms if r["mode"] == "write"), rooms[0])
    for room in rooms:
        room["active"] = room is active
    group = None
    if "group" in access:
        group = {
            "id": case.group_id,
            "room_case_id": chat_services.room_home(case, "group"),
        }
    config = {
        "case_id": case.id,
        "status": case.status,
        "waiting": waiting,
        "user": {"id": user.id, "name": user.name, "role": user.role},
        "relation": relation,
        "party": party,
        "max_length": chat_services.max_length(),
        "time_zone": current_app.config["TIME_ZONE"],
        "can_upload": can_upload_evidence(relation, case),
        "urls": {
            "actions": url_for("api.act_on_case", case_id=case.id),
            "upload": url_for("api.upload_evidence", case_id=case.id),
            "messages": url_for("api.case_messages", case_id=case.id),
            # The download address of evidence N is this prefix plus N.
            "evidence": url_for(
                "cases.evidence", case_id=case.id, evidence_id=0
            ).rsplit("/", 1)[0]
            + "/",
        },
        "rooms": [
            {k: room[k] for k in ("key", "room", "party", "mode", "label")}
            | {"last_seq": room["last_seq"], "read_seq": room["read_seq"]}
            for room in rooms
        ],
        "group": group,
        "proposals": _offer_states(case),
        "strings": {k: str(v) for k, v in STRINGS.items()},
        "roles": {k: str(v) for k, v in labels.ROLE.items()},
        "actions": {k: str(v) for k, v in labels.ACTION.items()},
        "statuses": {k: str(v) for k, v in labels.STATUS.items()},
        "remedies": {k: str(v) for k, v in labels.REMEDY.items()},
    }
    return {"rooms": rooms, "config": config, "party": party}
