"""Consumer warnings: write, publish, withdraw; the public lists; the feed rows.

A regulator writes a warning as a draft (title, plain-text body, category,
the registered merchants it names), may change it while it is a draft, and
publishes it: from then on it is on the public pages, in the credit feed (one
``warning`` row per merchant named, or one row without a merchant) and sent to
the webhook subscribers (``warning.published``). A published warning is never
edited; it can be withdrawn with a reason: it leaves the public pages, the feed
gets ``warning_withdrawn`` rows, the subscribers ``warning.withdrawn``, and the
warning stays on record. Every step is in the audit log.

Services flush, never commit (STYLE.md).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, exists
from sqlalchemy.orm import selectinload

from mediation.analytics.audit import record_audit
from mediation.analytics.warning_models import (
    ConsumerWarning,
    WarningStatus,
    warning_merchants,
)
from mediation.auth.models import Role, User
from mediation.cases.models import Category
from mediation.credit import webhooks
from mediation.credit.models import CreditChange
from mediation.errors import Conflict, NotFound, PermissionDenied, ValidationError
from mediation.extensions import db
from mediation.merchants.models import Merchant

logger = logging.getLogger(__name__)

#: The complaint categories of API.md, and ``general`` for a warning about none.
GENERAL = "general"
CATEGORIES = (*(c.value for c in Category), GENERAL)
STATUSES = tuple(s.value for s in WarningStatus)
TITLE_MAX = 200
BODY_MAX = 20_000
REASON_MAX = 2_000
#: Most merchants one warning may name.
MERCHANTS_MAX = 50
#: Warnings shown on a merchant's credit page (newest first).
ON_MERCHANT_PAGE = 5
#: Ids beyond this cannot exist.
_ID_MAX = 2**31 - 1


# Checks ---------------------------------------------------------------------


def require_regulator(user: User | None) -> User:
    """Return ``user`` if a regulator.

    :raise PermissionDenied: for anyone else.
    """
    if user is None or user.role != Role.regulator.value:
        raise PermissionDenied(_l("Only regulators write consumer warnings."))
    return user


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _merchant_ids(value: Any, errors: dict[str, Any]) -> list[int]:
    """Return the distinct merchant ids of ``value`` in order; note problems."""
    if value in (None, ""):
        return []
    if not isinstance(value, (list, tuple)):
        errors["merchant_ids"] = _l("Enter a list of merchant numbers.")
        return []
    ids: list[int] = []
    for item in value:
        if (
            isinstance(item, bool)
            or not isinstance(item, int)
            or not 0 < item <= _ID_MAX
        ):
            errors["merchant_ids"] = _l("Enter a list of merchant numbers.")
            return []
        if item not in ids:
            ids.append(item)
    if len(ids) > MERCHANTS_MAX:
        errors["merchant_ids"] = _l(
            "A warning may name at most %(n)d merchants.", n=MERCHANTS_MAX
        )
        return []
    return ids


def clean_warning_values(values: dict[str, Any]) -> dict[str, Any]:
    """Validate and normalise the fields of a warning.

    :param values: ``title``, ``body``, ``category`` and ``merchant_ids`` (a
        list of registered merchants' ids, may be empty).
    :return: the normalised values, ``merchants`` (the Merchant rows, in the
        order given) instead of ``merchant_ids``.
    :raise ValidationError: naming every bad field.
    """
    errors: dict[str, Any] = {}
    title = _text(values.get("title"))
    body = values.get("body") if isinstance(values.get("body"), str) else ""
    body = body.replace("\r\n", "\n").strip()
    category = values.get("category")
    if not title:
        errors["title"] = _l("Enter a title.")
    elif len(title) > TITLE_MAX:
        errors["title"] = _l("At most %(n)d characters.", n=TITLE_MAX)
    if not body:
        errors["body"] = _l("Enter the text of the warning.")
    elif len(body) > BODY_MAX:
        errors["body"] = _l("At most %(n)d characters.", n=BODY_MAX)
    if category not in CATEGORIES:
        errors["category"] = _l("Choose a category from the list.")
    ids = _merchant_ids(values.get("merchant_ids"), errors)
    merchants: list[Merchant] = []
    if ids:
        found = {
            m.id: m
            for m in db.session.scalars(db.select(Merchant).where(Merchant.id.in_(ids)))
        }
        unknown = [i for i in ids if i not in found]
        if unknown:
            errors["merchant_ids"] = _l(
                "No registered merchant has the number %(ids)s.",
                ids=", ".join(str(i) for i in unknown),
            )
        merchants = [found[i] for i in ids if i in found]
    # PostgreSQL cannot store NUL (HTTP requests are refused before; not scripts).
    for key, value in (("title", title), ("body", body)):
        if "\x00" in value:
            errors[key] = _l("The text contains a character that is not allowed.")
    if errors:
        raise ValidationError(fields=errors)
    return {"title": title, "body": body, "category": category, "merchants": merchants}


def _summary(warning: ConsumerWarning) -> dict[str, Any]:
    """What the audit log keeps of a warning."""
    return {
        "title": warning.title,
        "category": warning.category,
        "merchant_ids": [m.id for m in warning.merchants],
    }


# Writing --------------------------------------------------------------------


def create_warning(
    values: dict[str, Any], *, actor: User, now: datetime, publish: bool = False
) -> ConsumerWarning:
    """Write a new warning as a draft (or publish it at once).

    :param values: see :func:`clean_warning_values`.
    :param actor: the regulator writing it (its author).
    :param publish: publish it in the same step (the API's default).
    :raise PermissionDenied: for anyone but a regulator.
    :raise ValidationError: for bad fields.
    """
    require_regulator(actor)
    clean = clean_warning_values(values)
    warning = ConsumerWarning(
        title=clean["title"],
        body=clean["body"],
        category=clean["category"],
        status=WarningStatus.draft.value,
        author_id=actor.id,
        created_at=now,
        updated_at=now,
    )
    warning.merchants = clean["merchants"]
    db.session.add(warning)
    db.session.flush()
    record_audit(
        actor,
        "warning.create",
        object_type="warning",
        object_id=warning.id,
        details=_summary(warning),
        now=now,
    )
    if publish:
        publish_warning(warning, actor=actor, now=now)
    return warning


def update_warning(
    warning: ConsumerWarning, values: dict[str, Any], *, actor: User, now: datetime
) -> ConsumerWarning:
    """Change a draft.

    :raise PermissionDenied: for anyone but a regulator.
    :raise Conflict: (``not_a_draft``) once it is published or withdrawn.
    :raise ValidationError: for bad fields.
    """
    require_regulator(actor)
    _require_status(warning, WarningStatus.draft)
    clean = clean_warning_values(values)
    before = _summary(warning)
    changed = [
        key
        for key in ("title", "body", "category")
        if getattr(warning, key) != clean[key]
    ]
    warning.title, warning.body = clean["title"], clean["body"]
    warning.category = clean["category"]
    if [m.id for m in warning.merchants] != [m.id for m in clean["merchants"]]:
        changed.append("merchant_ids")
    warning.merchants = clean["merchants"]
    warning.updated_at = now
    db.session.flush()
    record_audit(
        actor,
        "warning.update",
        object_type="warning",
        object_id=warning.id,
        details={"changed": changed, "before": before, "after": _summary(warning)},
        now=now,
    )
    return warning


def _require_status(warning: ConsumerWarning, status: WarningStatus) -> None:
    if warning.status == status.value:
        return
    if status == WarningStatus.draft:
        raise Conflict(
            _l("A published warning is not edited; withdraw it and write a new one."),
            code="not_a_draft",
        )
    raise Conflict(
        _l("Only a published warning can be withdrawn."), code="not_published"
    )


def publish_warning(
    warning: ConsumerWarning, *, actor: User, now: datetime
) -> ConsumerWarning:
    """Publish a draft: public pages, the credit feed and the webhooks.

    :raise PermissionDenied: for anyone but a regulator.
    :raise Conflict: (``not_a_draft``) when it is not a draft.
    """
    require_regulator(actor)
    if warning.status != WarningStatus.draft.value:
        raise Conflict(
            _l("This warning was published already."), code="already_published"
        )
    warning.status = WarningStatus.published.value
    warning.published_at = now
    warning.published_by_id = actor.id
    warning.updated_at = now
    _feed_rows(warning, "warning", old={}, now=now)
    webhooks.on_warning(
        "warning.published",
        {"warning": warning_payload(warning, with_body=True)},
        merchant_ids=[m.id for m in warning.merchants],
        now=now,
    )
    db.session.flush()
    record_audit(
        actor,
        "warning.publish",
        object_type="warning",
        object_id=warning.id,
        details=_summary(warning),
        now=now,
    )
    logger.info(
        "consumer warning published",
        extra={"warning_id": warning.id, "actor_id": actor.id},
    )
    return warning


def withdraw_warning(
    warning: ConsumerWarning, reason: str | None, *, actor: User, now: datetime
) -> ConsumerWarning:
    """Withdraw a published warning: off the public pages, kept on record.

    :param reason: why (required; kept for regulators, not published).
    :raise PermissionDenied: for anyone but a regulator.
    :raise Conflict: (``not_published``) when it is not published.
    :raise ValidationError: (field ``reason``) without a reason.
    """
    require_regulator(actor)
    _require_status(warning, WarningStatus.published)
    text = (reason or "").strip()
    if not text:
        raise ValidationError(
            fields={"reason": _l("Give the reason for the withdrawal.")}
        )
    if len(text) > REASON_MAX or "\x00" in text:
        raise ValidationError(
            fields={"reason": _l("At most %(n)d characters.", n=REASON_MAX)}
        )
    warning.status = WarningStatus.withdrawn.value
    warning.withdrawn_at = now
    warning.withdrawn_by_id = actor.id
    warning.withdrawal_reason = text
    warning.updated_at = now
    _feed_rows(warning, "warning_withdrawn", old={"status": "published"}, now=now)
    webhooks.on_warning(
        "warning.withdrawn",
        {"warning": warning_payload(warning, with_body=False)},
        merchant_ids=[m.id for m in warning.merchants],
        now=now,
    )
    db.session.flush()
    record_audit(
        actor,
        "warning.withdraw",
        object_type="warning",
        object_id=warning.id,
        details={**_summary(warning), "reason": text},
        now=now,
    )
    logger.info(
        "consumer warning withdrawn",
        extra={"warning_id": warning.id, "actor_id": actor.id},
    )
    return warning


def discard_warning(warning: ConsumerWarning, *, actor: User, now: datetime) -> None:
    """Delete a draft that will not be published (the audit log keeps its title).

    :raise PermissionDenied: for anyone but a regulator.
    :raise Conflict: (``not_a_draft``) once it is published or withdrawn.
    """
    require_regulator(actor)
    _require_status(warning, WarningStatus.draft)
    record_audit(
        actor,
        "warning.discard",
        object_type="warning",
        object_id=warning.id,
        details=_summary(warning),
        now=now,
    )
    warning.merchants = []
    db.session.delete(warning)
    db.session.flush()


def _feed_rows(
    warning: ConsumerWarning, kind: str, *, old: dict[str, Any], now: datetime
) -> list[CreditChange]:
    """Append the warning's rows to the credit feed (one per merchant named).

    Added through the session, so the feed's ``before_flush`` hook registers
    the transaction as a feed writer (the cursor's safe horizon on PostgreSQL).
    """
    new = feed_snapshot(warning)
    targets: list[int | None] = [m.id for m in warning.merchants] or [None]
    rows = [
        CreditChange(merchant_id=merchant_id, kind=kind, old=old, new=new, at=now)
        for merchant_id in targets
    ]
    db.session.add_all(rows)
    return rows


def feed_snapshot(warning: ConsumerWarning) -> dict[str, Any]:
    """Return what the feed's ``new`` says of a warning (no withdrawal reason)."""
    snapshot: dict[str, Any] = {
        "warning_id": warning.id,
        "title": warning.title,
        "category": warning.category,
        "status": warning.status,
        "merchant_ids": [m.id for m in warning.merchants],
        "published_at": warning.published_at.isoformat()
        if warning.published_at
        else None,
    }
    if warning.withdrawn_at is not None:
        snapshot["withdrawn_at"] = warning.withdrawn_at.isoformat()
    return snapshot


def public_url(warning: ConsumerWarning) -> str:
    """Return the address of the warning's public page (``PUBLIC_URL`` based)."""
    base = str(current_app.config.get("PUBLIC_URL") or "").rstrip("/")
    return f"{base}/warnings/{warning.id}"


def warning_payload(warning: ConsumerWarning, *, with_body: bool) -> dict[str, Any]:
    """Return the webhooks' ``data.warning``: public facts only (no reason)."""
    payload: dict[str, Any] = {
        "id": warning.id,
        "title": warning.title,
        "category": warning.category,
        "status": warning.status,
        "merchants": [
            {"id": m.id, "name": m.name, "uscc": m.uscc} for m in warning.merchants
        ],
        "published_at": warning.published_at.isoformat()
        if warning.published_at
        else None,
        "url": public_url(warning),
    }
    if with_body:
        payload["body"] = warning.body
    if warning.withdrawn_at is not None:
        payload["withdrawn_at"] = warning.withdrawn_at.isoformat()
    return payload


# Reading --------------------------------------------------------------------


def lock_warning(warning_id: int) -> ConsumerWarning | None:
    """Load a warning for a change, locked until the commit, with fresh values.

    Two regulators publishing (or withdrawing) the same warning at once act
    one after the other: the second sees the first's result and is refused.
    """
    if not 0 < warning_id <= _ID_MAX:
        return None
    query = db.select(ConsumerWarning).where(ConsumerWarning.id == warning_id)
    dialect = db.session.get_bind().dialect.name
    if dialect == "postgresql":
        query = query.with_for_update(of=ConsumerWarning)
    elif dialect == "sqlite":
        db.session.execute(db.text("UPDATE consumer_warnings SET id = id WHERE 0 = 1"))
    return db.session.scalar(query.execution_options(populate_existing=True))


def get_warning_to_change(user: User, warning_id: int) -> ConsumerWarning:
    """Return a warning a regulator is about to change, locked.

    :raise PermissionDenied: for anyone but a regulator.
    :raise NotFound: for an unknown id.
    """
    require_regulator(user)
    warning = lock_warning(warning_id)
    if warning is None:
        raise NotFound()
    return warning


def get_warning(warning_id: int) -> ConsumerWarning:
    """Return any warning (for regulators).

    :raise NotFound: for an unknown id.
    """
    warning = (
        db.session.get(ConsumerWarning, warning_id)
        if 0 < warning_id <= _ID_MAX
        else None
    )
    if warning is None:
        raise NotFound()
    return warning


def get_public_warning(warning_id: int) -> ConsumerWarning:
    """Return a warning the public may read of: published, or withdrawn (whose
    page only says so).

    :raise NotFound: for drafts and unknown ids.
    """
    warning = get_warning(warning_id)
    if warning.status == WarningStatus.draft.value:
        raise NotFound()
    return warning


def list_warnings(
    *,
    status: str | None = WarningStatus.published.value,
    category: str | None = None,
    merchant_id: int | None = None,
    since: datetime | None = None,
) -> Select:
    """Return a SELECT of warnings, newest first.

    :param status: one status, or None for every status (regulators).
    :param category: only this category.
    :param merchant_id: only warnings naming this merchant.
    :param since: only warnings published at or after this time.
    """
    query = db.select(ConsumerWarning).options(selectinload(ConsumerWarning.merchants))
    if status:
        query = query.where(ConsumerWarning.status == status)
    if category:
        query = query.where(ConsumerWarning.category == category)
    if merchant_id is not None:
        wanted = merchant_id if 0 < merchant_id <= _ID_MAX else -1
        query = query.where(
            exists().where(
                warning_merchants.c.warning_id == ConsumerWarning.id,
                warning_merchants.c.merchant_id == wanted,
            )
        )
    if since is not None:
        query = query.where(ConsumerWarning.published_at >= since)
    if status == WarningStatus.published.value:
        return query.order_by(
            ConsumerWarning.published_at.desc(), ConsumerWarning.id.desc()
        )
    # Drafts have no publication time: the most recently changed first.
    return query.order_by(ConsumerWarning.updated_at.desc(), ConsumerWarning.id.desc())


def published_naming(
    merchant_id: int, limit: int = ON_MERCHANT_PAGE
) -> tuple[list[ConsumerWarning], int]:
    """Return the newest published warnings naming a merchant, and how many
    there are in all."""
    query = list_warnings(merchant_id=merchant_id)
    total = db.session.scalar(
        db.select(db.func.count()).select_from(query.order_by(None).subquery())
    )
    return list(db.session.scalars(query.limit(limit))), int(total or 0)


def seed_demo_warning(regulator: User, merchants: list[Merchant], *, now: datetime):
    """Publish the demo's consumer warning naming ``merchants`` (``seed-demo``)."""
    return create_warning(
        {
            "title": "关于部分网店电热水壶质量问题的消费警示",
            "category": "quality_defect",
            "merchant_ids": [m.id for m in merchants],
            "body": (
                "近期我们收到多起关于网购电热水壶使用数日后底部漏水的投诉。\n\n"
                "消费者购买时请查看产品的 3C 认证标志和能效标识，保留订单、"
                "商品页面截图和聊天记录；发现质量问题请先与商家协商，协商不成可"
                "在本平台投诉。\n\n"
                "Several consumers reported electric kettles leaking after a few "
                "days of use. Check the CCC mark, keep your order, screenshots "
                "of the product page and chats, and file a complaint here if the "
                "shop does not help."
            ),
        },
        actor=regulator,
        now=now,
        publish=True,
    )
