"""Demo history for the supervision dashboard: six months of complaints.

``seed-demo`` calls :func:`seed_dashboard_history` after the demo cases. It
registers a few more shops (in several provinces, on two platforms or none),
their staff, consumers and staff of the association, and plays some sixty
complaints through the real services (``file_case`` and ``apply_action``) with
the clock moved (:mod:`mediation.clock`) to when each step happened: answers in
time and late, clock pauses, escalations, mediations settled and failed,
awards, non-compliance, withdrawals and ratings. The statistics, the credit
ledger and every timeline come out exactly as if it had happened; the months
that ended are then summarized as the scheduled job would.

The demo logins of the README are not involved (their lists stay short); the
accounts made here share the demo password.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from mediation import clock
from mediation.auth.models import User
from mediation.auth.services import create_user, public_passwords
from mediation.cases.models import Case
from mediation.cases.services import Filing, apply_action, file_case
from mediation.extensions import db
from mediation.merchants.models import Merchant
from mediation.merchants.services import register_merchant
from mediation.merchants.uscc import check_character

PASSWORD = "demo-pass-2026"
#: Shops of the history: name, region code, platform key (None: independent).
SHOPS = [
    ("西湖丝绸旗舰店", "330106", "mall"),
    ("浦东数码专营店", "310115", "mall"),
    ("南山电子官方店", "440305", "cloud"),
    ("天河美妆小铺", "440106", "cloud"),
    ("朝阳家居生活馆", "110105", "mall"),
    ("武侯火锅食材店", "510107", None),
    ("鼓楼母婴用品店", "320106", "cloud"),
    ("武昌运动户外店", "420106", None),
]
PLATFORMS = {"cloud": ("云购商城", "440305")}
CATEGORY_WEIGHTS = {
    "quality_defect": 22,
    "delivery": 16,
    "refund_refused": 14,
    "false_advertising": 12,
    "after_sales": 10,
    "counterfeit": 8,
    "fake_promotion": 6,
    "unfair_terms": 4,
    "personal_info": 3,
    "fake_reviews": 2,
    "other": 3,
}
SCENARIOS = {
    "direct": 30,
    "escalated": 8,
    "mediated": 18,
    "unresolved": 9,
    "award": 6,
    "noncompliant": 4,
    "withdrawn": 8,
    "dismissed": 3,
    "open": 6,
}
CASES = 64
DAYS = 182
#: Complaints filed in the last days of the history play only these (and may stop
#: half-way: the end of the history is now).
RECENT_DAYS = 30
RECENT = ("direct", "direct", "direct", "open", "open", "withdrawn")


def _code(n: int) -> str:
    body = f"9144030{n:010d}"
    return body + check_character(body)


class _Later(Exception):
    """The next step of a case would happen after the end of the history."""


class _History:
    """Plays the demo history; one instance per seeding."""

    def __init__(self, now: datetime, rng: random.Random) -> None:
        self.now = now
        self.rng = rng
        self.count = 0

    def at(self, moment: datetime) -> datetime:
        """Move the clock to ``moment``.

        :raise _Later: when ``moment`` is after the end of the history: the
            case stays where it is now (open).
        """
        if moment > self.now:
            raise _Later()
        clock.freeze(moment)
        return moment

    def act(
        self,
        case: Case,
        action: str,
        moment: datetime,
        actor: User | None,
        relation: str,
        **payload: Any,
    ) -> datetime:
        apply_action(
            case, action, payload, actor=actor, relation=relation, now=self.at(moment)
        )
        return moment

    def expire(self, case: Case) -> datetime:
        """Let the running deadline pass: the sweep's step, a minute after it."""
        moment = case.due_at + timedelta(minutes=1)
        return self.act(case, "expire", moment, None, "system")

    def later(self, moment: datetime, low: float, high: float) -> datetime:
        """Return ``moment`` plus between ``low`` and ``high`` hours."""
        return moment + timedelta(hours=self.rng.uniform(low, high))


def seed_dashboard_history(now: datetime | None = None) -> dict[str, int]:
    """Play six months of complaints through the services (the caller commits).

    :param now: the end of the history (default: the clock now).
    :return: counts of shops and cases added.
    """
    now = now or clock.now_utc()
    try:
        clock.advance(timedelta(0))
        frozen_at: datetime | None = now
    except RuntimeError:
        frozen_at = None
    try:
        return _seed(now, random.Random(20261207))
    finally:
        if frozen_at is not None:
            clock.freeze(frozen_at)
        else:
            clock.unfreeze()


