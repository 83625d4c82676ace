"""Demo data of the mass-complaint story (issue #7), for ``flask seed-demo``.

One shop draws 12 complaints about a fake promotion within five days, filed
through the real services with the clock moved back: the tenth raises the
alert (on filing), the last two join it. The shop rejected the eight oldest
(they are in mediation: the demo's second mediator took three, the others wait
in the queue or are assigned by the sweep); the four newest wait for the shop's
answer. The regulator finds the alert open under *Supervision → Alerts* and can
group the complaints for one mediator.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from mediation.auth.models import User
from mediation.auth.services import create_user
from mediation.cases.services import Filing, apply_action, file_case
from mediation.merchants.models import Merchant

#: How many complaints, over how many days.
COMPLAINTS = 12
SPAN = timedelta(days=5)
#: The oldest complaints the shop rejects (they go to mediation).
REJECTED = 8
#: Of those, how many the second demo mediator takes.
TAKEN = 3

#: The consumers who join the two demo consumers: (email, name, locale).
BUYERS = [
    (f"buyer{n:02d}@example.com", f"消费者{n:02d}", "zh_CN") for n in range(1, 11)
]

STORIES = [
    "双十一“满300减100”活动，结算时优惠未生效，客服称活动已结束但页面仍在显示。",
    "活动前一天商品标价899元，活动当天先涨到1299元再打七折，实为虚假折扣。",
    "页面承诺“前100名半价”，下单后被告知名额已满，但订单号显示我是第12单。",
    "宣传“买一送一”，收到货只有一件，赠品被以“库存不足”为由取消。",
    "“限时秒杀”价格与平时价格相同，倒计时每天重置，涉嫌虚构紧迫感。",
    "The “70% off today only” banner has been up for three weeks; "
    "the price never changed.",
    "领取的100元优惠券在结算时提示“不适用”，活动规则中并无此限制。",
    "宣传“全场包邮”，结算时仍收取运费12元。",
    "预售定金“膨胀”承诺未兑现，尾款支付时抵扣金额少于宣传。",
    "满减活动叠加说明含糊，实际到手价比宣传高出200元。",
    "“原价”为从未销售过的虚构价格，划线价误导消费者。",
    "抽奖活动声称100%中奖，实际奖品为无门槛1元券。",
]


def seed_alert_demo(
    shop: Merchant,
    consumers: list[User],
    shop_staff: User,
    mediator: User,
    *,
    password: str,
    now: datetime,
) -> dict[str, Any]:
    """File the burst of fake-promotion complaints against ``shop``.

    :param consumers: demo consumers who file the first complaints; the rest
        come from new demo accounts (``buyer01@example.com`` ...).
    :param shop_staff: who rejects the older complaints.
    :param mediator: who takes some of them.
    :param password: the demo accounts' password.
    :param now: the present; the complaints fall in the five days before it.
    :return: counts for the seed report.
    """
    start = now - SPAN
    buyers = list(consumers) + [
        create_user(
            email=email,
            password=password,
            name=name,
            role="consumer",
            locale=locale,
            now=start - timedelta(days=30),
        )
        for email, name, locale in BUYERS
    ]
    step = SPAN / COMPLAINTS
    taken = 0
    for n in range(COMPLAINTS):
        # Everything in time order: each complaint, then the shop's answer
        # three hours later, then (for some) the mediator an hour after that.
        filed_at = start + step * n
        case = file_case(
            buyers[n % len(buyers)],
            Filing(
                merchant_id=shop.id,
                category="fake_promotion",
                order_ref=f"JX2026DD11{n + 1:04d}",
                order_date=(filed_at - timedelta(days=2)).date(),
                amount_paid=129900,
                claim_type="compensation",
                claim_amount=40000,
                description=STORIES[n % len(STORIES)],
            ),
            now=filed_at,
        )
        if n < REJECTED:
            apply_action(
                case,
                "reject",
                {"reason": "活动规则已在页面写明，不存在虚假促销。"},
                actor=shop_staff,
                relation="merchant",
                now=filed_at + timedelta(hours=3),
            )
            if taken < TAKEN:
                taken += 1
                apply_action(
                    case,
                    "take",
                    {},
                    actor=mediator,
                    relation="mediator",
                    now=filed_at + timedelta(hours=4),
                )
    return {"fake_promotion": COMPLAINTS, "buyers": len(BUYERS)}
