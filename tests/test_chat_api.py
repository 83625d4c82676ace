"""GET /api/v1/cases/{id}/messages: transcripts for those allowed, caucus privacy."""

from __future__ import annotations

import pytest

from mediation import clock
from tests.chat_support import MONDAY, ChatWorld, ack


@pytest.fixture()
def world(app, make_user, make_merchant, make_case, token_for):
    clock.freeze(MONDAY)
    app.config["LOGIN_RATE_LIMIT"] = "10000 per minute"
    yield ChatWorld(app, make_user, make_merchant, make_case, token_for)
    clock.unfreeze()


def _say(sio, case_id, body, client_id, room="joint", **kw):
    answer = ack(
        sio,
        "send_message",
        {"case_id": case_id, "room": room, "body": body, "client_id": client_id, **kw},
    )
    assert answer["ok"] is True, answer
    return answer


@pytest.fixture()
def talked(world):
    """A joint conversation and one message in each caucus."""
    consumer, merchant, mediator = (world.socket(a) for a in ("A", "S", "M"))
    _say(consumer, world.case_id, "The kettle leaks.", "a-1")
    _say(merchant, world.case_id, "<b>We</b> disagree.", "s-1")
    _say(mediator, world.case_id, "Let us talk.", "m-1")
    _say(mediator, world.case_id, "To A only", "m-2", "caucus", party="consumer")
    _say(merchant, world.case_id, "To M only", "s-2", "caucus")
    return world


def _get(world, actor, query="", **kw):
    client = world.http(actor) if actor else world.app.test_client()
    return client.get(f"/api/v1/cases/{world.case_id}/messages{query}", **kw)


def test_joint_transcript_in_order_for_every_member(talked):
    for actor in ("A", "S", "M", "reg"):
        response = _get(talked, actor)
        assert response.status_code == 200, (actor, response.get_json())
        body = response.get_json()
        assert [m["seq"] for m in body["items"]] == [1, 2, 3, 4]
        assert [m["kind"] for m in body["items"]] == ["system", "text", "text", "text"]
        # Stored as typed: escaping is the page's job.
        assert body["items"][2]["body"] == "<b>We</b> disagree."
        assert body["items"][2]["role"] == "merchant"
        assert body["next"] is None


def test_pages_with_after_and_limit(talked):
    first = _get(talked, "A", "?limit=2").get_json()
    assert [m["seq"] for m in first["items"]] == [1, 2]
    assert first["next"] == 2
    second = _get(talked, "A", f"?limit=2&after={first['next']}").get_json()
    assert [m["seq"] for m in second["items"]] == [3, 4]
    assert second["next"] is None
    assert _get(talked, "A", "?after=4").get_json() == {"items": [], "next": None}


def test_caucus_transcripts_never_reach_the_other_party(talked):
    own = _get(talked, "A", "?room=caucus").get_json()
    assert [m["body"] for m in own["items"]] == ["To A only"]
    theirs = _get(talked, "S", "?room=caucus").get_json()
    assert [m["body"] for m in theirs["items"]] == ["To M only"]
    assert _get(talked, "A", "?room=caucus&party=merchant").status_code == 403
    assert _get(talked, "S", "?room=caucus&party=consumer").status_code == 403
    assert _get(talked, "reg", "?room=caucus&party=consumer").status_code == 403
    assert _get(talked, "reg", "?room=caucus").status_code == 403
    for party, body in (("consumer", "To A only"), ("merchant", "To M only")):
        response = _get(talked, "M", f"?room=caucus&party={party}")
        assert [m["body"] for m in response.get_json()["items"]] == [body]
    assert _get(talked, "M", "?room=caucus").status_code == 422


def test_outsiders_get_nothing(talked):
    assert _get(talked, None).status_code == 401
    for actor in ("B", "T", "P", "M2", "arb"):
        assert _get(talked, actor).status_code == 404, actor


def test_bearer_token_reads_the_transcript(talked):
    token = talked.token("S")
    response = talked.app.test_client().get(
        f"/api/v1/cases/{talked.case_id}/messages",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200
    assert len(response.get_json()["items"]) == 4


@pytest.mark.parametrize(
    "query",
    ["?room=lobby", "?after=-1", "?limit=0", "?limit=501", "?after=x", "?page=2"],
)
def test_bad_queries_are_422(talked, query):
    response = _get(talked, "A", query)
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "validation_error"


def test_unknown_case_is_404(world):
    client = world.http("A")
    assert client.get("/api/v1/cases/999999/messages").status_code == 404


def test_endpoint_is_in_the_openapi_document(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    operation = spec["paths"]["/api/v1/cases/{case_id}/messages"]["get"]
    assert "x-spec-error" not in operation
    names = {p["name"] for p in operation["parameters"] if p["in"] == "query"}
    assert names == {"room", "party", "after", "limit"}
    assert "ChatMessages" in str(operation["responses"]["200"])