def _seed(now: datetime, rng: random.Random) -> dict[str, int]:
    start = now - timedelta(days=DAYS + 45)
    mall = db.session.scalar(
        db.select(Merchant).where(Merchant.kind == "platform").order_by(Merchant.id)
    )
    platforms: dict[str, Merchant | None] = {"mall": mall}
    n = 100
    for key, (name, region) in PLATFORMS.items():
        n += 1
        platforms[key] = register_merchant(
            {
                "name": name,
                "uscc": _code(n),
                "kind": "platform",
                "region_code": region,
                "arbitration_consent": True,
            },
            now=start,
        )
    cloud = platforms["cloud"]
    shops: list[Merchant] = []
    staff: dict[int, User] = {}
    for index, (name, region, platform_key) in enumerate(SHOPS):
        n += 1
        platform = platforms.get(platform_key) if platform_key else None
        shop = register_merchant(
            {
                "name": name,
                "uscc": _code(n),
                "kind": "goods",
                "region_code": region,
                "platform_id": platform.id if platform else None,
                "arbitration_consent": index % 3 != 2,
            },
            now=start,
        )
        shops.append(shop)
        staff[shop.id] = _user(
            f"history-shop{index + 1}@example.com",
            name,
            "merchant",
            start,
            merchant_id=shop.id,
        )
    for key, platform in platforms.items():
        if platform is not None and key != "mall":
            staff[platform.id] = _user(
                f"history-{key}@example.com",
                platform.name,
                "merchant",
                start,
                merchant_id=platform.id,
            )
    if mall is not None and mall.id not in staff:
        staff[mall.id] = db.session.scalar(
            db.select(User).where(User.merchant_id == mall.id).order_by(User.id)
        ) or _user(
            "history-mall@example.com",
            mall.name,
            "merchant",
            start,
            merchant_id=mall.id,
        )
    consumers = [
        _user(f"history-consumer{i}@example.com", name, "consumer", start)
        for i, name in enumerate(("陈女士", "刘先生", "周女士", "吴先生", "Alex Li"), 1)
    ]
    mediators = [
        _user(f"history-mediator{i}@example.com", name, "mediator", start)
        for i, name in enumerate(("孙调解", "钱调解"), 1)
    ]
    arbitrator = _user("history-arbitrator@example.com", "郑仲裁", "arbitrator", start)
    regulator = db.session.scalar(
        db.select(User).where(User.role == "regulator").order_by(User.id)
    ) or _user("history-regulator@example.com", "监管历史", "regulator", start)

    history = _History(now, rng)
    scenario_names = list(SCENARIOS)
    scenario_weights = list(SCENARIOS.values())
    categories = list(CATEGORY_WEIGHTS)
    category_weights = list(CATEGORY_WEIGHTS.values())
    plays: dict[str, Callable[..., None]] = {
        "direct": _direct,
        "escalated": _escalated,
        "mediated": _mediated,
        "unresolved": _unresolved,
        "award": _award,
        "noncompliant": _noncompliant,
        "withdrawn": _withdrawn,
        "dismissed": _dismissed,
        "open": _open,
    }
    for number in range(CASES):
        # More complaints lately: the later months are busier.
        share = rng.random() ** 0.6
        filed = now - timedelta(days=1 + DAYS * (1 - share))
        filed = filed.replace(hour=rng.randint(1, 11), minute=rng.randint(0, 59))
        filed = min(filed, now - timedelta(hours=2))
        scenario = rng.choices(scenario_names, scenario_weights)[0]
        if filed > now - timedelta(days=RECENT_DAYS) and scenario not in RECENT:
            # Recent complaints are still with the shop (no open case waits in
            # the demo mediators' or arbitrators' queues).
            scenario = rng.choice(RECENT)
        if scenario == "dismissed":
            shop = None
        elif scenario == "escalated":
            # Escalations go to the history's own platform, not the demo one's
            # inbox.
            shop = rng.choice([s for s in shops if s.platform_id == cloud.id])
        elif scenario == "award":
            shop = rng.choice([s for s in shops if s.arbitration_consent])
        else:
            shop = rng.choice(shops)
        consumer = rng.choice(consumers)
        category = rng.choices(categories, category_weights)[0]
        paid = rng.choice((3990, 8800, 12900, 29900, 45900, 89900, 159900))
        claim = rng.choice(
            ("refund", "refund", "compensation", "replacement", "repair")
        )
        filing = Filing(
            merchant_id=shop.id if shop else None,
            merchant_name=None if shop else rng.choice(("某某小卖部", "路边手机维修")),
            category=category,
            order_ref=f"H{number + 1:04d}-{rng.randint(100000, 999999)}",
            order_date=(filed - timedelta(days=rng.randint(3, 30))).date(),
            amount_paid=paid,
            claim_type=claim,
            claim_amount=paid if claim in ("refund", "compensation") else 0,
            description="历史演示投诉：商品或服务与约定不符，要求商家处理。",
            arbitration_consent=scenario == "award",
        )
        case = file_case(consumer, filing, now=history.at(filed))
        context = {
            "h": history,
            "case": case,
            "consumer": consumer,
            "staff": staff.get(shop.id) if shop else None,
            "platform_staff": staff.get(shop.platform_id) if shop else None,
            "mediator": rng.choice(mediators),
            "arbitrator": arbitrator,
            "regulator": regulator,
            "shop": shop,
            "start": filed,
        }
        try:
            plays[scenario](**context)
        except _Later:
            pass
        history.count += 1
    db.session.flush()
    return {"shops": len(shops) + len(PLATFORMS), "cases": history.count}


