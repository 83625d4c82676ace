"""The dashboard's "waiting for a regulator" panel: open alerts, the merchants
most at risk, flagged complaint texts and planned interviews, each linked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mediation import clock
from mediation.analytics.risk import refresh_risk_scores
from mediation.extensions import db

#: Tuesday 3 March 2026, 10:00 in Shanghai.
START = datetime(2026, 3, 3, 2, 0, tzinfo=UTC)


def test_the_panel_lists_open_alerts_risks_and_flags(
    app, client, auth, make_user, make_merchant, make_case
):
    app.config["MASS_ALERT_THRESHOLD"] = 3
    shop = make_merchant(name="Promo Shop")
    quiet = make_merchant(name="Quiet Shop")
    regulator = make_user("regulator")
    auth.login(regulator)

    empty = client.get("/supervision/?lang=en").get_data(as_text=True)
    assert "0 open mass-complaint alerts" in empty
    assert "No open alert." in empty
    assert "No merchant has a risk score yet." in empty
    assert "0 complaint texts flagged" in empty

    for n in range(3):
        clock.freeze(START + timedelta(hours=n))
        make_case(
            make_user("consumer"),
            shop,
            category="fake_promotion",
            order_ref=f"P{n}",
            description="The sale price was raised before the discount.",
        )
    clock.freeze(START + timedelta(hours=4))
    make_case(
        make_user("consumer"),
        quiet,
        category="quality_defect",
        order_ref="Q1",
        description="商家刷单炒信，好评都是假的，商品质量很差。",
    )
    with app.app_context():
        refresh_risk_scores(now=clock.now_utc())
        db.session.commit()

    page = client.get("/supervision/?lang=en").get_data(as_text=True)
    assert "1 open mass-complaint alert" in page
    panel = page.split('data-testid="attention-alerts"')[1].split("</div>")[0]
    assert "Promo Shop" in panel and "3 complaints" in panel
    assert "/supervision/alerts/" in panel
    risk = page.split('data-testid="attention-risk"')[1].split("</div>")[0]
    assert risk.index("Promo Shop") < risk.index("Quiet Shop")
    assert f"/supervision/risk/merchants/{shop.id}" in risk
    assert "1 complaint text flagged" in page
    assert "0 warning interviews planned" in page


def test_the_panel_speaks_chinese(client, auth, make_user):
    auth.login(make_user("regulator"))
    page = client.get("/supervision/?lang=zh_CN").get_data(as_text=True)
    assert "0 条未处理的群体性投诉预警" in page
    assert "风险最高的商家" in page
