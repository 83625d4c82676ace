"""Webhooks: subscriptions, the delivery queue and the delivery job.

A subscriber (staff of a platform operator, or a regulator) names a URL and the
events it wants. Events become :class:`WebhookDelivery` rows (``pending``) in
the very transaction that caused them, so a delivery exists exactly when its
cause committed; no HTTP happens there. :func:`deliver_due` (a job, run by the
scheduler) later POSTs each due delivery, signed with the subscription's
secret, and retries failures with a growing delay until it gives up.

Events and where they come from:

* ``credit.grade``, ``credit.listed``, ``credit.delisted``, ``credit.repaired``:
  a :class:`CreditChange` of that kind (:func:`on_credit_change`, registered in
  :data:`mediation.credit.ledger.change_listeners`).
* ``case.filed``: a case filed against a merchant (the ``file`` timeline event),
  or an intake case linked to a registered shop (``link_merchant``: sent to the
  subscriptions that only then come to match). Found by a ``before_flush`` hook
  on the session, so the case services know nothing of webhooks.
* ``warning.published``, ``warning.withdrawn``: a consumer warning published or
  withdrawn by a regulator (:func:`on_warning`, called by
  :mod:`mediation.analytics.warning_services`); one delivery per subscription
  however many merchants the warning names.

Scope: a platform's subscription receives the events of the platform itself and
of the shops on it (for a warning: when it names the platform or one of its
shops); a regulator's receives every event.

Deliveries are at least once: a worker that dies between the POST and the
record sends again after the lease. Receivers deduplicate on the ``id`` of the
body (also in ``X-Webhook-Id``).
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import json
import logging
import secrets
import socket
import ssl
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, and_, event, or_
from sqlalchemy.orm import Session, object_session

from mediation import clock
from mediation.auth.models import Role, User
from mediation.cases.models import Case, CaseEvent
from mediation.credit import ledger
from mediation.credit.feed import feed_item
from mediation.credit.models import CreditChange, WebhookDelivery, WebhookSubscription
from mediation.credit.webhook_models import WebhookAttempt
from mediation.errors import Conflict, NotFound, PermissionDenied, ValidationError
from mediation.extensions import db
from mediation.merchants.models import Merchant, MerchantKind

logger = logging.getLogger(__name__)

#: The events a subscription may ask for.
EVENTS = (
    "credit.grade",
    "credit.listed",
    "credit.delisted",
    "credit.repaired",
    "case.filed",
    "warning.published",
    "warning.withdrawn",
)
#: CreditChange kind -> event (``trusted``/``untrusted`` are in the feed only).
CHANGE_EVENTS = {
    "grade": "credit.grade",
    "listed": "credit.listed",
    "delisted": "credit.delisted",
    "repaired": "credit.repaired",
}
#: Seconds to wait before each retry; after the last one the delivery fails.
DEFAULT_RETRY_SCHEDULE = (60, 300, 1800, 7200, 43200)
DEFAULT_TIMEOUT_SECONDS = 5
DEFAULT_MAX_SUBSCRIPTIONS = 20
URL_MAX = 500
#: A claimed delivery is not claimed again for this long (a worker that died).
LEASE = timedelta(minutes=5)
#: What a receiver's answer may be read of (the rest is not needed).
_READ_MAX = 64 * 1024
_ERROR_MAX = 500
_CACHE = "webhook_subscriptions"
USER_AGENT = "mediation-webhooks/1"


def _config(name: str, default: Any) -> Any:
    value = current_app.config.get(name)
    return default if value is None else value


def retry_schedule() -> tuple[int, ...]:
    """Return the retry delays in seconds (``WEBHOOK_RETRY_SCHEDULE``)."""
    return tuple(
        int(s) for s in _config("WEBHOOK_RETRY_SCHEDULE", DEFAULT_RETRY_SCHEDULE)
    )


def allow_private_urls() -> bool:
    """Say whether webhooks may go to private, loopback and link-local addresses
    (``WEBHOOK_ALLOW_PRIVATE_URLS``; off in production, where it would let a
    subscriber reach the servers' own network)."""
    return bool(_config("WEBHOOK_ALLOW_PRIVATE_URLS", False))


# Subscriptions --------------------------------------------------------------


def subscriber_scope(user: User) -> int | None:
    """Return the merchant whose events ``user`` may subscribe to (None: all).

    :raise PermissionDenied: for anyone but platform staff and regulators.
    """
    if user.role == Role.regulator.value:
        return None
    merchant = user.merchant if user.role == Role.merchant.value else None
    if merchant is not None and merchant.kind == MerchantKind.platform.value:
        return merchant.id
    raise PermissionDenied(
        _l("Only the staff of a platform operator and regulators use webhooks."),
        code="webhooks_not_allowed",
    )


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast and not ip.is_reserved


def check_url(url: str) -> str:
    """Return ``url`` if webhooks may be sent to it.

    http or https, a host, no user name or password in it, no fragment; an
    address written as such (or ``localhost``) must be public unless
    ``WEBHOOK_ALLOW_PRIVATE_URLS``. Host names are resolved (and checked again)
    when sending.

    :raise ValidationError: otherwise (field ``url``).
    """
    url = url.strip()
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018  (raises ValueError for a bad port)
    except ValueError:
        parts, host = None, None
    if len(url) > URL_MAX or not host or parts.scheme not in ("http", "https"):
        raise ValidationError(
            fields={"url": _l("Enter an http or https address.")}, code="bad_url"
        )
    if parts.username or parts.password or parts.fragment:
        raise ValidationError(
            fields={
                "url": _l("The address may not hold a user name, a password or #.")
            },
            code="bad_url",
        )
    if not allow_private_urls():
        name = host.rstrip(".")
        try:
            private = not _is_public(name)
        except ValueError:  # a host name, resolved when sending
            private = name == "localhost" or name.endswith(".localhost")
        if private:
            raise ValidationError(
                fields={"url": _l("The address must be reachable on the internet.")},
                code="bad_url",
            )
    return url


def subscribe(
    owner: User, *, url: str, events: list[str], now: datetime
) -> tuple[WebhookSubscription, str]:
    """Subscribe ``url`` to ``events`` for ``owner``.

    :raise PermissionDenied: when the owner may not use webhooks.
    :raise ValidationError: for a bad URL or an unknown event.
    :raise Conflict: when the owner has ``WEBHOOK_MAX_SUBSCRIPTIONS`` already.
    :return: the subscription and its secret (shown to the owner once).
    """
    scope = subscriber_scope(owner)
    url = check_url(url)
    unknown = sorted(set(events) - set(EVENTS))
    if not events or unknown:
        raise ValidationError(
            fields={"events": _l("Choose events from the list.")}, code="bad_events"
        )
    count = db.session.scalar(
        db.select(db.func.count(WebhookSubscription.id)).where(
            WebhookSubscription.owner_id == owner.id, WebhookSubscription.active
        )
    )
    if count >= int(_config("WEBHOOK_MAX_SUBSCRIPTIONS", DEFAULT_MAX_SUBSCRIPTIONS)):
        raise Conflict(
            _l("You have too many webhook subscriptions; delete one first."),
            code="too_many_subscriptions",
        )
    secret = secrets.token_hex(32)
    subscription = WebhookSubscription(
        owner_id=owner.id,
        merchant_id=scope,
        url=url,
        secret=secret,
        events=[e for e in EVENTS if e in events],
        active=True,
        created_at=now,
    )
    db.session.add(subscription)
    db.session.flush()
    db.session.info.pop(_CACHE, None)
    logger.info(
        "webhook subscribed",
        extra={"subscription_id": subscription.id, "owner_id": owner.id},
    )
    return subscription, secret


def subscriptions_of(owner: User) -> list[WebhookSubscription]:
    """Return the owner's active subscriptions, oldest first."""
    return list(
        db.session.scalars(
            db.select(WebhookSubscription)
            .where(WebhookSubscription.owner_id == owner.id, WebhookSubscription.active)
            .order_by(WebhookSubscription.id)
        ).all()
    )


def get_subscription_for(user: User, subscription_id: int) -> WebhookSubscription:
    """Return the user's own active subscription.

    :raise PermissionDenied: when the user may not use webhooks at all.
    :raise NotFound: when it is not theirs (or was deleted).
    """
    subscriber_scope(user)
    subscription = db.session.get(WebhookSubscription, subscription_id)
    if (
        subscription is None
        or subscription.owner_id != user.id
        or not subscription.active
    ):
        raise NotFound()
    return subscription


def unsubscribe(subscription: WebhookSubscription, *, now: datetime) -> None:
    """Delete a subscription: nothing more is queued or sent for it.

    The row stays (its deliveries refer to it) without its secret; pending
    deliveries fail.
    """
    subscription.active = False
    subscription.secret = ""
    for delivery in db.session.scalars(
        db.select(WebhookDelivery).where(
            WebhookDelivery.subscription_id == subscription.id,
            WebhookDelivery.status == "pending",
        )
    ):
        delivery.status = "failed"
        delivery.next_attempt_at = None
        delivery.last_error = "subscription deleted"
    db.session.flush()
    db.session.info.pop(_CACHE, None)
    logger.info("webhook deleted", extra={"subscription_id": subscription.id})


def deliveries_of(
    subscription: WebhookSubscription, status: str | None = None
) -> Select:
    """Return a SELECT of a subscription's deliveries, newest first."""
    query = db.select(WebhookDelivery).where(
        WebhookDelivery.subscription_id == subscription.id
    )
    if status:
        query = query.where(WebhookDelivery.status == status)
    return query.order_by(WebhookDelivery.id.desc())


def attempts_of(delivery_ids: list[int]) -> dict[int, list[WebhookAttempt]]:
    """Return the attempts of these deliveries, grouped, in order."""
    grouped: dict[int, list[WebhookAttempt]] = {i: [] for i in delivery_ids}
    if delivery_ids:
        for attempt in db.session.scalars(
            db.select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id.in_(delivery_ids))
            .order_by(WebhookAttempt.delivery_id, WebhookAttempt.number)
        ):
            grouped[attempt.delivery_id].append(attempt)
    return grouped