def _user(email: str, name: str, role: str, now: datetime, **kw: Any) -> User:
    # Accounts of the history, not demo logins: their password is public.
    with public_passwords():
        return create_user(
            email=email, password=PASSWORD, name=name, role=role, now=now, **kw
        )


def _remedy(h: _History, moment: datetime, case: Case, kind: str | None = None) -> dict:
    amount = case.claim_amount or 0
    if amount and h.rng.random() < 0.4:
        amount = amount // 2
    return {
        "type": kind or (case.claim_type if case.claim_type != "other" else "refund"),
        "amount": amount,
        "deadline": (moment + timedelta(days=5)).astimezone(UTC).date()
        + timedelta(days=1),
        "text": "商家同意按约定处理。",
    }


def _fulfil(
    h: _History,
    case: Case,
    moment: datetime,
    staff: User,
    consumer: User,
    *,
    rate: tuple[int, int],
) -> None:
    """Mark fulfilled, then the consumer confirms (or stays silent); maybe rates."""
    moment = h.act(
        case,
        "mark_fulfilled",
        h.later(moment, 12, 100),
        staff,
        "merchant",
        text="已按约定处理。",
    )
    if h.rng.random() < 0.75:
        moment = h.act(
            case, "confirm_fulfilment", h.later(moment, 2, 60), consumer, "consumer"
        )
    else:
        moment = h.expire(case)
    if h.rng.random() < 0.75:
        h.act(
            case,
            "rate",
            h.later(moment, 1, 48),
            consumer,
            "consumer",
            score=h.rng.randint(*rate),
            comment="",
        )


def _answer(h: _History, case: Case, start: datetime, staff: User) -> datetime:
    """The merchant answers in time, late after the platform got it, or pauses first."""
    moment = start
    if h.rng.random() < 0.15:
        moment = h.act(
            case,
            "request_evidence",
            h.later(moment, 2, 20),
            staff,
            "merchant",
            text="请提供商品照片和订单截图。",
        )
        consumer = case.consumer
        moment = h.act(
            case,
            "provide_evidence",
            h.later(moment, 6, 70),
            consumer,
            "consumer",
            text="已上传照片。",
        )
    return h.later(moment, 1, 50)


def _direct(h, case, consumer, staff, mediator, start, **_):
    moment = _answer(h, case, start, staff)
    recent = start > h.now - timedelta(days=RECENT_DAYS)
    if h.rng.random() < 0.2 and not recent:
        # Too slow: the deadline passes first (the shop answers the platform's
        # turn late, or the case goes to mediation).
        moment = h.expire(case)
        if case.status != "awaiting_platform":
            moment = _mediate_to_settlement(h, case, moment, consumer, staff, mediator)
            _fulfil(h, case, moment, staff, consumer, rate=(2, 4))
            return
        moment = h.later(moment, 1, 20)
    moment = h.act(case, "offer", moment, staff, "merchant", **_remedy(h, moment, case))
    moment = h.act(case, "accept_offer", h.later(moment, 2, 90), consumer, "consumer")
    _fulfil(h, case, moment, staff, consumer, rate=(3, 5))


def _escalated(h, case, consumer, staff, platform_staff, start, **_):
    moment = h.expire(case)
    platform_staff = platform_staff or staff
    moment = h.later(moment, 2, 40)
    moment = h.act(
        case, "offer", moment, platform_staff, "platform", **_remedy(h, moment, case)
    )
    moment = h.act(case, "accept_offer", h.later(moment, 2, 60), consumer, "consumer")
    # The shop performs what its platform agreed.
    _fulfil(h, case, moment, staff, consumer, rate=(2, 5))


def _to_mediation(h, case, start, staff, consumer) -> datetime:
    moment = _answer(h, case, start, staff)
    if h.rng.random() < 0.5:
        return h.act(
            case,
            "reject",
            moment,
            staff,
            "merchant",
            reason="物流显示已签收，不同意退款。",
        )
    moment = h.act(
        case, "offer", moment, staff, "merchant", **_remedy(h, moment, case, "apology")
    )
    if h.rng.random() < 0.3:
        return h.expire(case)
    return h.act(
        case,
        "reject_offer",
        h.later(moment, 4, 80),
        consumer,
        "consumer",
        reason="只道歉不能解决问题。",
    )


