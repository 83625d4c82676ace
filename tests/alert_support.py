"""A small world for the mass-complaint alert and case-group tests.

Shop S (on platform P) and another shop T; consumers A, B, C; staff of S, T
and P; mediators M and M2; an arbitrator; regulators R and R2. Complaints are
filed through ``file_case`` with the clock frozen and moved, so every test says
when each complaint was filed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from mediation import clock
from mediation.analytics.alert_models import CaseGroup, MassAlert, MassAlertCase
from mediation.auth.models import User
from mediation.cases import services
from mediation.cases.models import Case
from mediation.extensions import db, socketio
from tests.conftest import PASSWORD

#: Monday 2 March 2026, 10:00 in Shanghai.
MONDAY = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
NS = "/chat"
CONSUMERS = ("A", "B", "C")


class AlertWorld:
    """The actors and helpers of the alert tests (see the module docstring)."""

    def __init__(self, app, make_user, make_merchant, make_case, token_for) -> None:
        self.app = app
        self._make_case = make_case
        self._token_for = token_for
        self.platform = make_merchant(name="Mall", kind="platform")
        self.shop = make_merchant(
            name="Promo Shop", platform_id=self.platform.id, arbitration_consent=True
        )
        self.other_shop = make_merchant(name="Tea House")
        self.users = {
            "A": make_user("consumer", name="Alice Consumer"),
            "B": make_user("consumer", name="Bob Consumer"),
            "C": make_user("consumer", name="Carol Consumer"),
            "S": make_user("merchant", merchant_id=self.shop.id, name="Staff S"),
            "T": make_user("merchant", merchant_id=self.other_shop.id, name="Staff T"),
            "P": make_user("merchant", merchant_id=self.platform.id, name="Staff P"),
            "M": make_user("mediator", name="Mediator M"),
            "M2": make_user("mediator", name="Mediator M2"),
            "arb": make_user("arbitrator", name="Arbitrator"),
            "R": make_user("regulator", name="Regulator R"),
            "R2": make_user("regulator", name="Regulator R2"),
        }
        self._orders = 0

    # Filing and acting -------------------------------------------------------------

    def file(
        self,
        count: int = 1,
        *,
        category: str = "fake_promotion",
        shop: Any = "S",
        consumer: str | None = None,
        every: timedelta | None = None,
        **kw: Any,
    ) -> list[int]:
        """File ``count`` complaints (rotating consumers A, B, C) at the clock's
        time, moving it by ``every`` after each; return their ids.

        :param shop: ``"S"``, ``"T"``, or None for an unregistered shop.
        """
        merchant = {"S": self.shop, "T": self.other_shop, None: None}[shop]
        ids = []
        for n in range(count):
            self._orders += 1
            who = consumer or CONSUMERS[(self._orders - 1) % len(CONSUMERS)]
            extra = dict(kw)
            if merchant is None:
                extra.setdefault("merchant_name", "Street Stall")
            ids.append(
                self._make_case(
                    self.users[who],
                    merchant,
                    order_ref=f"ORDER-{self._orders}",
                    category=category,
                    arbitration_consent=True,
                    **extra,
                )
            )
            if every is not None and n < count - 1:
                clock.advance(every)
        return ids

    def act(
        self, case_id: int, action: str, actor: str | None, relation: str, **payload
    ) -> None:
        """Apply a case action through the service and commit."""
        with self.app.app_context():
            case = db.session.get(Case, case_id)
            user = db.session.get(User, self.users[actor].id) if actor else None
            services.apply_action(
                case,
                action,
                payload,
                actor=user,
                relation=relation,
                now=clock.now_utc(),
            )
            db.session.commit()

    def to_mediation(self, case_id: int, *, take: str | None = None) -> None:
        """S rejects the case (it goes to mediation); mediator ``take`` takes it."""
        self.act(case_id, "reject", "S", "merchant", reason="Not our fault.")
        if take:
            self.act(case_id, "take", take, "mediator")

    # Reading -----------------------------------------------------------------------

    def alerts(self) -> list[dict[str, Any]]:
        """Return every alert as a dict (status, count, case ids ...), oldest first."""
        with self.app.app_context():
            out = []
            for alert in db.session.scalars(
                db.select(MassAlert).order_by(MassAlert.id)
            ):
                ids = sorted(
                    db.session.scalars(
                        db.select(MassAlertCase.case_id).where(
                            MassAlertCase.alert_id == alert.id
                        )
                    ).all()
                )
                out.append(
                    {
                        "id": alert.id,
                        "merchant_id": alert.merchant_id,
                        "category": alert.category,
                        "status": alert.status,
                        "count": alert.count,
                        "case_ids": ids,
                        "raised_by": alert.raised_by,
                        "raised_at": alert.raised_at,
                        "credit_event_id": alert.credit_event_id,
                        "threshold": alert.threshold,
                        "window_days": alert.window_days,
                    }
                )
            return out

    def case(self, case_id: int) -> dict[str, Any]:
        """Return a case's status, mediator, group and timeline actions."""
        with self.app.app_context():
            case = db.session.get(Case, case_id)
            return {
                "status": case.status,
                "mediator_id": case.mediator_id,
                "group_id": case.group_id,
                "events": [(e.action, e.actor_id, dict(e.data)) for e in case.events],
            }

    def group(self, group_id: int) -> dict[str, Any]:
        with self.app.app_context():
            group = db.session.get(CaseGroup, group_id)
            return {
                "mediator_id": group.mediator_id,
                "room_case_id": group.room_case_id,
                "case_ids": [c.id for c in group.cases],
                "alert_id": group.alert_id,
                "title": group.title,
            }

    # Clients -----------------------------------------------------------------------

    def http(self, actor: str):
        """Return a Flask test client signed in as ``actor``."""
        client = self.app.test_client()
        response = client.post(
            "/login", data={"email": self.users[actor].email, "password": PASSWORD}
        )
        assert response.status_code == 302, response.status_code
        return client

    def socket(self, actor: str):
        """Return a connected socket test client of ``actor``."""
        return socketio.test_client(
            self.app, namespace=NS, flask_test_client=self.http(actor)
        )

    def headers(self, actor: str) -> dict[str, str]:
        return self._token_for(self.users[actor])


def group_now(
    world: AlertWorld,
    case_ids: list[int],
    *,
    actor: str = "R",
    mediator: str | None = "M",
    alert_id: int | None = None,
    title: str | None = None,
) -> int:
    """Group cases through the service as ``actor`` and commit; return the id."""
    from mediation.analytics import groups
    from mediation.auth.permissions import lock_case

    with world.app.app_context():
        cases = [lock_case(i) for i in case_ids]
        group = groups.group_cases(
            cases,
            actor=db.session.get(User, world.users[actor].id),
            mediator=db.session.get(User, world.users[mediator].id)
            if mediator
            else None,
            title=title,
            alert=db.session.get(MassAlert, alert_id) if alert_id else None,
            now=clock.now_utc(),
        )
        db.session.commit()
        return group.id


def ack(sio, event: str, payload: Any) -> Any:
    """Emit ``event`` and return the server's acknowledgement."""
    return sio.emit(event, payload, namespace=NS, callback=True)


def received(sio, name: str) -> list[dict[str, Any]]:
    """Return (and consume) the payloads of ``name`` events the client got."""
    return [e["args"][0] for e in sio.get_received(NS) if e["name"] == name]