# Queueing (inside the transaction of the cause) ------------------------------


def _subscriptions(session: Session) -> list[tuple[int, int | None, frozenset[str]]]:
    """Return ``(id, scope, events)`` of every subscription that may receive.

    Loaded once per transaction (a recompute produces thousands of changes); an
    owner must still hold the role the scope needs.
    """
    cached = session.info.get(_CACHE)
    if cached is None:
        rows = session.execute(
            db.select(
                WebhookSubscription.id,
                WebhookSubscription.merchant_id,
                WebhookSubscription.events,
            )
            .join(User, User.id == WebhookSubscription.owner_id)
            .where(
                WebhookSubscription.active,
                User.is_active_account,
                or_(
                    and_(
                        WebhookSubscription.merchant_id.is_(None),
                        User.role == Role.regulator.value,
                    ),
                    and_(
                        WebhookSubscription.merchant_id == User.merchant_id,
                        User.role == Role.merchant.value,
                    ),
                ),
            )
            .order_by(WebhookSubscription.id)
        ).all()
        cached = [(sid, scope, frozenset(events or ())) for sid, scope, events in rows]
        session.info[_CACHE] = cached
    return cached


@event.listens_for(Session, "after_transaction_end")
def _forget_subscriptions(session: Session, transaction: Any) -> None:
    if transaction.parent is None or transaction.nested:
        session.info.pop(_CACHE, None)


