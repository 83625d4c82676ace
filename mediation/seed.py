"""``seed-demo``: demo accounts, merchants and cases in several statuses."""

from __future__ import annotations

from datetime import timedelta

import click
from flask.cli import with_appcontext

from mediation import clock
from mediation.analytics.dashboard_seed import seed_dashboard_history
from mediation.analytics.risk_seed import seed_risk_demo
from mediation.analytics.stats_summaries import summarize_due_months
from mediation.analytics.warning_services import seed_demo_warning
from mediation.auth.models import User
from mediation.auth.services import create_user, public_passwords
from mediation.cases.models import Case
from mediation.cases.services import Filing, apply_action, file_case
from mediation.extensions import db
from mediation.merchants.services import register_merchant
from mediation.notifications.models import Notification

DEMO_PASSWORD = "demo-pass-2026"

#: (email, name, role, merchant key or None, locale) — listed in the README.
ACCOUNTS = [
    ("regulator@example.com", "王监管", "regulator", None, "zh_CN"),
    ("mediator1@example.com", "李调解", "mediator", None, "zh_CN"),
    ("mediator2@example.com", "Mia Mediator", "mediator", None, "en"),
    ("arbitrator@example.com", "赵仲裁", "arbitrator", None, "zh_CN"),
    ("platform@example.com", "鲸选商城客服", "merchant", "platform", "zh_CN"),
    ("shop@example.com", "优品家电旗舰店", "merchant", "shop", "zh_CN"),
    ("independent@example.com", "青禾茶庄", "merchant", "independent", "zh_CN"),
    ("consumer@example.com", "张消费", "consumer", None, "zh_CN"),
    ("consumer2@example.com", "Chris Consumer", "consumer", None, "en"),
]

MERCHANTS = {
    "platform": dict(
        name="鲸选商城",
        uscc="91330100MA27XK5Q1U",
        kind="platform",
        region_code="330106",
        shop_url="https://mall.example.cn",
        arbitration_consent=True,
        commitment="平台承诺：收到投诉后 2 个工作日内处理。",
    ),
    "shop": dict(
        name="优品家电旗舰店",
        uscc="91330106MA2H0JXK4C",
        kind="goods",
        region_code="330106",
        shop_url="https://mall.example.cn/shop/youpin",
        arbitration_consent=True,
        commitment="七天无理由退货，质量问题包退换。",
    ),
    "independent": dict(
        name="青禾茶庄",
        uscc="91350100MA8RK7L22F",
        kind="goods",
        region_code="350102",
        shop_url="https://qinghe-tea.example.cn",
        arbitration_consent=False,
    ),
}


def _valid_code(code: str) -> str:
    """Fix the check character of a demo code (the demo codes are made up)."""
    from mediation.merchants.uscc import check_character

    return code[:17] + check_character(code[:17])


def seed_demo(now=None) -> dict[str, int]:
    """Create the demo data; return counts. Caller commits.

    Every demo account's password is :data:`DEMO_PASSWORD`, printed for all to
    read: hashed at the cost of a public password (``public_passwords``).
    """
    with public_passwords():
        return _seed_demo(now or clock.now_utc())


