"""Notifications: the bell page, marking read, the API, and e-mail over real SMTP."""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from aiosmtpd.controller import Controller
from flask_babel import force_locale

from mediation import clock
from mediation.auth.models import User
from mediation.cases.models import Case
from mediation.extensions import db
from mediation.notifications.messages import render
from mediation.notifications.models import Notification
from mediation.notifications.outbox import MailOutbox, outbox
from mediation.notifications.services import notify
from tests.conftest import ROOT

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Collector:
    """An aiosmtpd handler that keeps every message it receives."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], email.message.EmailMessage]] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        message = email.message_from_bytes(
            envelope.content, policy=email.policy.default
        )
        self.messages.append((list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[email.message.EmailMessage]:
        return [m for rcpts, m in self.messages if address in rcpts]


@pytest.fixture()
def smtp(app):
    """A real SMTP server on a free local port; the app sends its mail there."""
    handler = Collector()
    controller = Controller(handler, hostname="127.0.0.1", port=_free_port())
    controller.start()
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=controller.port)
    yield handler
    controller.stop()


def _notes(app, user_id: int) -> list[Notification]:
    with app.app_context():
        notes = db.session.scalars(
            db.select(Notification)
            .where(Notification.user_id == user_id)
            .order_by(Notification.id)
        ).all()
        db.session.expunge_all()
        return list(notes)


def _reference(app, case_id: int) -> str:
    with app.app_context():
        return db.session.get(Case, case_id).reference


def _notify(app, user, kind="claim_approved", params=None, *, case_id=None):
    """Add one notification through the service, committed."""
    with app.app_context():
        (note,) = notify(
            [db.session.get(User, user.id)],
            kind,
            params or {"merchant": "Kettle World"},
            case_id=case_id,
            now=clock.now_utc(),
        )
        db.session.commit()
        return note.id


@pytest.fixture()
def filed(app, make_user, make_merchant, make_case):
    """A case filed against a shop with two staff accounts (zh_CN and en)."""
    shop = make_merchant(name="Kettle World")
    staff_zh = make_user("merchant", merchant_id=shop.id, locale="zh_CN")
    staff_en = make_user("merchant", merchant_id=shop.id, locale="en")
    consumer = make_user()
    return {
        "shop": shop,
        "staff_zh": staff_zh,
        "staff_en": staff_en,
        "consumer": consumer,
        "make_case": lambda: _filed_and_mailed(make_case, consumer, shop),
    }


def _filed_and_mailed(make_case, consumer, shop) -> int:
    """File a case and wait for the background sender to handle its e-mail."""
    case_id = make_case(consumer, shop)
    outbox.join()
    return case_id


# The bell page -----------------------------------------------------------------


def test_bell_lists_own_notifications_newest_first(app, client, auth, filed):
    clock.freeze(T0)
    case_id = filed["make_case"]()
    clock.advance(timedelta(minutes=5))
    _notify(app, filed["staff_en"])
    auth.login(filed["staff_en"])
    response = client.get("/notifications/?lang=en")
    assert response.status_code == 200
    html = response.text
    items = re.findall(r'data-testid="notification" data-id="(\d+)"', html)
    ids = [n.id for n in _notes(app, filed["staff_en"].id)]
    assert items == [str(i) for i in reversed(ids)]
    assert "Your request to act for Kettle World was approved." in html
    reference = _reference(app, case_id)
    assert reference in html
    assert f'href="/cases/{case_id}"' in html
    # Nobody else's notifications show up.
    others = {n.id for n in _notes(app, filed["staff_zh"].id)}
    assert not others & {int(i) for i in items}


def test_bell_needs_sign_in(client):
    response = client.get("/notifications/")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=/notifications/"


def test_bell_pages(app, client, make_user, auth):
    app.config["PAGE_SIZE"] = 2
    user = make_user()
    clock.freeze(T0)
    for _step in range(5):
        clock.advance(timedelta(minutes=1))
        _notify(app, user)
    auth.login(user)
    first = client.get("/notifications/")
    assert first.text.count('data-testid="notification"') == 2
    last = client.get("/notifications/?page=3")
    assert last.text.count('data-testid="notification"') == 1
    assert client.get("/notifications/?page=0").status_code == 400


def test_mark_one_read_then_all(app, client, make_user, auth):
    user = make_user()
    first, second, third = (_notify(app, user) for _ in range(3))
    auth.login(user)
    assert 'data-testid="unread-count">3<' in client.get("/notifications/").text
    response = client.post(f"/notifications/{first}/read")
    assert response.status_code == 302
    assert response.headers["Location"] == "/notifications/"
    read = {n.id: n.read_at for n in _notes(app, user.id)}
    assert read[first] is not None and read[second] is None and read[third] is None
    client.post("/notifications/read")
    assert all(n.read_at is not None for n in _notes(app, user.id))
    assert 'data-testid="unread-count"' not in client.get("/notifications/").text


def test_mark_read_goes_on_to_a_safe_next(app, client, make_user, auth):
    user = make_user()
    note_id = _notify(app, user)
    other_id = _notify(app, user)
    auth.login(user)
    response = client.post(f"/notifications/{note_id}/read", data={"next": "/cases/7"})
    assert response.headers["Location"] == "/cases/7"
    evil = client.post(
        f"/notifications/{other_id}/read", data={"next": "https://evil.example/"}
    )
    assert evil.headers["Location"] == "/notifications/"


def test_someone_elses_notification_is_not_found(app, client, make_user, auth):
    owner = make_user()
    note_id = _notify(app, owner)
    auth.login(make_user())
    assert client.post(f"/notifications/{note_id}/read").status_code == 404
    assert client.post("/notifications/999999/read").status_code == 404
    assert _notes(app, owner.id)[0].read_at is None
    # "Mark all" only touches the caller's own.
    client.post("/notifications/read")
    assert _notes(app, owner.id)[0].read_at is None


# The API ---------------------------------------------------------------------


def test_api_lists_notifications_with_unread_count(app, client, make_user, token_for):
    app.config["PAGE_SIZE"] = 2
    user = make_user()
    clock.freeze(T0)
    ids = []
    for _step in range(3):
        clock.advance(timedelta(minutes=1))
        ids.append(_notify(app, user))
    _notify(app, make_user())  # someone else's
    headers = token_for(user)
    body = client.get("/api/v1/notifications?lang=en", headers=headers).get_json()
    assert (body["total"], body["pages"], body["page"], body["unread"]) == (3, 2, 1, 3)
    assert [item["id"] for item in body["items"]] == [ids[2], ids[1]]
    item = body["items"][0]
    assert item["text"] == "Your request to act for Kettle World was approved."
    assert item["kind"] == "claim_approved"
    assert item["case_id"] is None and item["read_at"] is None
    assert datetime.fromisoformat(item["created_at"]) == T0 + timedelta(minutes=3)
    page2 = client.get("/api/v1/notifications?page=2", headers=headers).get_json()
    assert [item["id"] for item in page2["items"]] == [ids[0]]
    bad = client.get("/api/v1/notifications?page=x", headers=headers)
    assert bad.status_code == 400


def test_api_marks_read(app, client, make_user, token_for):
    user = make_user()
    other = make_user()
    first, _second = _notify(app, user), _notify(app, user)
    foreign = _notify(app, other)
    headers = token_for(user)
    one = client.post(f"/api/v1/notifications/{first}/read", headers=headers)
    assert one.status_code == 200 and one.get_json()["read_at"] is not None
    assert (
        client.get("/api/v1/notifications", headers=headers).get_json()["unread"] == 1
    )
    denied = client.post(f"/api/v1/notifications/{foreign}/read", headers=headers)
    assert denied.status_code == 404
    assert denied.get_json()["error"]["code"] == "not_found"
    everything = client.post("/api/v1/notifications/read", headers=headers)
    assert everything.get_json() == {"marked": 1, "unread": 0}
    assert _notes(app, other.id)[0].read_at is None


def test_api_needs_authentication(client):
    assert client.get("/api/v1/notifications").status_code == 401
    assert client.post("/api/v1/notifications/read").status_code == 401


# E-mail ------------------------------------------------------------------------


def test_filing_mails_the_merchant_staff_in_their_language(app, smtp, filed):
    case_id = filed["make_case"]()
    reference = _reference(app, case_id)
    english = smtp.to(filed["staff_en"].email)
    assert len(english) == 1
    subject, body = english[0]["Subject"], english[0].get_content()
    assert f"New complaint {reference} is waiting for your answer." in subject
    assert reference in body
    assert f"/cases/{case_id}" in body
    chinese = smtp.to(filed["staff_zh"].email)
    assert len(chinese) == 1
    with app.test_request_context(), force_locale("zh_CN"):
        expected = render("case_file", {"reference": reference})
    assert expected in chinese[0]["Subject"]
    # The mail went out after the commit, and its outcome is on the notification.
    for staff in (filed["staff_en"], filed["staff_zh"]):
        notes = _notes(app, staff.id)
        assert [(n.case_id, n.email_status) for n in notes] == [(case_id, "sent")]


def test_mail_failure_keeps_the_notification(app, filed):
    # Nothing listens on this port: the SMTP connection is refused.
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=_free_port())
    case_id = filed["make_case"]()
    notes = _notes(app, filed["staff_en"].id)
    assert [(n.case_id, n.email_status) for n in notes] == [(case_id, "failed")]
    with app.app_context():
        assert db.session.get(Case, case_id) is not None


def test_without_a_mail_server_mail_is_logged(app, filed):
    filed["make_case"]()
    assert [n.email_status for n in _notes(app, filed["staff_en"].id)] == ["logged"]


def test_send_pending_mail_command_sends_what_was_left(app, runner, smtp, filed):
    """Mail left pending (a crash before the sender ran) goes out on demand."""
    case_id = filed["make_case"]()
    with app.app_context():
        db.session.execute(
            db.update(Notification)
            .where(Notification.case_id == case_id)
            .values(email_status="pending")
        )
        db.session.commit()
    before = len(smtp.to(filed["staff_en"].email))
    result = runner.invoke(args=["send-pending-mail"])
    assert result.exit_code == 0, result.output
    assert "handled" in result.output
    assert len(smtp.to(filed["staff_en"].email)) == before + 1
    assert [n.email_status for n in _notes(app, filed["staff_en"].id)] == ["sent"]


class SlowCollector(Collector):
    """A collector that takes its time over each message, like a real relay."""

    async def handle_DATA(self, server, session, envelope) -> str:
        await asyncio.sleep(0.5)
        return await super().handle_DATA(server, session, envelope)


EXITING_COMMAND = """
import sys
from mediation import clock, create_app
from mediation.auth.models import User
from mediation.extensions import db
from mediation.notifications.services import notify
from tests.conftest import _testing