def _take(h, case, moment, mediator) -> datetime:
    if h.rng.random() < 0.15:
        # Nobody took it in time: taken after the pick-up deadline.
        moment = case.due_at + timedelta(hours=h.rng.uniform(1, 20))
    else:
        moment = h.later(moment, 1, 20)
    return h.act(case, "take", moment, mediator, "mediator")


def _propose(h, case, moment, mediator) -> datetime:
    moment = h.later(moment, 20, 150)
    return h.act(
        case,
        "propose",
        moment,
        mediator,
        "mediator",
        **_remedy(h, moment, case, "refund"),
    )


def _mediate_to_settlement(h, case, moment, consumer, staff, mediator) -> datetime:
    moment = _take(h, case, moment, mediator)
    moment = _propose(h, case, moment, mediator)
    moment = h.act(
        case, "accept_proposal", h.later(moment, 1, 30), consumer, "consumer"
    )
    return h.act(case, "accept_proposal", h.later(moment, 1, 30), staff, "merchant")


def _mediated(h, case, consumer, staff, mediator, start, **_):
    moment = _to_mediation(h, case, start, staff, consumer)
    moment = _mediate_to_settlement(h, case, moment, consumer, staff, mediator)
    _fulfil(h, case, moment, staff, consumer, rate=(2, 5))


def _unresolved(h, case, consumer, staff, mediator, start, **_):
    moment = _to_mediation(h, case, start, staff, consumer)
    moment = _take(h, case, moment, mediator)
    moment = _propose(h, case, moment, mediator)
    moment = h.act(
        case,
        "decline_proposal",
        h.later(moment, 2, 40),
        staff,
        "merchant",
        reason="金额过高。",
    )
    if h.rng.random() < 0.3:
        moment = h.expire(case)
    else:
        moment = h.act(
            case,
            "end_mediation",
            h.later(moment, 4, 60),
            mediator,
            "mediator",
            result="failed",
            reason="双方无法达成一致。",
        )
    if h.rng.random() < 0.5:
        h.act(
            case,
            "rate",
            h.later(moment, 1, 48),
            consumer,
            "consumer",
            score=h.rng.randint(1, 2),
            comment="",
        )


def _award(h, case, consumer, staff, mediator, arbitrator, start, **_):
    moment = _to_mediation(h, case, start, staff, consumer)
    moment = _take(h, case, moment, mediator)
    moment = h.act(
        case,
        "end_mediation",
        h.later(moment, 24, 120),
        mediator,
        "mediator",
        result="failed",
        reason="商家坚持不退款。",
    )
    if case.status != "in_arbitration":
        return
    moment = h.act(case, "take", h.later(moment, 1, 20), arbitrator, "arbitrator")
    moment = h.later(moment, 48, 200)
    orders = [
        {
            "type": "refund",
            "amount": case.claim_amount or 10000,
            "deadline": (moment + timedelta(days=10)).date(),
            "text": "退还货款。",
        },
        {
            "type": "costs",
            "amount": 5000,
            "deadline": (moment + timedelta(days=10)).date(),
            "text": "仲裁费用。",
        },
    ]
    moment = h.act(
        case,
        "issue_award",
        moment,
        arbitrator,
        "arbitrator",
        decision=h.rng.choice(("granted", "partly_granted")),
        findings="商品存在质量问题。",
        reasons="证据充分。",
        orders=orders,
    )
    _fulfil(h, case, moment, staff, consumer, rate=(3, 5))


def _noncompliant(h, case, consumer, staff, mediator, start, **_):
    moment = _to_mediation(h, case, start, staff, consumer)
    moment = _mediate_to_settlement(h, case, moment, consumer, staff, mediator)
    moment = h.act(
        case,
        "report_unfulfilled",
        case.due_at + timedelta(hours=h.rng.uniform(2, 30)),
        consumer,
        "consumer",
        text="商家未按协议退款。",
    )
    h.act(
        case, "rate", h.later(moment, 1, 24), consumer, "consumer", score=1, comment=""
    )


def _withdrawn(h, case, consumer, start, **_):
    h.act(
        case,
        "withdraw",
        h.later(start, 2, 60),
        consumer,
        "consumer",
        reason="已与商家私下解决。",
    )


def _dismissed(h, case, regulator, start, **_):
    h.act(
        case,
        "dismiss",
        h.later(start, 6, 70),
        regulator,
        "regulator",
        reason="不属于受理范围。",
    )


def _open(h, case, consumer, staff, start, **_):
    if h.rng.random() < 0.5 and case.status == "awaiting_merchant":
        moment = h.later(start, 0.5, 2)
        if moment < h.now:
            h.act(case, "offer", moment, staff, "merchant", **_remedy(h, moment, case))
