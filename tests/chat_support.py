"""A small world for the chat tests: a case in mediation and everyone around it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from mediation import clock
from mediation.auth.models import User
from mediation.cases import services
from mediation.cases.models import Case
from mediation.extensions import db, socketio
from tests.conftest import PASSWORD

#: Monday 2 March 2026, 10:00 in Shanghai.
MONDAY = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
NS = "/chat"


class ChatWorld:
    """Consumer A's case against shop S, in mediation with mediator M.

    Also: another consumer B, staff T of another shop, staff P of the platform S
    sells on, a second mediator M2, an arbitrator and a regulator.
    """

    def __init__(self, app, make_user, make_merchant, make_case, token_for) -> None:
        self.app = app
        self._make_case = make_case
        self._token_for = token_for
        self.platform = make_merchant(name="Mall", kind="platform")
        self.shop = make_merchant(
            name="Kettle Shop", platform_id=self.platform.id, arbitration_consent=True
        )
        self.other_shop = make_merchant(name="Tea House")
        self.users = {
            "A": make_user("consumer", name="Consumer A"),
            "B": make_user("consumer", name="Consumer B"),
            "S": make_user("merchant", merchant_id=self.shop.id, name="Staff S"),
            "T": make_user("merchant", merchant_id=self.other_shop.id, name="Staff T"),
            "P": make_user("merchant", merchant_id=self.platform.id, name="Staff P"),
            "M": make_user("mediator", name="Mediator M"),
            "M2": make_user("mediator", name="Mediator M2"),
            "arb": make_user("arbitrator", name="Arbitrator"),
            "reg": make_user("regulator", name="Regulator"),
        }
        self._orders = 0
        self.case_id = self.new_case(take=True)

    def new_case(self, *, take: bool) -> int:
        """File a case of A against S (both consent to arbitration), rejected by S
        (in mediation); M takes it when ``take``."""
        self._orders += 1
        case_id = self._make_case(
            self.users["A"],
            self.shop,
            order_ref=f"ORDER-{self._orders}",
            arbitration_consent=True,
        )
        self.act("reject", "S", "merchant", case_id=case_id, reason="Not our fault.")
        if take:
            self.act("take", "M", "mediator", case_id=case_id)
        return case_id

    def act(
        self, action: str, actor: str | None, relation: str, *, case_id=None, **payload
    ) -> None:
        """Apply a case action through the service and commit."""
        with self.app.app_context():
            case = db.session.get(Case, case_id or self.case_id)
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

    def user(self, actor: str):
        return self.users[actor]

    def http(self, actor: str):
        """Return a Flask test client signed in as ``actor``."""
        client = self.app.test_client()
        response = client.post(
            "/login", data={"email": self.users[actor].email, "password": PASSWORD}
        )
        assert response.status_code == 302, response.status_code
        return client

    def socket(self, actor: str | None, **kw: Any):
        """Return a connected (or refused) socket test client of ``actor``."""
        client = self.http(actor) if actor else self.app.test_client()
        return socketio.test_client(
            self.app, namespace=NS, flask_test_client=client, **kw
        )

    def token(self, actor: str) -> str:
        return self._token_for(self.users[actor])["Authorization"].split(" ", 1)[1]


def ack(sio, event: str, payload: Any = None) -> Any:
    """Emit ``event`` and return the server's acknowledgement."""
    if payload is None:
        return sio.emit(event, namespace=NS, callback=True)
    return sio.emit(event, payload, namespace=NS, callback=True)


def received(sio, name: str) -> list[dict[str, Any]]:
    """Return (and consume) the payloads of ``name`` events the client got."""
    return [e["args"][0] for e in sio.get_received(NS) if e["name"] == name]


def events_of(sio) -> list[tuple[str, Any]]:
    """Return (and consume) every event the client got, as (name, payload)."""
    return [(e["name"], e["args"][0]) for e in sio.get_received(NS)]