def enqueue(
    session: Session,
    name: str,
    payload: dict[str, Any],
    *,
    parties: set[int],
    now: datetime,
    scoped_only: bool = False,
) -> list[WebhookDelivery]:
    """Queue ``payload`` as event ``name`` for every subscription that matches.

    :param session: the session of the transaction that caused the event.
    :param parties: the merchants the event is about (a subscription scoped to
        one of them receives it; unscoped ones receive everything).
    :param scoped_only: skip unscoped (regulator) subscriptions.
    :return: the new deliveries (added to the session, due at ``now``).
    """
    made = []
    for sid, scope, events in _subscriptions(session):
        if name not in events:
            continue
        if scope is None:
            if scoped_only:
                continue
        elif scope not in parties:
            continue
        delivery = WebhookDelivery(
            subscription_id=sid,
            event=name,
            payload=payload,
            status="pending",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
        session.add(delivery)
        made.append(delivery)
    return made


def _platform_of(session: Session, merchant_id: int | None) -> int | None:
    merchant = session.get(Merchant, merchant_id) if merchant_id else None
    return merchant.platform_id if merchant is not None else None


def on_credit_change(change: CreditChange) -> None:
    """Queue the webhook of a new feed row (a ledger change listener)."""
    session = object_session(change) or db.session()
    name = CHANGE_EVENTS.get(change.kind)
    if name is None or not _subscriptions(session):
        return
    parties = {change.merchant_id, _platform_of(session, change.merchant_id)} - {None}
    payload = {"change": feed_item(change)}
    enqueue(session, name, payload, parties=parties, now=change.at)


if on_credit_change not in ledger.change_listeners:
    ledger.change_listeners.append(on_credit_change)


def on_warning(
    name: str, payload: dict[str, Any], *, merchant_ids: list[int], now: datetime
) -> list[WebhookDelivery]:
    """Queue a consumer warning's event (``warning.published`` or
    ``warning.withdrawn``) once for every subscription that matches.

    :param payload: the body's ``data`` (``{"warning": {...}}``).
    :param merchant_ids: the merchants the warning names (their platforms'
        subscriptions receive it too); none: regulators' subscriptions only.
    """
    session = db.session()
    if not _subscriptions(session):
        return []
    parties: set[int] = set()
    for merchant_id in merchant_ids:
        parties |= {merchant_id, _platform_of(session, merchant_id)} - {None}
    return enqueue(session, name, payload, parties=parties, now=now)


def _merchant_ref(session: Session, merchant_id: int | None) -> dict[str, Any] | None:
    merchant = session.get(Merchant, merchant_id) if merchant_id else None
    if merchant is None:
        return None
    return {"id": merchant.id, "name": merchant.name, "uscc": merchant.uscc}


def _parties(
    session: Session, merchant_id: int | None, platform_id: int | None
) -> set[int]:
    return {merchant_id, platform_id, _platform_of(session, merchant_id)} - {None}


def case_filed_payload(session: Session, case: Case) -> dict[str, Any]:
    """Return what ``case.filed`` says of a case: no consumer, no complaint text."""
    return {
        "case": {
            "id": case.id,
            "reference": case.reference,
            "category": case.category,
            "filed_at": case.filed_at.isoformat(),
            "merchant": _merchant_ref(session, case.merchant_id),
            "merchant_name": case.merchant_name,
            "platform": _merchant_ref(session, case.platform_id),
        }
    }


def on_case_event(session: Session, case: Case, case_event: CaseEvent) -> None:
    """Queue ``case.filed`` for a filing, or for an intake case linked to a shop."""
    if case_event.action == "file":
        parties = _parties(session, case.merchant_id, case.platform_id)
        payload = case_filed_payload(session, case)
        enqueue(session, "case.filed", payload, parties=parties, now=case_event.at)
    elif case_event.action == "link_merchant":
        filed = (
            session.scalar(
                db.select(CaseEvent.data).where(
                    CaseEvent.case_id == case.id, CaseEvent.action == "file"
                )
            )
            or {}
        )
        before = _parties(session, filed.get("merchant_id"), filed.get("platform_id"))
        parties = _parties(session, case.merchant_id, case.platform_id) - before
        if parties:
            enqueue(
                session,
                "case.filed",
                case_filed_payload(session, case),
                parties=parties,
                now=case_event.at,
                scoped_only=True,
            )


@event.listens_for(Session, "before_flush")
def _case_events_before_flush(session: Session, _context: Any, _instances: Any) -> None:
    found = [
        obj
        for obj in session.new
        if isinstance(obj, CaseEvent) and obj.action in ("file", "link_merchant")
    ]
    if not found or not _subscriptions(session):
        return
    for case_event in sorted(found, key=lambda e: (e.case_id, e.seq)):
        case = session.get(Case, case_event.case_id)
        if case is not None:
            on_case_event(session, case, case_event)


# Delivery (a job: it commits) -----------------------------------------------


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """Return ``X-Webhook-Signature``: ``sha256=`` and the hex HMAC-SHA256 of
    ``<timestamp>.<body>`` keyed with the subscription's secret."""
    message = str(timestamp).encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    """Say whether ``signature`` signs ``body`` at ``timestamp`` (for receivers)."""
    if not timestamp.isdigit():
        return False
    return hmac.compare_digest(sign(secret, int(timestamp), body), signature)


def body_of(delivery: WebhookDelivery) -> bytes:
    """Return the JSON body of a delivery (the same bytes at every attempt)."""
    return json.dumps(
        {
            "id": delivery.id,
            "event": delivery.event,
            "created_at": delivery.created_at.isoformat(),
            "data": delivery.payload,
        },
        ensure_ascii=False,
        separators=(",", ":"),
        sort_keys=True,
    ).encode("utf-8")


@dataclass
class DeliveryReport:
    """What one :func:`deliver_due` run did (delivery ids)."""

    delivered: list[int] = field(default_factory=list)
    retrying: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)

    @property
    def attempted(self) -> int:
        return len(self.delivered) + len(self.retrying) + len(self.failed)

    def merge(self, other: DeliveryReport) -> None:
        self.delivered += other.delivered
        self.retrying += other.retrying
        self.failed += other.failed