url, port, user_id = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
app = create_app(
    {**_testing(), "SQLALCHEMY_DATABASE_URI": url,
     "MAIL_SERVER": "127.0.0.1", "MAIL_PORT": port}
)
with app.app_context():
    notify([db.session.get(User, user_id)], "case_file",
           {"reference": "MC-2026-000042"}, now=clock.now_utc())
    db.session.commit()
print("committed", flush=True)
"""


def test_a_process_that_exits_after_its_commit_sends_its_mail_first(
    app, database_url, make_user
):
    """A one-shot command (``flask sweep`` from cron, ``seed-demo``) exits right
    after its commit: its queued mail still goes out, not left pending."""
    handler = SlowCollector()
    controller = Controller(handler, hostname="127.0.0.1", port=_free_port())
    controller.start()
    try:
        user = make_user("consumer", email="exit@example.com")
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                EXITING_COMMAND,
                database_url,
                str(controller.port),
                str(user.id),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert "committed" in done.stdout
        assert [m["Subject"] for m in handler.to("exit@example.com")] == [
            "【在线消费纠纷解决平台】新投诉 MC-2026-000042 待您答复。"
        ]
        assert [n.email_status for n in _notes(app, user.id)] == ["sent"]
    finally:
        controller.stop()


def test_joining_the_outbox_gives_up_at_its_timeout(caplog):
    """The exit hook waits for the mail at most its timeout, then says so."""
    stuck = MailOutbox()
    stuck._queue.put("a batch no thread takes")
    assert stuck.join(timeout=0.2) is False
    assert "send-pending-mail" in caplog.text
    stuck._queue.get()
    stuck._queue.task_done()
    assert stuck.join(timeout=0.2) is True
