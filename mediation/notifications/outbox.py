"""The e-mail outbox: a background sender, its own transaction boundary.

Notifications are written with the request's transaction (``email_status =
pending``); after the commit their ids come here. One thread per process
drains whatever has queued, sends the mails grouped by the recipients' language
and records ``sent``, ``logged`` (no MAIL_SERVER) or ``failed`` in one commit.
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import time

from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy.orm import joinedload

from mediation.extensions import db
from mediation.notifications.mail import send_mail
from mediation.notifications.messages import render
from mediation.notifications.models import Notification

logger = logging.getLogger(__name__)


class MailOutbox:
    """Sends notification e-mails on one background thread per process.

    The request thread only hands over ids after its commit: it never waits for
    the SMTP server and never holds a second database connection. Notifications
    whose mail is still ``pending`` after a crash can be sent again with
    :func:`send_pending`.
    """

    #: How long a process that exits waits for the mails still queued.
    EXIT_TIMEOUT_SECONDS = 30.0

    def __init__(self) -> None:
        self._queue: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._exit_hook = False

    def submit(self, app, ids: list[int]) -> None:
        """Queue the e-mails of committed notifications ``ids``."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="mail-outbox", daemon=True
                )
                self._thread.start()
            if not self._exit_hook:
                # The thread is a daemon: a command that exits right after its
                # commit (``flask sweep``, ``seed-demo``) would take its mails
                # with it, left pending until ``send-pending-mail``.
                atexit.register(self.join, self.EXIT_TIMEOUT_SECONDS)
                self._exit_hook = True
        self._queue.put((app, ids))

    def join(self, timeout: float | None = None) -> bool:
        """Wait until every queued e-mail has been handled (tests, shutdown).

        :param timeout: seconds at most (None: as long as it takes).
        :return: False when mails were still queued at the timeout.
        """
        done = self._queue.all_tasks_done
        deadline = None if timeout is None else time.monotonic() + timeout
        with done:
            while self._queue.unfinished_tasks:
                if deadline is None:
                    done.wait()
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    logger.warning(
                        "exiting with notification mail still queued: "
                        "`flask send-pending-mail` sends it"
                    )
                    return False
                done.wait(remaining)
        return True

    def _run(self) -> None:
        while True:
            batches = [self._queue.get()]
            # Under load many commits queue up: send them in one transaction.
            while True:
                try:
                    batches.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            by_app: dict[int, tuple] = {}
            for app, ids in batches:
                by_app.setdefault(id(app), (app, []))[1].extend(ids)
            try:
                for app, ids in by_app.values():
                    send_pending(app, ids)
            except Exception:  # keep the thread alive for the next batch
                logger.exception("sending notification mail failed")
            finally:
                for _ in batches:
                    self._queue.task_done()


outbox = MailOutbox()


def send_pending(app, ids: list[int] | None = None) -> int:
    """Send the e-mail of pending notifications (all, or those in ``ids``).

    :return: how many were handled.
    """
    with app.app_context():
        try:
            query = (
                db.select(Notification)
                .options(joinedload(Notification.user))
                .where(Notification.email_status == "pending")
            )
            if ids is not None:
                query = query.where(Notification.id.in_(ids))
            notes = db.session.scalars(query).unique().all()
            default = app.config["BABEL_DEFAULT_LOCALE"]
            by_locale: dict[str, list[Notification]] = {}
            for note in notes:
                by_locale.setdefault(note.user.locale or default, []).append(note)
            outcomes: dict[int, str] = {}
            for locale, group in by_locale.items():
                with force_locale(locale):  # switching languages is not free
                    for note in group:
                        outcomes[note.id] = _send_one(app, note)
            # One UPDATE per outcome (sent, logged, failed), not one per row.
            for status in set(outcomes.values()):
                db.session.execute(
                    db.update(Notification)
                    .where(
                        Notification.id.in_(
                            [i for i, s in outcomes.items() if s == status]
                        )
                    )
                    .values(email_status=status)
                    .execution_options(synchronize_session=False)
                )
            db.session.commit()
            return len(notes)
        finally:
            db.session.remove()


def _send_one(app, note: Notification) -> str:
    """Send one notification's mail in the current locale; return its status."""
    text = render(note.kind, note.params)
    subject = _("[Consumer dispute platform] %(text)s", text=text)
    link = ""
    if note.case_id:
        link = f"{app.config['PUBLIC_URL'].rstrip('/')}/cases/{note.case_id}"
    body = text + ("\n\n" + link if link else "") + "\n"
    try:
        return send_mail(note.user.email, subject, body)
    except Exception:  # SMTP down or refusing: keep the in-app notification
        logger.exception("mail to user %s failed", note.user_id)
        return "failed"