@dataclass(frozen=True)
class _Claimed:
    id: int
    url: str
    secret: str
    event: str
    body: bytes


def _claim(now: datetime) -> _Claimed | None:
    """Take the next due delivery and lease it; commit. None when none is due."""
    query = (
        db.select(WebhookDelivery)
        .where(
            WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now
        )
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
        .limit(1)
    )
    dialect = db.session.get_bind().dialect.name
    if dialect == "postgresql":
        # Several workers: each takes another row, none waits.
        query = query.with_for_update(skip_locked=True)
    elif dialect == "sqlite":
        # Take the write lock before reading, so that the claim is atomic.
        db.session.execute(db.text("UPDATE webhook_deliveries SET id = id WHERE 0 = 1"))
    while True:
        delivery = db.session.scalar(query.execution_options(populate_existing=True))
        if delivery is None:
            db.session.commit()
            return None
        subscription = delivery.subscription
        if subscription.active:
            break
        # Deleted while this was queued (unsubscribe fails its deliveries).
        delivery.status, delivery.next_attempt_at = "failed", None
        delivery.last_error = "subscription deleted"
        db.session.flush()
    delivery.next_attempt_at = now + LEASE
    claimed = _Claimed(
        delivery.id,
        subscription.url,
        subscription.secret,
        delivery.event,
        body_of(delivery),
    )
    db.session.commit()
    return claimed