def _seed_demo(now) -> dict[str, int]:
    merchants = {}
    for key, values in MERCHANTS.items():
        values = dict(values, uscc=_valid_code(values["uscc"]))
        if key == "shop":
            values["platform_id"] = merchants["platform"].id
        merchants[key] = register_merchant(values, now=now)
    users: dict[str, User] = {}
    for email, name, role, merchant_key, locale in ACCOUNTS:
        users[email] = create_user(
            email=email,
            password=DEMO_PASSWORD,
            name=name,
            role=role,
            now=now,
            locale=locale,
            merchant_id=merchants[merchant_key].id if merchant_key else None,
        )
    consumer, consumer2 = users["consumer@example.com"], users["consumer2@example.com"]
    shop, independent = merchants["shop"], merchants["independent"]
    shop_staff = users["shop@example.com"]
    tea_staff = users["independent@example.com"]
    # Mass complaints (issue #7): 12 fake-promotion complaints in the 5 days
    # before now, so an alert is open; filed first, the rest happens at now.
    from mediation.analytics.alert_demo import seed_alert_demo

    seed_alert_demo(
        shop,
        [consumer, consumer2],
        shop_staff,
        users["mediator2@example.com"],
        password=DEMO_PASSWORD,
        now=now,
    )
    today = now.date()

    def filing(merchant, **kw) -> Filing:
        return Filing(
            merchant_id=merchant.id if merchant else None,
            category=kw.pop("category", "quality_defect"),
            order_ref=kw.pop("order_ref"),
            order_date=kw.pop("order_date", today - timedelta(days=12)),
            amount_paid=kw.pop("amount_paid", 29900),
            claim_type=kw.pop("claim_type", "refund"),
            claim_amount=kw.pop("claim_amount", 29900),
            description=kw.pop("description"),
            **kw,
        )

    # 1. Waiting for the shop's answer.
    file_case(
        consumer,
        filing(
            shop,
            order_ref="JX20261101001",
            description="电热水壶使用两天后底部漏水，要求退货退款。",
        ),
        now=now,
    )
    # 2. An offer waiting for the consumer.
    c2 = file_case(
        consumer,
        filing(
            shop,
            order_ref="JX20261015233",
            category="false_advertising",
            amount_paid=159900,
            claim_amount=50000,
            claim_type="compensation",
            description="商品页面宣称一级能效，实际铭牌为三级能效。",
        ),
        now=now,
    )
    apply_action(
        c2,
        "offer",
        {
            "type": "compensation",
            "amount": 30000,
            "deadline": today + timedelta(days=7),
            "text": "补偿 300 元差价，三日内原路退回。",
        },
        actor=shop_staff,
        relation="merchant",
        now=now,
    )
    # 3. Rejected by the merchant: now in the mediators' queue.
    c3 = file_case(
        consumer2,
        filing(
            independent,
            order_ref="QH-8842",
            category="delivery",
            amount_paid=8800,
            claim_amount=8800,
            description="Paid for tea three weeks ago, it never arrived.",
        ),
        now=now,
    )
    apply_action(
        c3,
        "reject",
        {"reason": "物流显示已签收。"},
        actor=tea_staff,
        relation="merchant",
        now=now,
    )
    # 4. Settled and fulfilled, then confirmed: resolved.
    c4 = file_case(
        consumer2,
        filing(
            shop,
            order_ref="JX20260930777",
            claim_type="replacement",
            claim_amount=0,
            description="The blender arrived with a cracked jug.",
        ),
        now=now,
    )
    apply_action(
        c4,
        "offer",
        {
            "type": "replacement",
            "amount": 0,
            "deadline": today + timedelta(days=5),
            "text": "We will send a new jug by express.",
        },
        actor=shop_staff,
        relation="merchant",
        now=now,
    )
    apply_action(c4, "accept_offer", {}, actor=consumer2, relation="consumer", now=now)
    apply_action(
        c4,
        "mark_fulfilled",
        {"text": "SF1234567890"},
        actor=shop_staff,
        relation="merchant",
        now=now,
    )
    apply_action(
        c4, "confirm_fulfilment", {}, actor=consumer2, relation="consumer", now=now
    )
    # 5. An unregistered shop on the platform: the platform answers.
    file_case(
        consumer,
        filing(
            None,
            merchant_name="某某数码小店",
            platform_id=merchants["platform"].id,
            category="counterfeit",
            order_ref="JX20261109555",
            amount_paid=4990,
            claim_amount=14970,
            claim_type="compensation",
            description="购买的充电器为假冒品牌，要求退一赔三。",
        ),
        now=now,
    )
    # 6. An unregistered shop without a platform: the regulator's intake queue.
    file_case(
        consumer2,
        filing(
            None,
            merchant_name="Street Phone Repairs",
            category="after_sales",
            order_ref="SPR-17",
            amount_paid=20000,
            claim_amount=20000,
            claim_type="repair",
            description="Screen repair failed again after one week.",
        ),
        now=now,
    )
    seed_demo_warning(users["regulator@example.com"], [shop], now=now)
    seed_dashboard_history(now)
    seed_risk_demo(now)
    # As the scheduled job would, once every demo complaint is in place: the
    # months that ended, summarized for the dashboard (the demo files into past
    # months, which the live system never does).
    summarize_due_months(now=now)
    # The demo's notifications stay in everyone's bell, but no mail goes out:
    # the addresses are made up and the events are history. (Left ``pending``,
    # the outbox would send or log some 1,300 mails when the command exits.)
    db.session.execute(
        db.update(Notification)
        .where(Notification.email_status == "pending")
        .values(email_status="skipped")
        .execution_options(synchronize_session=False)
    )
    return {
        "merchants": len(merchants),
        "users": len(users),
        "cases": db.session.scalar(db.select(db.func.count(Case.id))),
    }


@click.command("seed-demo")
@click.option("--if-empty", is_flag=True, help="Do nothing when any user exists.")
@with_appcontext
def seed_demo_command(if_empty: bool) -> None:
    """Load the demo accounts, merchants and cases (see the README for logins)."""
    if db.session.scalar(db.select(db.func.count(User.id))):
        if if_empty:
            click.echo("database not empty: demo data not loaded")
            return
        raise click.ClickException(
            "the database already has users; use an empty database"
        )
    counts = seed_demo()
    db.session.commit()
    click.echo(f"demo data loaded: {counts}; password for every login: {DEMO_PASSWORD}")
