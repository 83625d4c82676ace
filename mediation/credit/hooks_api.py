"""The credit feed and the webhook subscriptions in the JSON API.

``GET /api/v1/credit/feed`` (anyone, rate limited; JSON or CSV, ETag) and
``/api/v1/webhooks`` (platform staff and regulators). Thin adapters: parse,
check access, call one function of :mod:`mediation.credit.feed` or
:mod:`mediation.credit.webhooks`, commit, serialize. The YAML after ``---`` in
each docstring is the endpoint's OpenAPI operation (see :mod:`mediation.api.spec`).
"""

from __future__ import annotations

import hashlib
from typing import Any

from flask import Response, current_app, jsonify, request, url_for
from flask_babel import gettext
from marshmallow import EXCLUDE, Schema, fields, validate

from mediation import clock
from mediation.api import bp
from mediation.api.common import (
    INT_MAX,
    load,
    page_arg,
    paginate,
    whole_number_arg,
)
from mediation.auth import permissions
from mediation.credit import feed, webhooks
from mediation.errors import BadRequest
from mediation.extensions import db, limiter
from mediation.schemas import BaseSchema

HOOK = "<int(max=2147483647):subscription_id>"
#: Requests per client address to the feed (``FEED_RATE_LIMIT``).
DEFAULT_FEED_RATE_LIMIT = "60 per minute"


# Schemas --------------------------------------------------------------------

STANDING = (
    "The standing before or after the change: `score` (one decimal), `grade` "
    "(A-D), `listed` (dishonesty list), `trusted` (trusted-merchant mark). Empty "
    "before a merchant's first standing."
)


class FeedMerchantSchema(Schema):
    """The merchant a feed item is about."""

    id = fields.Integer()
    name = fields.String()
    uscc = fields.String(metadata={"description": "Unified social credit code."})


class CreditFeedItemSchema(Schema):
    """One change of a merchant's standing, or a consumer warning naming it."""

    id = fields.Integer(metadata={"description": "The cursor: ask `since` this id."})
    merchant = fields.Nested(
        FeedMerchantSchema,
        allow_none=True,
        metadata={"description": "null only for a warning that names no merchant."},
    )
    kind = fields.String(
        metadata={
            "description": "`grade`, `listed`, `delisted`, `repaired`, `trusted` "
            "or `untrusted`; `warning` (a consumer warning published: one item "
            "per merchant it names, or one without a merchant) or "
            "`warning_withdrawn`. For the warning kinds `new` holds `warning_id`, "
            "`title`, `category`, `status`, `merchant_ids`, `published_at` (and "
            "`withdrawn_at`): read the warning at `/api/v1/warnings/{warning_id}`."
        }
    )
    old = fields.Dict(metadata={"description": STANDING})
    new = fields.Dict(metadata={"description": STANDING})
    at = fields.String(metadata={"description": "When (ISO 8601, UTC)."})


class CreditFeedPageSchema(Schema):
    """One page of the credit feed."""

    items = fields.List(fields.Nested(CreditFeedItemSchema))
    next = fields.Integer(
        allow_none=True,
        metadata={
            "description": "`since` of the next page when more items are available "
            "now; null when caught up (poll again later from the last item's id)."
        },
    )


class SubscribeWebhookSchema(BaseSchema):
    """A new webhook subscription."""

    url = fields.String(
        required=True,
        validate=validate.Length(min=1, max=webhooks.URL_MAX),
        metadata={"description": "http or https address that receives the POSTs."},
    )
    events = fields.List(
        fields.String(validate=validate.OneOf(webhooks.EVENTS)),
        required=True,
        validate=validate.Length(min=1, max=len(webhooks.EVENTS)),
        metadata={"description": "Any of: " + ", ".join(webhooks.EVENTS) + "."},
    )