def _connection(url: str, timeout: float) -> tuple[http.client.HTTPConnection, str]:
    """Return a connection to ``url``'s host pinned to a checked address, and the
    request target.

    :raise OSError: when the host does not resolve or only to private addresses.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    https = parts.scheme == "https"
    port = parts.port or (443 if https else 80)
    addresses = [
        info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    ]
    if not allow_private_urls():
        addresses = [a for a in addresses if _is_public(a)]
        if not addresses:
            raise OSError(f"{host} has no public address")
    address = addresses[0]
    if https:
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            host, port, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)

    def connect(target, timeout=None, source_address=None):
        # The address checked above, not a second lookup that could answer
        # differently; TLS still verifies the certificate against the host name.
        return socket.create_connection((address, target[1]), timeout, source_address)

    conn._create_connection = connect
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return conn, target


def post(
    url: str, body: bytes, headers: dict[str, str], *, timeout: float
) -> tuple[int | None, str | None]:
    """POST ``body`` to ``url``; never raises.

    :return: the HTTP status (None when no answer came) and the error (None for
        a 2xx answer).
    """
    conn = None
    try:
        conn, target = _connection(url, timeout)
        conn.request("POST", target, body=body, headers=headers)
        response = conn.getresponse()
        response.read(_READ_MAX)
    except (OSError, http.client.HTTPException, ValueError) as exc:
        return None, f"{type(exc).__name__}: {exc}"[:_ERROR_MAX]
    finally:
        if conn is not None:
            conn.close()
    if 200 <= response.status < 300:
        return response.status, None
    return response.status, f"HTTP {response.status} {response.reason}"[:_ERROR_MAX]


def _record(
    claimed: _Claimed,
    status: int | None,
    error: str | None,
    duration_ms: int,
    now: datetime,
    report: DeliveryReport,
) -> None:
    """Write one attempt and the delivery's next state; commit."""
    delivery = db.session.get(WebhookDelivery, claimed.id, populate_existing=True)
    delivery.attempts += 1
    db.session.add(
        WebhookAttempt(
            delivery_id=delivery.id,
            number=delivery.attempts,
            at=now,
            status_code=status,
            error=error,
            duration_ms=duration_ms,
        )
    )
    delivery.last_status_code, delivery.last_error = status, error
    schedule = retry_schedule()
    if error is None:
        delivery.status, delivery.delivered_at, delivery.next_attempt_at = (
            "delivered",
            now,
            None,
        )
        report.delivered.append(delivery.id)
    elif delivery.attempts > len(schedule):
        delivery.status, delivery.next_attempt_at = "failed", None
        report.failed.append(delivery.id)
    else:
        delivery.next_attempt_at = now + timedelta(
            seconds=schedule[delivery.attempts - 1]
        )
        report.retrying.append(delivery.id)
    logger.info(
        "webhook attempt",
        extra={
            "delivery_id": delivery.id,
            "subscription_id": delivery.subscription_id,
            "event": delivery.event,
            "attempt": delivery.attempts,
            "status_code": status,
            "outcome": delivery.status,
        },
    )
    db.session.commit()


