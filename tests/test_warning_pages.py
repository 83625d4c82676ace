"""Consumer warnings on the pages: the regulators' editor (draft, preview,
publish, withdraw, discard), the public list and page, the merchants' credit
pages, escaping, the audit trail, and bad input answered with form errors."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from mediation import clock
from mediation.analytics import warning_services as services
from mediation.analytics.audit_models import AuditEntry
from mediation.analytics.warning_models import ConsumerWarning
from mediation.auth.models import User
from mediation.extensions import db

#: Monday 2 March 2026, 10:00 in Shanghai.
MONDAY = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
BODY = "Kettles of this batch leak.\n\nKeep your receipt and complain here."


@pytest.fixture(autouse=True)
def _monday(app):
    clock.freeze(MONDAY)
    app.config["LOGIN_RATE_LIMIT"] = "10000 per minute"
    yield
    clock.unfreeze()


@pytest.fixture()
def people(make_user, make_merchant):
    mall = make_merchant(name="Whale Mall", kind="platform")
    return {
        "regulator": make_user("regulator", name="Wang Regulator", locale="en"),
        "other_regulator": make_user("regulator", name="Li Regulator", locale="en"),
        "consumer": make_user("consumer", locale="en"),
        "mediator": make_user("mediator", locale="en"),
        "shop": make_merchant(name="Kettle Shop", platform_id=mall.id),
        "tea": make_merchant(name="Tea House"),
        "mall": mall,
    }


def make_warning(app, author, *, publish=True, merchants=(), **values):
    """Write (and publish) a warning through the service; return its id."""
    with app.app_context():
        actor = db.session.get(User, author.id)
        warning = services.create_warning(
            {
                "title": values.pop("title", "Leaking kettles"),
                "body": values.pop("body", BODY),
                "category": values.pop("category", "quality_defect"),
                "merchant_ids": [m.id for m in merchants],
            },
            actor=actor,
            now=clock.now_utc(),
            publish=publish,
        )
        db.session.commit()
        return warning.id


def _text(response) -> str:
    return response.get_data(as_text=True)


def _ids(response, attr="data-warning-id") -> list[int]:
    return [
        int(i)
        for i in re.findall(
            rf'data-testid="warning-item" {attr}="(\d+)"', _text(response)
        )
    ]


def _audit(app, warning_id) -> list[str]:
    with app.app_context():
        return list(
            db.session.scalars(
                db.select(AuditEntry.action)
                .where(
                    AuditEntry.object_type == "warning",
                    AuditEntry.object_id == warning_id,
                )
                .order_by(AuditEntry.id)
            )
        )


# The regulators' editor ----------------------------------------------------


def test_a_regulator_writes_previews_publishes_and_withdraws(app, client, auth, people):
    auth.login(people["regulator"])
    form = client.get("/supervision/warnings/new")
    assert form.status_code == 200
    assert 'data-testid="warning-form"' in _text(form)

    saved = client.post(
        "/supervision/warnings/new",
        data={
            "title": "Leaking kettles",
            "category": "quality_defect",
            "body": BODY,
            "merchant_ids": [str(people["shop"].id), str(people["tea"].id)],
            "op": "save",
        },
    )
    assert saved.status_code == 303
    warning_id = int(saved.headers["Location"].rsplit("/", 1)[1])

    # The preview is the public rendering; the draft is nowhere public.
    preview = client.get(f"/supervision/warnings/{warning_id}")
    page = _text(preview)
    assert 'data-status="draft"' in page
    assert 'data-testid="warning-preview"' in page and "Leaking kettles" in page
    assert "<p>Kettles of this batch leak.</p><p>Keep your receipt" in page
    assert f'href="/credit/merchants/{people["shop"].id}"' in page
    auth.logout()
    assert client.get(f"/warnings/{warning_id}").status_code == 404
    assert _ids(client.get("/warnings/")) == []
    assert "merchant-warnings" not in _text(
        client.get(f"/credit/merchants/{people['shop'].id}")
    )

    auth.login(people["other_regulator"])
    published = client.post(f"/supervision/warnings/{warning_id}/publish")
    assert published.status_code == 303
    assert 'data-status="published"' in _text(client.get(published.headers["Location"]))
    auth.logout()

    # Public: the list, the page (merchants link to their credit pages), the
    # credit pages of the merchants named.
    assert _ids(client.get("/warnings/")) == [warning_id]
    public = client.get(f"/warnings/{warning_id}")
    assert public.status_code == 200
    assert f'href="/credit/merchants/{people["tea"].id}"' in _text(public)
    credit = _text(client.get(f"/credit/merchants/{people['shop'].id}"))
    assert 'data-testid="merchant-warnings"' in credit
    assert f'href="/warnings/{warning_id}"' in credit
    assert "merchant-warnings" not in _text(
        client.get(f"/credit/merchants/{people['mall'].id}")
    )

    auth.login(people["regulator"])
    refused = client.post(
        f"/supervision/warnings/{warning_id}/withdraw", data={"reason": " "}
    )
    assert refused.status_code == 422
    assert "Give the reason for the withdrawal." in _text(refused)
    withdrawn = client.post(
        f"/supervision/warnings/{warning_id}/withdraw",
        data={"reason": "The shop recalled the batch."},
    )
    assert withdrawn.status_code == 303
    record = _text(client.get(f"/supervision/warnings/{warning_id}"))
    assert 'data-status="withdrawn"' in record
    assert "The shop recalled the batch." in record
    auth.logout()

    # Off the public site; its address says it was withdrawn (410), no text.
    assert _ids(client.get("/warnings/")) == []
    gone = client.get(f"/warnings/{warning_id}")
    assert gone.status_code == 410
    assert "Kettles of this batch" not in _text(gone)
    assert "recalled" not in _text(gone)
    assert "merchant-warnings" not in _text(
        client.get(f"/credit/merchants/{people['shop'].id}")
    )
    assert _audit(app, warning_id) == [
        "warning.create",
        "warning.publish",
        "warning.withdraw",
    ]
    with app.app_context():
        warning = db.session.get(ConsumerWarning, warning_id)
        assert warning.author_id == people["regulator"].id
        assert warning.published_by_id == people["other_regulator"].id
        assert warning.withdrawn_by_id == people["regulator"].id
        assert warning.published_at == MONDAY


def test_a_draft_is_changed_and_a_published_warning_is_not(app, client, auth, people):
    draft = make_warning(
        app, people["regulator"], publish=False, merchants=[people["shop"]]
    )
    auth.login(people["regulator"])
    form = client.get(f"/supervision/warnings/{draft}/edit")
    assert 'value="Leaking kettles"' in _text(form)
    assert f'name="merchant_ids" value="{people["shop"].id}" checked' in _text(form)
    changed = client.post(
        f"/supervision/warnings/{draft}/edit",
        data={
            "title": "Leaking kettles (update)",
            "category": "general",
            "body": "New text.",
            "merchant_ids": [],
            "op": "save",
        },
    )
    assert changed.status_code == 303
    with app.app_context():
        warning = db.session.get(ConsumerWarning, draft)
        assert (warning.title, warning.category, warning.merchants) == (
            "Leaking kettles (update)",
            "general",
            [],
        )
        entry = db.session.scalar(
            db.select(AuditEntry).where(AuditEntry.action == "warning.update")
        )
        assert entry.details["changed"] == ["title", "body", "category", "merchant_ids"]
        assert entry.details["before"]["merchant_ids"] == [people["shop"].id]

    published = make_warning(app, people["regulator"])
    again = client.get(f"/supervision/warnings/{published}/edit")
    assert again.status_code == 303
    refused = client.post(
        f"/supervision/warnings/{published}/edit",
        data={"title": "Other", "category": "general", "body": "x", "op": "save"},
    )
    assert refused.status_code == 303
    with app.app_context():
        assert db.session.get(ConsumerWarning, published).title == "Leaking kettles"
        with pytest.raises(Exception) as caught:
            services.update_warning(
                db.session.get(ConsumerWarning, published),
                {"title": "x", "body": "y", "category": "general"},
                actor=db.session.get(User, people["regulator"].id),
                now=clock.now_utc(),
            )
        assert getattr(caught.value, "code", None) == "not_a_draft"
    # Publishing twice is refused; the feed got one row.
    twice = client.post(
        f"/supervision/warnings/{published}/publish",
        headers={"Referer": f"/supervision/warnings/{published}"},
    )
    assert twice.status_code == 302
    assert _audit(app, published).count("warning.publish") == 1


def test_a_draft_can_be_deleted_but_not_a_published_warning(app, client, auth, people):
    draft = make_warning(app, people["regulator"], publish=False, title="Never mind")
    published = make_warning(app, people["regulator"])
    auth.login(people["regulator"])
    assert client.post(f"/supervision/warnings/{draft}/discard").status_code == 303
    with app.app_context():
        assert db.session.get(ConsumerWarning, draft) is None
        entry = db.session.scalar(
            db.select(AuditEntry).where(AuditEntry.action == "warning.discard")
        )
        assert entry.details["title"] == "Never mind"
    assert client.post(f"/supervision/warnings/{published}/discard").status_code == 409
    # Only a published warning is withdrawn: from the page the regulator came
    # from, the refusal is a message on that page.
    draft = make_warning(app, people["regulator"], publish=False)
    refused = client.post(
        f"/supervision/warnings/{draft}/withdraw",
        data={"reason": "Why not."},
        headers={"Referer": f"/supervision/warnings/{draft}"},
    )
    assert refused.status_code == 302
    page = client.get(refused.headers["Location"])
    assert "Only a published warning can be withdrawn." in _text(page)
    assert 'data-status="draft"' in _text(page)
    assert client.post("/supervision/warnings/999999/discard").status_code == 404


def test_the_merchant_picker_searches_the_registry_without_javascript(
    app, client, auth, people
):
    auth.login(people["regulator"])
    found = client.post(
        "/supervision/warnings/new",
        data={
            "title": "Typed so far",
            "category": "delivery",
            "body": "Some text.",
            "merchant_ids": [str(people["tea"].id)],
            "merchant_query": "kettle",
            "op": "find",
        },
    )
    page = _text(found)
    assert found.status_code == 200
    # Nothing was saved; the typed fields and the ticked merchant stay.
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(ConsumerWarning.id))) == 0
    assert 'value="Typed so far"' in page
    assert f'name="merchant_ids" value="{people["tea"].id}" checked' in page
    assert re.findall(
        r'name="merchant_ids" value="(\d+)" data-testid="merchant-match"', page
    ) == [str(people["shop"].id)]
    nothing = client.post(
        "/supervision/warnings/new",
        data={
            "title": "",
            "category": "general",
            "body": "",
            "merchant_query": "zzz",
            "op": "find",
        },
    )
    assert 'data-testid="merchant-no-match"' in _text(nothing)


@pytest.mark.parametrize(
    ("data", "messages"),
    [
        (
            {"title": "", "category": "general", "body": ""},
            ["Enter a title.", "Enter the text of the warning."],
        ),
        (
            {"title": "x" * 201, "category": "nonsense", "body": "ok"},
            ["At most 200 characters.", "Choose a category from the list."],
        ),
        (
            {
                "title": "T",
                "category": "general",
                "body": "ok",
                "merchant_ids": ["999999"],
            },
            ["No registered merchant has the number 999999."],
        ),
        (
            {
                "title": "T",
                "category": "general",
                "body": "ok",
                "merchant_ids": ["abc"],
            },
            [],
        ),
    ],
)
def test_bad_input_shows_the_form_again_with_its_errors(
    app, client, auth, people, data, messages
):
    auth.login(people["regulator"])
    response = client.post("/supervision/warnings/new", data={**data, "op": "save"})
    assert response.status_code == 422
    errors = re.findall(r'class="error" role="alert">([^<]*)<', _text(response))
    assert errors
    for message in messages:
        assert message in errors
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(ConsumerWarning.id))) == 0


def test_who_reaches_the_editor(app, client, auth, people):
    draft = make_warning(app, people["regulator"], publish=False)
    assert client.get("/supervision/warnings").status_code == 302  # to sign in
    for who in ("consumer", "mediator"):
        auth.login(people[who])
        assert client.get("/supervision/warnings").status_code == 403
        assert client.get(f"/supervision/warnings/{draft}").status_code == 403
        assert client.post(f"/supervision/warnings/{draft}/publish").status_code == 403
        auth.logout()
    auth.login(people["regulator"])
    listing = client.get("/supervision/warnings")
    assert f'data-warning-id="{draft}" data-status="draft"' in _text(listing)
    assert client.get("/supervision/warnings?status=published").status_code == 200
    assert client.get("/supervision/warnings/2147483647").status_code == 404
    assert client.get("/supervision/warnings?page=x").status_code == 400


# Public pages -------------------------------------------------------------------


def test_the_public_list_is_newest_first_by_category_and_paginated(app, client, people):
    app.config["PAGE_SIZE"] = 2
    ids = []
    for n, category in enumerate(("delivery", "quality_defect", "delivery")):
        ids.append(
            make_warning(app, people["regulator"], category=category, title=f"W{n}")
        )
        clock.advance(timedelta(hours=1))
    make_warning(app, people["regulator"], publish=False, title="Draft")

    first = client.get("/warnings/?lang=en")
    assert _ids(first) == [ids[2], ids[1]]
    assert "Page 1 of 2" in _text(first)
    assert _ids(client.get("/warnings/?page=2")) == [ids[0]]
    assert _ids(client.get("/warnings/?category=delivery")) == [ids[2], ids[0]]
    # An unknown category shows everything (a link from an older page).
    assert _ids(client.get("/warnings/?category=nonsense")) == [ids[2], ids[1]]
    assert client.get("/warnings/?page=0").status_code == 400


def test_the_list_filters_by_merchant_from_the_credit_page(app, client, people):
    about_shop = make_warning(app, people["regulator"], merchants=[people["shop"]])
    make_warning(app, people["regulator"], merchants=[people["tea"]])
    response = client.get(f"/warnings/?merchant_id={people['shop'].id}")
    assert _ids(response) == [about_shop]
    assert "Kettle Shop" in _text(response)


def test_the_credit_page_shows_the_newest_five_and_links_to_all(app, client, people):
    ids = []
    for n in range(6):
        ids.append(
            make_warning(
                app, people["regulator"], merchants=[people["shop"]], title=f"W{n}"
            )
        )
        clock.advance(timedelta(minutes=5))
    page = _text(client.get(f"/credit/merchants/{people['shop'].id}"))
    box = page.split('data-testid="merchant-warnings"')[1].split("</section>")[0]
    assert [int(i) for i in re.findall(r'data-warning-id="(\d+)"', box)] == ids[:0:-1]
    assert f"/warnings/?merchant_id={people['shop'].id}" in box


def test_text_is_escaped_everywhere(app, client, auth, people):
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    warning_id = make_warning(
        app,
        people["regulator"],
        title=evil,
        body=f"First {evil}\n\nSecond",
        merchants=[people["shop"]],
    )
    auth.login(people["regulator"])
    pages = [
        client.get("/warnings/"),
        client.get(f"/warnings/{warning_id}"),
        client.get(f"/credit/merchants/{people['shop'].id}"),
        client.get("/supervision/warnings"),
        client.get(f"/supervision/warnings/{warning_id}"),
        client.get("/supervision/audit"),
    ]
    for response in pages:
        html = _text(response)
        assert response.status_code == 200
        assert "<script>alert" not in html
        assert "<img src=x" not in html
        assert "&lt;script&gt;alert(" in html


@pytest.mark.parametrize(
    ("lang", "heading"), [("en", "Consumer warnings"), ("zh_CN", "消费警示")]
)
def test_pages_in_both_languages_with_the_text_as_written(
    app, client, people, lang, heading
):
    warning_id = make_warning(
        app, people["regulator"], title="电热水壶漏水警示", body="请保留购物凭证。"
    )
    listing = _text(client.get(f"/warnings/?lang={lang}"))
    assert f"<h1>{heading}</h1>" in listing
    page = _text(client.get(f"/warnings/{warning_id}?lang={lang}"))
    assert "电热水壶漏水警示" in page and "请保留购物凭证。" in page
    label = "Quality defect" if lang == "en" else "质量问题"
    assert label in page
