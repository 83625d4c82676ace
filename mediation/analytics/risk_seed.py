"""Demo data of the risk list, warning interviews and text tagging.

Files the labelled complaint texts of ``data/tagging_demo.json`` against six
demo shops, through the real services, on the days the set gives (so the risk
list has rates, trends and categories, and the text flags queue has work), then
plays out what their merchants did: some answer at once, some let the answer
deadline pass, one settles late, two fail to perform a mediated settlement.
A regulator confirms two flags and dismisses one, one interview is planned
and one was held, and the risk list is computed. Every open case is left in a
state the SLA sweep may move on later; none waits in the mediation queue.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from mediation.analytics import interviews, risk, tagging
from mediation.analytics.tagging_models import TextFlag
from mediation.analytics.tagging_report import LabelledText, load_labelled
from mediation.auth.models import User
from mediation.auth.services import create_user
from mediation.cases.models import Case
from mediation.cases.services import Filing, apply_action, file_case
from mediation.extensions import db
from mediation.merchants.models import Merchant
from mediation.merchants.services import register_merchant
from mediation.merchants.uscc import check_character


@dataclass(frozen=True)
class DemoShop:
    """A demo merchant and how it handles complaints."""

    key: str
    name: str
    uscc17: str
    kind: str
    region_code: str
    on_platform: bool
    #: ``silent`` (lets deadlines pass), ``late`` (answers after the deadline),
    #: ``answers`` (offers a refund at once).
    behaviour: str
    staff_email: str
    staff_name: str
    locale: str = "zh_CN"


SHOPS = (
    DemoShop("fashion", "潮流服饰专营店", "91330106MA2KF8E31", "goods", "330106", True,
             "silent", "fashion@example.com", "潮流服饰客服"),
    DemoShop("beauty", "美妆优选小铺", "91310104MA1FR2K72", "goods", "310104", True,
             "late", "beauty@example.com", "美妆优选客服"),
    DemoShop("global", "Global Sneakers Outlet", "91330102MA2GX0L53", "goods",
             "330102", True, "silent", "global@example.com", "Global Sneakers",
             "en"),
    DemoShop("digital", "数码先锋专卖店", "91440305MA5DQ3P64", "goods", "440305", False,
             "answers", "digital@example.com", "数码先锋客服"),
    DemoShop("fitness", "乐动健身会所", "91110105MA01R8Y85", "service", "110105", False,
             "answers", "fitness@example.com", "乐动健身前台"),
    DemoShop("home", "安家家居生活馆", "91350102MA8T1LQ96", "goods", "350102", False,
             "answers", "home@example.com", "安家家居客服"),
)  # fmt: skip

#: Demo consumers who filed the labelled complaints (password: the demo one).
CONSUMERS = (
    ("liu@example.com", "刘顾客", "zh_CN"),
    ("chen@example.com", "陈女士", "zh_CN"),
    ("dana@example.com", "Dana Shopper", "en"),
    ("eli@example.com", "Eli Buyer", "en"),
)

#: Settlements that the merchant does not perform (closed as non-compliant).
NONCOMPLIANT = ("zh-08", "en-05")
#: Flags a regulator decided in the demo: confirmed, and dismissed with a reason.
CONFIRMED = (("zh-02", "fake_reviews"), ("en-04", "fake_reviews"))
DISMISSED = (
    (
        "en-39",
        "false_advertising",
        "The listing was accurate; the complaint is about the delivery.",
    ),
)


def _code(body: str) -> str:
    return body + check_character(body)


def _act(case: Case, action: str, payload: dict, actor, relation: str, at: datetime):
    apply_action(case, action, payload, actor=actor, relation=relation, now=at)


def seed_risk_demo(now: datetime) -> dict[str, Any]:
    """Create the demo data of this part; return counts. Caller commits.

    :param now: the demo's present (the labelled set's ``days_ago`` count back
        from it).
    """
    from mediation.seed import DEMO_PASSWORD

    platform = db.session.scalar(
        db.select(Merchant).where(Merchant.kind == "platform").order_by(Merchant.id)
    )
    shops: dict[str, Merchant] = {}
    staff: dict[str, User] = {}
    for shop in SHOPS:
        values: dict[str, Any] = {
            "name": shop.name,
            "uscc": _code(shop.uscc17),
            "kind": shop.kind,
            "region_code": shop.region_code,
            "arbitration_consent": False,
        }
        if shop.on_platform and platform is not None:
            values["platform_id"] = platform.id
        shops[shop.key] = register_merchant(values, now=now - timedelta(days=120))
        staff[shop.key] = create_user(
            email=shop.staff_email,
            password=DEMO_PASSWORD,
            name=shop.staff_name,
            role="merchant",
            merchant_id=shops[shop.key].id,
            locale=shop.locale,
            now=now - timedelta(days=120),
        )
    consumers = {
        email: create_user(
            email=email,
            password=DEMO_PASSWORD,
            name=name,
            role="consumer",
            locale=locale,
            now=now - timedelta(days=120),
        )
        for email, name, locale in CONSUMERS
    }
    zh = [consumers["liu@example.com"], consumers["chen@example.com"]]
    en = [consumers["dana@example.com"], consumers["eli@example.com"]]
    mediator = db.session.scalar(
        db.select(User).where(User.email == "mediator1@example.com")
    )
    regulator = db.session.scalar(
        db.select(User).where(User.email == "regulator@example.com")
    )
    behaviour = {shop.key: shop for shop in SHOPS}
    items = sorted(load_labelled(), key=lambda i: (-i.days_ago, i.id))
    filed: dict[str, Case] = {}
    for n, item in enumerate(items):
        shop = behaviour[item.merchant]
        merchant = shops[item.merchant]
        consumer = (en if item.lang == "en" else zh)[n % 2]
        at = now - timedelta(days=item.days_ago, hours=n % 7)
        case = file_case(
            consumer,
            Filing(
                merchant_id=merchant.id,
                category=item.category,
                order_ref=f"DEMO-{item.id.upper()}",
                order_date=(at - timedelta(days=3 + n % 5)).date(),
                amount_paid=9900 + 1000 * (n % 20),
                claim_type="refund",
                claim_amount=9900 + 1000 * (n % 20),
                description=item.text,
            ),
            now=at,
        )
        filed[item.id] = case
        _play(case, item, shop, staff[item.merchant], consumer, mediator, now, at)
    decided = _decide_flags(filed, regulator, now)
    planned = _interviews(shops, regulator, now)
    report = risk.refresh_risk_scores(now=now)
    return {
        "risk_demo_cases": len(filed),
        "text_flags": db.session.scalar(db.select(db.func.count(TextFlag.id))),
        "flags_decided": decided,
        "interviews": planned,
        "merchants_at_risk": report.scored,
    }


def _play(
    case: Case,
    item: LabelledText,
    shop: DemoShop,
    staff: User,
    consumer: User,
    mediator: User | None,
    now: datetime,
    at: datetime,
) -> None:
    """Play out what the merchant (and the consumer) did since the filing."""
    refund = {
        "type": "refund",
        "amount": case.amount_paid,
        "text": "全额退款。" if item.lang == "zh" else "Full refund.",
    }

    def offer(when: datetime) -> dict:
        return {**refund, "deadline": (when + timedelta(days=3)).date()}

    if item.id in NONCOMPLIANT and mediator is not None:
        day = timedelta(days=1)
        hour = timedelta(hours=1)
        steps = [
            ("reject", {"reason": "不同意。"}, staff, "merchant", at + day),
            ("take", {}, mediator, "mediator", at + day + 2 * hour),
            ("propose", offer(at + 2 * day), mediator, "mediator", at + 2 * day),
            ("accept_proposal", {}, consumer, "consumer", at + 2 * day + hour),
            ("accept_proposal", {}, staff, "merchant", at + 2 * day + 2 * hour),
            ("report_unfulfilled", {}, consumer, "consumer", at + 12 * day),
        ]
        for action, payload, actor, relation, when in steps:
            _act(case, action, payload, actor, relation, when)
        return
    if shop.behaviour == "answers":
        when = at + timedelta(days=1)
        if when > now:
            return
        _act(case, "offer", offer(when), staff, "merchant", when)
        if when + timedelta(days=1) <= now:
            _act(
                case, "accept_offer", {}, consumer, "consumer", when + timedelta(days=1)
            )
            if when + timedelta(days=2) <= now:
                _act(
                    case,
                    "mark_fulfilled",
                    {},
                    staff,
                    "merchant",
                    when + timedelta(days=2),
                )
        return
    # Silent and late merchants let the answer deadline pass.
    if case.due_at is None or case.due_at + timedelta(hours=1) > now:
        return
    expired = case.due_at + timedelta(hours=1)
    _act(case, "expire", {}, None, "system", expired)
    if shop.behaviour == "late" and case.status == "awaiting_platform":
        when = expired + timedelta(hours=4)
        if when <= now:
            _act(case, "offer", offer(when), staff, "merchant", when)
            if when + timedelta(days=1) <= now:
                _act(
                    case,
                    "accept_offer",
                    {},
                    consumer,
                    "consumer",
                    when + timedelta(days=1),
                )
        return
    if expired + timedelta(days=1) <= now and case.status == "awaiting_platform":
        # The consumer gives up on the silent shop.
        reason = (
            "商家一直不回复，已向平台另行反映。" if item.lang == "zh" else "No answer."
        )
        _act(case, "withdraw", {"reason": reason}, consumer, "consumer",
             expired + timedelta(days=1))  # fmt: skip


def _decide_flags(filed: dict[str, Case], regulator: User | None, now: datetime) -> int:
    """A regulator confirms two flags and dismisses one."""
    if regulator is None:
        return 0
    decided = 0
    when = now - timedelta(days=1)
    for item_id, category in CONFIRMED:
        flag = _flag(filed.get(item_id), category)
        if flag is not None:
            tagging.confirm_flag(flag, actor=regulator, now=when)
            decided += 1
    for item_id, category, reason in DISMISSED:
        flag = _flag(filed.get(item_id), category)
        if flag is not None:
            tagging.dismiss_flag(flag, actor=regulator, reason=reason, now=when)
            decided += 1
    return decided


def _flag(case: Case | None, category: str) -> TextFlag | None:
    if case is None:
        return None
    return db.session.scalar(
        db.select(TextFlag).where(
            TextFlag.case_id == case.id,
            TextFlag.suggested_category == category,
            TextFlag.status == "pending",
        )
    )


def _interviews(
    shops: dict[str, Merchant], regulator: User | None, now: datetime
) -> int:
    """One interview held three weeks ago, one planned for next week."""
    if regulator is None:
        return 0
    earlier = now - timedelta(days=21)
    held = interviews.plan_interview(
        shops["global"],
        interviews.PlanInput(
            reason="Many complaints about counterfeit trainers and unanswered "
            "complaints; the shop is asked to explain its sourcing.",
            planned_for=interviews.today(earlier) + timedelta(days=7),
        ),
        actor=regulator,
        now=earlier,
    )
    interviews.record_outcome(
        held,
        interviews.OutcomeInput(
            held_on=interviews.today(earlier) + timedelta(days=7),
            summary="The operator attended and admitted buying stock from an "
            "unlicensed wholesaler.",
            commitments="Remove the listed items, show purchase invoices for every "
            "brand, answer every complaint within 2 working days.",
            follow_up_on=interviews.today(now) + timedelta(days=14),
        ),
        actor=regulator,
        now=earlier + timedelta(days=7, hours=6),
    )
    interviews.plan_interview(
        shops["fashion"],
        interviews.PlanInput(
            reason="近30日投诉量明显上升，涉及刷单炒信、假冒商品，且多次未在期限内答复消费者。",
            planned_for=interviews.today(now) + timedelta(days=5),
        ),
        actor=regulator,
        now=now,
    )
    return 2