def deliver_due(*, now: datetime, limit: int = 20) -> DeliveryReport:
    """Send up to ``limit`` deliveries due at ``now``; record every attempt.

    A job, not a service: it commits (the claim, then each attempt), and no
    transaction is open while it waits for a receiver. On PostgreSQL claims use
    ``FOR UPDATE SKIP LOCKED`` and a lease, so several workers share the queue.
    A 2xx answer delivers; anything else (another status, refused, timeout,
    no public address) retries after ``WEBHOOK_RETRY_SCHEDULE`` and fails after
    the last retry.

    :param now: the time of this run: what is due, the timestamp signed, the
        attempts' time and the next attempt's base.
    :param limit: the most deliveries attempted in this call.
    """
    report = DeliveryReport()
    timeout = float(_config("WEBHOOK_TIMEOUT_SECONDS", DEFAULT_TIMEOUT_SECONDS))
    timestamp = int(now.timestamp())
    for _ in range(limit):
        claimed = _claim(now)
        if claimed is None:
            break
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": USER_AGENT,
            "X-Webhook-Id": str(claimed.id),
            "X-Webhook-Event": claimed.event,
            "X-Webhook-Timestamp": str(timestamp),
            "X-Webhook-Signature": sign(claimed.secret, timestamp, claimed.body),
        }
        started = time.monotonic()
        status, error = post(claimed.url, claimed.body, headers, timeout=timeout)
        duration_ms = int((time.monotonic() - started) * 1000)
        _record(claimed, status, error, duration_ms, now, report)
    return report


def delivery_job(app: Flask, *, batch: int = 20, most: int = 500) -> DeliveryReport:
    """Run :func:`deliver_due` until nothing is due (the scheduled job).

    Each batch reads the clock again, so signatures carry the time of sending.
    """
    report = DeliveryReport()
    with app.app_context():
        try:
            while report.attempted < most:
                done = deliver_due(now=clock.now_utc(), limit=batch)
                report.merge(done)
                if done.attempted < batch:
                    break
        finally:
            db.session.rollback()
    if report.attempted:
        logger.info(
            "webhook deliveries",
            extra={
                "delivered": len(report.delivered),
                "retrying": len(report.retrying),
                "failed": len(report.failed),
            },
        )
    return report