class WebhookSubscriptionSchema(Schema):
    """A webhook subscription (its secret is shown only when it is created)."""

    id = fields.Integer()
    url = fields.String()
    events = fields.List(fields.String())
    merchant_id = fields.Integer(
        allow_none=True,
        metadata={
            "description": "Scope: the platform whose own and whose shops' events "
            "it receives; null for a regulator's (every event)."
        },
    )
    active = fields.Boolean()
    created_at = fields.DateTime()


class NewWebhookSubscriptionSchema(WebhookSubscriptionSchema):
    """A subscription just created, with its signing secret (shown once)."""

    secret = fields.String(
        metadata={
            "description": "HMAC-SHA256 key: `X-Webhook-Signature` is `sha256=` and "
            "the hex HMAC of `<X-Webhook-Timestamp>.<body>`."
        }
    )


class WebhookSubscriptionListSchema(Schema):
    """The caller's subscriptions."""

    items = fields.List(fields.Nested(WebhookSubscriptionSchema))


class WebhookAttemptSchema(Schema):
    """One attempt of a delivery."""

    number = fields.Integer()
    at = fields.DateTime()
    status_code = fields.Integer(
        allow_none=True, metadata={"description": "null: no answer came."}
    )
    error = fields.String(allow_none=True)
    duration_ms = fields.Integer()


class WebhookDeliverySchema(Schema):
    """One event sent (or to be sent) to a subscription, with its attempts."""

    id = fields.Integer(metadata={"description": "Also the `id` of the body."})
    event = fields.String()
    status = fields.String(
        metadata={"description": "`pending`, `delivered`, `failed`."}
    )
    attempts = fields.Integer()
    next_attempt_at = fields.DateTime(allow_none=True)
    last_status_code = fields.Integer(allow_none=True)
    last_error = fields.String(allow_none=True)
    created_at = fields.DateTime()
    delivered_at = fields.DateTime(allow_none=True)
    payload = fields.Dict(metadata={"description": "The body's `data`."})
    log = fields.List(fields.Nested(WebhookAttemptSchema))


class WebhookDeliveryPageSchema(Schema):
    """One page of a subscription's delivery log, newest first."""

    items = fields.List(fields.Nested(WebhookDeliverySchema))
    page = fields.Integer()
    per_page = fields.Integer()
    total = fields.Integer()
    pages = fields.Integer()


class DeliveryArgsSchema(BaseSchema):
    """Query arguments of the delivery log (``page`` is read separately)."""

    class Meta:
        unknown = EXCLUDE

    status = fields.String(validate=validate.OneOf(("pending", "delivered", "failed")))


# The feed -------------------------------------------------------------------


def _wants_csv() -> bool:
    asked = request.args.get("format")
    if asked not in (None, "", "json", "csv"):
        raise BadRequest(gettext("format must be json or csv."), code="bad_format")
    if asked:
        return asked == "csv"
    best = request.accept_mimetypes.best_match(["application/json", "text/csv"])
    return best == "text/csv"


def _feed_rate_limit() -> str:
    return current_app.config.get("FEED_RATE_LIMIT") or DEFAULT_FEED_RATE_LIMIT


