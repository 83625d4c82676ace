"""Two browsers through nginx, on different server processes (issue #8, item 5).

The cluster of tests/test_cluster.py (nginx with cookie stickiness, two gunicorn
processes, the scheduler, PostgreSQL and Redis) runs for this module on a
PostgreSQL database of its own. It needs PostgreSQL whatever the suite's
database: it runs in the SQLite pass of ``.ci/run``, with the other browser
tests, on the server of ``TEST_DATABASE_URL`` when that is PostgreSQL and on
127.0.0.1:5432 otherwise.

The consumer's browser lands where nginx puts it; the mediator's is pinned to
the other process by its sticky cookie. They talk in the case page's chat; then
the consumer's process is killed: the page reconnects through nginx to the
other process, a message typed meanwhile is delivered once, and what the
mediator said during the outage arrives.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from tests.browser.test_chat import TIMEOUT_MS, Person
from tests.test_cluster import TestCluster, queued_case_id, running_cluster

pytestmark = pytest.mark.browser

CONSUMER = "consumer2@example.com"
MEDIATOR = "mediator1@example.com"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, browser_type_launch_args) -> Iterator[TestCluster]:
    """The cluster (only once Chromium is known to be there)."""
    with running_cluster(
        tmp_path_factory.mktemp("browser-cluster"),
        prefix="test_cluster_browser",
        CHAT_PRESENCE_TTL_SECONDS="3",
    ) as running:
        yield running


def _served_by(person: Person, cluster: TestCluster) -> str:
    answer = person.page.request.get(f"{cluster.url}/health")
    assert answer.ok
    return answer.headers["x-served-by"]


def test_two_browsers_on_two_processes_talk_through_nginx(cluster, new_context):
    expect.set_options(timeout=TIMEOUT_MS)
    case_id = queued_case_id(cluster)

    people = {}
    for key in ("consumer", "mediator"):
        context = new_context(locale="zh-CN", timezone_id="Asia/Shanghai")
        context.set_default_timeout(TIMEOUT_MS)
        people[key] = Person(key, context, context.new_page(), cluster.url)
    consumer, mediator = people["consumer"], people["mediator"]

    # The consumer's browser lands where nginx sends a first visit ...
    first = consumer.page.goto(f"{cluster.url}/login")
    home = first.headers["x-served-by"]
    other = "app2" if home == "app1" else "app1"
    # ... and the mediator's carries a cookie naming the other process.
    mediator.context.add_cookies(
        [{"name": "odr_node", "value": other, "url": cluster.url}]
    )
    consumer.sign_in(CONSUMER)
    mediator.sign_in(MEDIATOR)
    assert (_served_by(consumer, cluster), _served_by(mediator, cluster)) == (
        home,
        other,
    )

    mediator.open_case(case_id)
    mediator.page.get_by_test_id("action-form-take").locator(
        "[data-action=take]"
    ).click()
    expect(mediator.page.get_by_test_id("case-mediator")).to_be_visible()
    consumer.open_case(case_id)
    for person in (consumer, mediator):
        person.expect_online()

    consumer.say("joint", "经由两台服务器：水壶漏水。")
    mediator.expect_delivered_once("joint", "水壶漏水")
    consumer.expect_delivered_once("joint", "水壶漏水")
    mediator.say("joint", "收到，我是调解员。")
    consumer.expect_delivered_once("joint", "我是调解员")
    expect(mediator.room("joint").get_by_test_id("chat-presence")).to_contain_text(
        "Chris"
    )
    assert any("transport=websocket" in url for url in consumer.websockets)

    # The consumer's process dies. The page reconnects through nginx to the
    # other process; a message typed meanwhile waits and goes out once.
    cluster.cluster.kill_node(home)
    mediator.say("joint", "服务器故障期间的消息。")
    consumer.say("joint", "我这边刚才断线了吗？")
    consumer.expect_online()
    for person in (consumer, mediator):
        person.expect_delivered_once("joint", "服务器故障期间的消息")
        person.expect_delivered_once("joint", "我这边刚才断线了吗")
    assert _served_by(consumer, cluster) == other

    problems = [f"{p.name}: {x}" for p in people.values() for x in p.problems]
    assert problems == [], problems
