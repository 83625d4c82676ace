"""Chat across processes through Redis: the presence registry and emits from jobs.

These need the Redis of ``TEST_REDIS_URL`` (default the local one) and are
skipped without it, or fail when ``CI=true``. Each test uses its own key
prefix / channel, so parallel runs do not meet.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
import redis

from mediation import clock
from mediation.cases.models import Case
from mediation.chat.presence import RedisPresence, online
from mediation.extensions import db
from tests.chat_support import MONDAY, ChatWorld

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/9")
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture()
def redis_client():
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.exceptions.ConnectionError:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"no Redis at {REDIS_URL} (CI needs it)", pytrace=False)
        pytest.skip(f"no Redis at {REDIS_URL}")
    yield client
    client.close()


def test_redis_presence_is_shared_by_registries_of_two_processes(redis_client):
    prefix = f"test-chat-{uuid.uuid4().hex}"
    # Two registries on separate connections, as two server processes have.
    here = RedisPresence(redis_client, prefix)
    there = RedisPresence(redis.Redis.from_url(REDIS_URL), prefix)
    try:
        here.add("case:1:joint", "sid-a", {"id": 1, "name": "Ann", "role": "consumer"})
        there.add("case:1:joint", "sid-b", {"id": 2, "name": "Bo", "role": "merchant"})
        there.add("case:1:joint", "sid-c", {"id": 2, "name": "Bo", "role": "merchant"})
        there.add("case:1:caucus:merchant", "sid-b", {"id": 2, "name": "Bo"})
        assert [m["name"] for m in online(here, "case:1:joint")] == ["Ann", "Bo"]
        assert set(here.entries("case:1:joint")) == {"sid-a", "sid-b", "sid-c"}
        assert here.remove_sid("sid-b") == ["case:1:caucus:merchant", "case:1:joint"]
        assert [m["name"] for m in online(there, "case:1:joint")] == ["Ann", "Bo"]
        assert there.remove("case:1:joint", "sid-c") is True
        assert there.remove("case:1:joint", "sid-c") is False
        assert [m["name"] for m in online(there, "case:1:joint")] == ["Ann"]
        assert online(here, "case:1:caucus:merchant") == []
    finally:
        for key in redis_client.scan_iter(f"{prefix}:*"):
            redis_client.delete(key)


def test_sweep_command_emits_through_the_redis_queue(
    app, database_url, redis_client, make_user, make_merchant, make_case, token_for
):
    """``flask sweep`` in its own process: its case_updated and system message
    reach the Redis channel the server processes listen to."""
    clock.freeze(MONDAY)
    world = ChatWorld(app, make_user, make_merchant, make_case, token_for)
    clock.unfreeze()
    with app.app_context():
        case = db.session.get(Case, world.case_id)
        # The mediation deadline passed an hour ago (by the wall clock the
        # command reads).
        case.due_at = clock.now_utc() - timedelta(hours=1)
        db.session.commit()
    channel = f"test-chat-{uuid.uuid4().hex}"
    pubsub = redis_client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(channel)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"TEST_DATABASE_URL", "FLASK_APP", "MAIL_SERVER"}
    }
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=REDIS_URL,
        SOCKETIO_CHANNEL=channel,
        MEDIATION_ENV="development",
        SCHEDULER_ENABLED="0",
        LOG_LEVEL="WARNING",
        LC_ALL="C.UTF-8",
    )
    try:
        done = subprocess.run(
            [sys.executable, "-m", "flask", "--app", "mediation", "sweep"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        emitted = []
        deadline = time.monotonic() + 10
        wanted = {"case_updated", "message_created"}
        while time.monotonic() < deadline and wanted - {m["event"] for m in emitted}:
            message = pubsub.get_message(timeout=1)
            if message and message["type"] == "message":
                data = json.loads(message["data"])
                if data.get("method") == "emit":
                    emitted.append(data)
    finally:
        pubsub.close()
    by_event = {m["event"]: m for m in emitted}
    assert set(by_event) == {"case_updated", "message_created"}, emitted
    for message in by_event.values():
        assert message["namespace"] == "/chat"
        assert message["room"] == f"case:{world.case_id}:joint"
    system = by_event["message_created"]["data"][0]
    assert system["kind"] == "system"
    assert system["data"]["action"] == "expire"
    assert system["data"]["status"] == "in_arbitration"
    assert by_event["case_updated"]["data"][0]["status"] == "in_arbitration"