@bp.get("/credit/feed")
@limiter.limit(_feed_rate_limit)
def credit_feed():
    """Read the changes of merchants' credit standings since a cursor.
    ---
    get:
      tags: [credit]
      summary: Read the credit change feed
      description: >-
        Anyone may read; requests are rate limited per client address
        (FEED_RATE_LIMIT, 429 beyond). Items come in id order after `since`
        (0 or absent: from the start). The id is the cursor and the feed is
        cursor-stable: an item never appears behind a cursor already handed out
        (items of transactions still running are held back until they end).
        `next` is the `since` of the next page when more items are available
        now, null once caught up: keep the last item's id and ask again later.
        The answer carries a strong `ETag`; send it back in `If-None-Match`
        and an unchanged page answers 304. `Accept: text/csv` (or
        `format=csv`) gives CSV: UTF-8 with a byte-order mark (Excel reads
        Chinese names correctly; read it with `utf-8-sig`), a header row,
        `merchant`, `old` and `new` spread over columns, then
        `warning_id`, `warning_title`, `warning_category`, `warning_status`
        (filled for the consumer warnings' items); `Link: rel="next"`
        names the next page. Besides the changes of standings the feed
        carries consumer warnings (kinds `warning`, `warning_withdrawn`).
      security: []
      parameters:
        - in: query
          name: since
          schema: {type: integer, minimum: 0, default: 0}
        - in: query
          name: limit
          schema: {type: integer, minimum: 1, maximum: 1000, default: 100}
        - in: query
          name: format
          schema: {type: string, enum: [json, csv]}
      responses:
        200:
          description: a page of the feed
          content:
            application/json: {schema: CreditFeedPageSchema}
            text/csv: {schema: {type: string}}
        304: {description: the page has not changed (If-None-Match)}
        400: {$ref: "#/components/responses/Error"}
        429: {$ref: "#/components/responses/Error"}
    """
    since = whole_number_arg("since", 0, 0, INT_MAX, "bad_cursor")
    limit = whole_number_arg(
        "limit", feed.DEFAULT_LIMIT, 1, feed.MAX_LIMIT, "bad_limit"
    )
    as_csv = _wants_csv()
    changes, next_cursor = feed.changes_since(since, limit)
    items = [feed.feed_item(change) for change in changes]
    if as_csv:
        response = Response(feed.to_csv(items), mimetype="text/csv")
        response.headers["Content-Disposition"] = (
            f'attachment; filename="credit-feed-{since}.csv"'
        )
    else:
        response = jsonify(
            CreditFeedPageSchema().dump({"items": items, "next": next_cursor})
        )
    if next_cursor is not None:
        args: dict[str, Any] = {"since": next_cursor, "limit": limit}
        if request.args.get("format"):
            args["format"] = request.args["format"]
        response.headers["Link"] = f'<{url_for("api.credit_feed", **args)}>; rel="next"'
    response.headers["Cache-Control"] = "no-cache"
    response.vary.add("Accept")
    response.set_etag(hashlib.sha256(response.get_data()).hexdigest()[:40])
    return response.make_conditional(request)


# Webhooks ------------------------------------------------------------------


@bp.post("/webhooks")
def webhook_create():
    """Subscribe a URL to credit and case events.
    ---
    post:
      tags: [webhooks]
      summary: Subscribe to webhooks
      description: >-
        Staff of a platform operator (the platform's own and its shops' events)
        and regulators (every event); anyone else 403. Events:
        `credit.grade`, `credit.listed`, `credit.delisted`, `credit.repaired`
        (a change of a merchant's standing: `data.change` is the feed item),
        `case.filed` (a case filed against a shop: `data.case`, without the
        consumer), `warning.published` and `warning.withdrawn` (a consumer
        warning: `data.warning` with `id`, `title`, `body` when published,
        `category`, `status`, `merchants`, `published_at`, `withdrawn_at`,
        `url`; a platform receives those naming it or one of its shops).
        Each delivery is a POST of
        `{"id", "event", "created_at", "data"}` with the headers
        `X-Webhook-Id`, `X-Webhook-Event`, `X-Webhook-Timestamp` (Unix seconds)
        and `X-Webhook-Signature: sha256=<hex HMAC-SHA256 of
        "<timestamp>.<body>" with the secret>`. A 2xx answer delivers; anything
        else is retried after 1 min, 5 min, 30 min, 2 h and 12 h, then the
        delivery fails. Deliveries are at least once: deduplicate on `id`. The
        secret is in this answer only.
      requestBody:
        required: true
        content: {application/json: {schema: SubscribeWebhookSchema}}
      responses:
        201:
          description: the subscription, with its secret
          content: {application/json: {schema: NewWebhookSubscriptionSchema}}
        400: {$ref: "#/components/responses/Error"}
        401: {$ref: "#/components/responses/Error"}
        403: {$ref: "#/components/responses/Error"}
        409: {$ref: "#/components/responses/Error"}
        422: {$ref: "#/components/responses/Error"}
    """
    user = permissions.require_user()
    webhooks.subscriber_scope(user)
    data = load(SubscribeWebhookSchema())
    subscription, secret = webhooks.subscribe(
        user, url=data["url"], events=data["events"], now=clock.now_utc()
    )
    db.session.commit()
    body = {**WebhookSubscriptionSchema().dump(subscription), "secret": secret}
    return body, 201, {"Cache-Control": "no-store"}


