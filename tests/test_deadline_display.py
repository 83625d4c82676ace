"""Deadline display: who must act, time left, the colour, and the overdue page."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest

from mediation import clock
from mediation.cases import lifecycle as lc
from mediation.cases.models import Case
from mediation.extensions import db
from mediation.sla import display
from mediation.sla.display import deadline_view
from tests.conftest import PASSWORD

NOW = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
#: Monday 2 March 2026, 10:00 in Shanghai.
MONDAY = NOW
TZ = ZoneInfo("Asia/Shanghai")
#: Every stage lasts 100 hours: shares of time left are exact.
HOURS = {stage: (100, "hours") for stage in display.PARTY_OF_STAGE}


def fake_case(status: str = lc.AWAITING_MERCHANT, **kw) -> SimpleNamespace:
    values = {
        "status": status,
        "due_at": NOW + timedelta(hours=50),
        "mediator_id": None,
        "arbitrator_id": None,
        "fulfilment_marked_at": None,
        "paused_at": None,
        "paused_remaining": None,
    }
    values.update(kw)
    return SimpleNamespace(**values)


def view_with_left(hours: float):
    case = fake_case(due_at=NOW + timedelta(hours=hours))
    return deadline_view(case, now=NOW, policy=HOURS, tz=TZ)


# The pure view ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("hours_left", "colour"),
    [(30, "green"), (26, "green"), (25, "amber"), (20, "amber"), (10, "amber")],
)
def test_colour_follows_the_share_of_the_stage_left(hours_left, colour):
    view = view_with_left(hours_left)
    assert view.colour == colour
    assert view.share_left == pytest.approx(hours_left / 100)
    assert view.total_seconds == 100 * 3600


def test_under_ten_percent_left_is_red():
    view = view_with_left(5)
    assert view.colour == "red"
    assert not view.overdue
    assert view.seconds_left == 5 * 3600


def test_overdue_is_red_with_negative_seconds_left():
    view = view_with_left(-0.5)
    assert view.colour == "red"
    assert view.overdue
    assert view.seconds_left == -1800
    assert view.share_left == 0


@pytest.mark.parametrize(
    ("status", "extra", "party"),
    [
        (lc.SUBMITTED, {}, "regulator"),
        (lc.AWAITING_MERCHANT, {}, "merchant"),
        (lc.AWAITING_PLATFORM, {}, "platform"),
        (lc.OFFER_PENDING, {}, "consumer"),
        (lc.IN_MEDIATION, {}, "mediators_queue"),
        (lc.IN_MEDIATION, {"mediator_id": 7}, "mediator"),
        (lc.IN_ARBITRATION, {"mediator_id": 7}, "arbitrators_queue"),
        (lc.IN_ARBITRATION, {"mediator_id": 7, "arbitrator_id": 8}, "arbitrator"),
        (lc.SETTLED, {}, "merchant"),
        (lc.AWARDED, {}, "merchant"),
        (lc.SETTLED, {"fulfilment_marked_at": NOW}, "consumer"),
        (lc.AWARDED, {"fulfilment_marked_at": NOW}, "consumer"),
    ],
)
def test_the_party_who_must_act_comes_from_the_stage(status, extra, party):
    view = deadline_view(fake_case(status, **extra), now=NOW, policy=HOURS, tz=TZ)
    assert view.party == party


@pytest.mark.parametrize("status", sorted(lc.CLOSED_STATUSES))
def test_a_closed_case_has_no_deadline_view(status):
    assert deadline_view(fake_case(status), now=NOW, policy=HOURS, tz=TZ) is None


def test_no_running_deadline_means_no_view():
    case = fake_case(due_at=None)
    assert deadline_view(case, now=NOW, policy=HOURS, tz=TZ) is None


def test_a_paused_clock_shows_the_time_left_when_it_stopped():
    case = fake_case(
        due_at=NOW + timedelta(hours=50),
        paused_at=NOW - timedelta(hours=40),
        paused_remaining=20 * 3600,
    )
    view = deadline_view(case, now=NOW + timedelta(days=30), policy=HOURS, tz=TZ)
    assert view.paused
    assert not view.overdue
    assert view.seconds_left == 20 * 3600
    assert view.colour == "amber"


def test_working_day_stage_runs_from_the_start_of_its_first_day():
    # Filed Monday 10:00 local: 3 working days end Thursday 23:59:59.
    due = datetime(2026, 3, 5, 23, 59, 59, tzinfo=TZ)
    length = display.stage_length(
        "awaiting_merchant", due, {"awaiting_merchant": (3, "working_days")}, TZ
    )
    assert due - length == datetime(2026, 3, 2, tzinfo=TZ)


def test_started_at_gives_the_stage_length():
    case = fake_case(due_at=NOW + timedelta(hours=10))
    view = deadline_view(
        case, now=NOW, policy=HOURS, tz=TZ, started_at=NOW - timedelta(hours=10)
    )
    assert view.total_seconds == 20 * 3600
    assert view.colour == "green"


def test_remaining_text_counts_days_and_overdue(ctx):
    assert display.remaining_text(view_with_left(51 + 1 / 60)) == "2 days 03:01:00"
    assert display.remaining_text(view_with_left(25)) == "1 day 01:00:00"
    assert display.remaining_text(view_with_left(0.5)) == "00:30:00"
    assert display.remaining_text(view_with_left(-5 / 60)) == "Overdue by 00:05:00"


# The pages -------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _monday():
    clock.freeze(MONDAY)
    yield
    clock.unfreeze()


def login(client, user) -> None:
    response = client.post("/login", data={"email": user.email, "password": PASSWORD})
    assert response.status_code in (302, 303), response.status_code


@pytest.fixture()
def parties(make_user, make_merchant):
    shop = make_merchant(name="Kettle Shop")
    return {
        "consumer": make_user("consumer", name="Zhang San"),
        "merchant": make_user("merchant", merchant_id=shop.id, name="Kettle Staff"),
        "regulator": make_user("regulator", name="Wang Regulator"),
        "shop": shop,
    }


def countdown(html: str) -> re.Match:
    match = re.search(r'<span class="countdown ([^"]+)" data-testid="countdown"', html)
    assert match, "no countdown on the page"
    tag = html[match.start() : html.index(">", match.start())]
    return match.group(1), tag


@pytest.mark.parametrize(
    ("local_time", "colour"),
    [
        # Due Thursday 5 March 23:59:59; the stage began Monday 00:00 (96 h).
        (datetime(2026, 3, 2, 10, 0), "green"),
        (datetime(2026, 3, 5, 6, 0), "amber"),  # 18 h left: 18.8 %
        (datetime(2026, 3, 5, 20, 0), "red"),  # 4 h left
        (datetime(2026, 3, 6, 9, 0), "red"),  # overdue
    ],
)
def test_case_page_shows_the_countdown_in_its_colour(
    client, parties, make_case, local_time, colour
):
    case_id = make_case(parties["consumer"], parties["shop"])
    clock.freeze(local_time.replace(tzinfo=TZ))
    login(client, parties["merchant"])
    html = client.get(f"/cases/{case_id}?lang=en").get_data(as_text=True)
    classes, tag = countdown(html)
    assert classes == f"deadline-{colour}"
    assert f'data-colour="{colour}"' in tag
    assert 'data-due="2026-03-05T15:59:59+00:00"' in tag
    assert 'data-total="345599"' in tag
    assert 'data-testid="deadline-party">Merchant<' in html
    assert 'data-testid="case-deadline"' in html  # the existing deadline stays
    assert f'data-case-id="{case_id}"' in html
    assert f'data-url="/api/v1/cases/{case_id}"' in html
    assert "js/countdown.js" in html


def test_lists_show_the_countdown(client, parties, make_case):
    make_case(parties["consumer"], parties["shop"])
    login(client, parties["merchant"])
    for path in ("/cases", "/"):
        html = client.get(path).get_data(as_text=True)
        assert countdown(html)[0] == "deadline-green", path


def test_overdue_page_lists_overdue_cases_by_stage(client, parties, make_case):
    late = make_case(parties["consumer"], parties["shop"], order_ref="LATE-1")
    clock.freeze(MONDAY + timedelta(days=3, hours=1))  # Thursday 11:00
    soon = make_case(parties["consumer"], parties["shop"], order_ref="SOON-1")
    clock.freeze(datetime(2026, 3, 6, 9, 0, tzinfo=TZ))  # Friday: the first is late
    with client.application.app_context():
        late_ref = db.session.get(Case, late).reference
        db.session.get(Case, soon).due_at = datetime(2026, 3, 6, 20, 0, tzinfo=TZ)
        db.session.commit()
    login(client, parties["regulator"])
    response = client.get("/cases/overdue?lang=en")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'data-stage="awaiting_merchant"' in html
    assert f'data-reference="{late_ref}"' in html
    assert f'data-case-id="{soon}"' in html
    assert 'data-testid="overdue-count" data-count="1"' in html
    assert 'data-testid="soon-count" data-count="1"' in html
    assert "Kettle Shop" in html


def test_overdue_page_is_for_regulators_only(client, parties):
    anonymous = client.get("/cases/overdue")
    assert anonymous.status_code == 302
    assert "/login" in anonymous.headers["Location"]
    login(client, parties["consumer"])
    assert client.get("/cases/overdue").status_code == 403


def test_overdue_page_warns_of_deadlines_in_a_year_without_holiday_data(
    app, client, parties, make_case
):
    from mediation.sla.calendar import EXTENSION_KEY, BusinessCalendar

    make_case(parties["consumer"], parties["shop"])
    clock.freeze(datetime(2026, 3, 6, 9, 0, tzinfo=TZ))
    login(client, parties["regulator"])
    html = client.get("/cases/overdue?lang=en").get_data(as_text=True)
    assert 'data-testid="calendar-warning"' not in html
    # A calendar that knows no year (as for a year the official notice is not out).
    app.extensions[EXTENSION_KEY] = BusinessCalendar(known_years=())
    html = client.get("/cases/overdue?lang=en").get_data(as_text=True)
    assert 'data-testid="calendar-warning"' in html
    assert "2026" in html