@bp.get("/webhooks")
def webhook_list():
    """List the caller's webhook subscriptions.
    ---
    get:
      tags: [webhooks]
      summary: List own webhook subscriptions
      responses:
        200:
          description: the subscriptions (without secrets)
          content: {application/json: {schema: WebhookSubscriptionListSchema}}
        401: {$ref: "#/components/responses/Error"}
        403: {$ref: "#/components/responses/Error"}
    """
    user = permissions.require_user()
    webhooks.subscriber_scope(user)
    return WebhookSubscriptionListSchema().dump(
        {"items": webhooks.subscriptions_of(user)}
    )


@bp.delete(f"/webhooks/{HOOK}")
def webhook_delete(subscription_id: int):
    """Delete one of the caller's webhook subscriptions.
    ---
    delete:
      tags: [webhooks]
      summary: Delete a webhook subscription
      description: Nothing more is sent; pending deliveries fail.
      parameters:
        - {in: path, name: subscription_id, required: true, schema: {type: integer}}
      responses:
        204: {description: deleted}
        401: {$ref: "#/components/responses/Error"}
        403: {$ref: "#/components/responses/Error"}
        404: {$ref: "#/components/responses/Error"}
    """
    user = permissions.require_user()
    subscription = webhooks.get_subscription_for(user, subscription_id)
    webhooks.unsubscribe(subscription, now=clock.now_utc())
    db.session.commit()
    return "", 204


@bp.get(f"/webhooks/{HOOK}/deliveries")
def webhook_deliveries(subscription_id: int):
    """Read the delivery log of one of the caller's subscriptions.
    ---
    get:
      tags: [webhooks]
      summary: Read a webhook delivery log
      description: >-
        Newest first, each delivery with its status, the number of attempts,
        the last answer (status code or error), when it is tried next, and the
        log of every attempt.
      parameters:
        - {in: path, name: subscription_id, required: true, schema: {type: integer}}
        - in: query
          name: status
          schema: {type: string, enum: [pending, delivered, failed]}
        - {in: query, name: page, schema: {type: integer, minimum: 1, default: 1}}
      responses:
        200:
          description: a page of deliveries
          content: {application/json: {schema: WebhookDeliveryPageSchema}}
        400: {$ref: "#/components/responses/Error"}
        401: {$ref: "#/components/responses/Error"}
        403: {$ref: "#/components/responses/Error"}
        404: {$ref: "#/components/responses/Error"}
        422: {$ref: "#/components/responses/Error"}
    """
    user = permissions.require_user()
    subscription = webhooks.get_subscription_for(user, subscription_id)
    page = page_arg()
    args = DeliveryArgsSchema().load_or_raise(request.args.to_dict())
    result = paginate(webhooks.deliveries_of(subscription, args.get("status")), page)
    logs = webhooks.attempts_of([d.id for d in result["items"]])
    delivery_out = WebhookDeliverySchema(exclude=("log",))
    log_out = WebhookAttemptSchema(many=True)
    result["items"] = [
        {**delivery_out.dump(d), "log": log_out.dump(logs[d.id])}
        for d in result["items"]
    ]
    return jsonify(result)
