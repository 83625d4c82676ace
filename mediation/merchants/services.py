"""Registry services: register, edit and search merchants."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, func, or_
from sqlalchemy.orm import selectinload

from mediation.analytics.audit import record_audit
from mediation.auth.models import User
from mediation.errors import Conflict, NotFound, ValidationError
from mediation.extensions import db
from mediation.merchants import uscc
from mediation.merchants.models import Merchant, MerchantKind

USCC_MESSAGES = {
    "length": _l("A unified social credit code has 18 characters."),
    "alphabet": _l(
        "The code may only use digits and capital letters other than I, O, S, V and Z."
    ),
    "authority": _l("The first character is not a registration authority code."),
    "region": _l("Characters 3 to 8 must be the administrative division code."),
    "check": _l("The check character does not match: the code has a typing error."),
}
EDITABLE = (
    "name",
    "uscc",
    "kind",
    "platform_id",
    "shop_url",
    "region_code",
    "arbitration_consent",
    "commitment",
)
KINDS = tuple(k.value for k in MerchantKind)
#: Column sizes of the model, checked here so that the database never refuses a value.
NAME_MAX = 200
SHOP_URL_MAX = 500
COMMITMENT_MAX = 5000
#: Longest search text accepted (a name fragment or a credit code with spaces).
QUERY_MAX = 100
#: Shops listed on a platform's registry page (the rest through the search).
SHOPS_SHOWN = 20
#: Ids beyond this cannot exist (and would overflow SQLite's integers).
MAX_ID = 2**63 - 1


def _is_id(value: Any) -> bool:
    """Return True when ``value`` could be a row id (bool is an int too: no)."""
    if isinstance(value, bool) or not isinstance(value, int):
        return False
    return 0 < value <= MAX_ID


def _text(value: Any) -> str:
    """Return ``value`` as stripped text ('' for None and for non-strings)."""
    return value.strip() if isinstance(value, str) else ""


def clean_merchant_values(
    values: dict[str, Any], *, current: Merchant | None = None
) -> dict[str, Any]:
    """Validate and normalise registry fields.

    :param values: any subset of :data:`EDITABLE` (all required ones when creating).
    :param current: the merchant being edited (None when registering).
    :return: the normalised values of the fields given.
    :raise ValidationError: naming every bad field.
    """
    errors: dict[str, Any] = {}
    out: dict[str, Any] = {}
    creating = current is None
    # PostgreSQL cannot store NUL in text: refuse it here rather than fail there.
    with_nul = {k for k, v in values.items() if isinstance(v, str) and "\x00" in v}
    values = {k: "" if k in with_nul else v for k, v in values.items()}
    if "name" in values or creating:
        name = _text(values.get("name"))
        if not name:
            errors["name"] = _l("Enter the merchant's name.")
        elif len(name) > NAME_MAX:
            errors["name"] = _l("The name is too long.")
        out["name"] = name
    if "uscc" in values or creating:
        code = uscc.normalise(_text(values.get("uscc")))
        reason = uscc.validation_error(code)
        if reason:
            errors["uscc"] = USCC_MESSAGES[reason]
        else:
            clash = db.session.scalar(
                db.select(Merchant.id).where(Merchant.uscc == code)
            )
            if clash and (current is None or clash != current.id):
                errors["uscc"] = _l("A merchant with this code is already registered.")
        out["uscc"] = code
    if "kind" in values or creating:
        kind = values.get("kind")
        if kind not in KINDS:
            errors["kind"] = _l("Choose goods, service or platform.")
        out["kind"] = kind
    if "region_code" in values or creating:
        region = _text(values.get("region_code"))
        if not re.fullmatch(r"[1-9]\d{5}", region):
            errors["region_code"] = _l(
                "Enter the 6-digit administrative division code."
            )
        out["region_code"] = region
    kind = out.get("kind") or (current.kind if current is not None else None)
    if "platform_id" in values:
        pid = values.get("platform_id")
        if pid in ("", None):
            out["platform_id"] = None
        else:
            platform = db.session.get(Merchant, pid) if _is_id(pid) else None
            if platform is None or platform.kind != MerchantKind.platform.value:
                errors["platform_id"] = _l("Choose a registered platform.")
            elif kind == MerchantKind.platform.value:
                errors["platform_id"] = _l(
                    "A platform does not sell on another platform."
                )
            elif current is not None and platform.id == current.id:
                errors["platform_id"] = _l("A merchant cannot sell on itself.")
            out["platform_id"] = pid
    elif (
        current is not None
        and current.platform_id is not None
        and kind == MerchantKind.platform.value
    ):
        errors["platform_id"] = _l("A platform does not sell on another platform.")
    if "shop_url" in values:
        url = _text(values.get("shop_url"))
        if url and not re.fullmatch(r"https?://[^\s/]+[^\s]*", url):
            errors["shop_url"] = _l(
                "Enter a web address starting with http:// or https://."
            )
        elif len(url) > SHOP_URL_MAX:
            errors["shop_url"] = _l("The web address is too long.")
        out["shop_url"] = url or None
    if "arbitration_consent" in values:
        out["arbitration_consent"] = bool(values.get("arbitration_consent"))
    if "commitment" in values:
        commitment = _text(values.get("commitment"))
        if len(commitment) > COMMITMENT_MAX:
            errors["commitment"] = _l("The commitment is too long.")
        out["commitment"] = commitment or None
    for key in with_nul:
        errors[key] = _l("The text contains a character that is not allowed.")
    if errors:
        raise ValidationError(fields=errors)
    return out


def register_merchant(
    values: dict[str, Any], *, now: datetime, actor: User | None = None
) -> Merchant:
    """Add a merchant to the registry.

    :param values: the fields of :data:`EDITABLE`; ``name``, ``uscc``, ``kind``
        and ``region_code`` are required.
    :param now: the registration time.
    :param actor: the regulator registering it (recorded in the audit log);
        None for the importer and the demo data.
    :raise ValidationError: for any invalid field (the credit code is checked).
    """
    clean = clean_merchant_values(values)
    merchant = Merchant(created_at=now, updated_at=now, **clean)
    db.session.add(merchant)
    db.session.flush()
    if actor is not None:
        record_audit(
            actor,
            "merchant.create",
            object_type="merchant",
            object_id=merchant.id,
            details={k: clean[k] for k in ("name", "uscc", "kind", "region_code")},
            now=now,
        )
    return merchant


def update_merchant(
    merchant: Merchant,
    values: dict[str, Any],
    *,
    now: datetime,
    actor: User | None = None,
) -> Merchant:
    """Edit a registry entry.

    :param merchant: the entry to change.
    :param values: the fields of :data:`EDITABLE` that change.
    :param now: the time of the change.
    :param actor: the regulator editing it (the changed fields, before and
        after, go to the audit log).
    :raise ValidationError: for any invalid field.
    :raise Conflict: when a platform with shops would stop being a platform.
    """
    clean = clean_merchant_values(values, current=merchant)
    if (
        merchant.is_platform
        and clean.get("kind", merchant.kind) != MerchantKind.platform.value
        and db.session.scalar(
            db.select(Merchant.id).where(Merchant.platform_id == merchant.id).limit(1)
        )
    ):
        raise Conflict(_l("Shops sell on this platform; it must stay a platform."))
    changed = {
        key: [getattr(merchant, key), value]
        for key, value in clean.items()
        if getattr(merchant, key) != value
    }
    for key, value in clean.items():
        setattr(merchant, key, value)
    merchant.updated_at = now
    db.session.flush()
    if actor is not None and changed:
        record_audit(
            actor,
            "merchant.update",
            object_type="merchant",
            object_id=merchant.id,
            details={"name": merchant.name, "changed": changed},
            now=now,
        )
    return merchant


def get_merchant(merchant_id: int) -> Merchant:
    """Return a merchant.

    :raise NotFound: for an unknown id.
    """
    merchant = db.session.get(Merchant, merchant_id) if _is_id(merchant_id) else None
    if merchant is None:
        raise NotFound()
    return merchant


@dataclass
class RegistryEntry:
    """What the public registry page shows about one merchant."""

    merchant: Merchant
    #: For a platform operator: the first :data:`SHOPS_SHOWN` shops on it, by name.
    shops: list[Merchant]
    #: For a platform operator: how many shops sell on it.
    shop_count: int


def get_registry_entry(merchant_id: int) -> RegistryEntry:
    """Return a merchant with, for a platform, the shops that sell on it.

    :raise NotFound: for an unknown id.
    """
    merchant = get_merchant(merchant_id)
    shops: list[Merchant] = []
    count = 0
    if merchant.is_platform:
        on_platform = Merchant.platform_id == merchant.id
        count = (
            db.session.scalar(
                db.select(func.count()).select_from(Merchant).where(on_platform)
            )
            or 0
        )
        shops = list(
            db.session.scalars(
                db.select(Merchant)
                .where(on_platform)
                .order_by(Merchant.name, Merchant.id)
                .limit(SHOPS_SHOWN)
            )
        )
    return RegistryEntry(merchant=merchant, shops=shops, shop_count=count)


def search_merchants(
    q: str | None = None, *, kind: str | None = None, platform_id: int | None = None
) -> Select:
    """Return a SELECT of merchants matching a name fragment or a code prefix.

    :param q: a fragment of the name, or the start of the credit code (spaces
        and case ignored); empty matches everyone.
    :param kind: only merchants of this kind.
    :param platform_id: only shops on this platform.
    """
    query = db.select(Merchant)
    # NUL never occurs in the registry (and PostgreSQL refuses it in a parameter).
    text = (q or "").replace("\x00", "").strip()
    if text:
        escaped = text.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_")
        like = f"%{escaped}%"
        conditions = [Merchant.name.ilike(like, escape="\\")]
        code = uscc.normalise(text)
        if code:
            conditions.append(Merchant.uscc.startswith(code, autoescape=True))
        query = query.where(or_(*conditions))
    if kind:
        query = query.where(Merchant.kind == kind)
    if platform_id is not None:
        # An id that cannot exist matches nothing (and must not reach the driver).
        wanted = platform_id if _is_id(platform_id) else -1
        query = query.where(Merchant.platform_id == wanted)
    # Lists show each shop's platform: load them in one query, not one per row.
    return query.options(selectinload(Merchant.platform)).order_by(
        Merchant.name, Merchant.id
    )


def platforms() -> list[Merchant]:
    """Return every platform operator, by name."""
    return list(
        db.session.scalars(
            db.select(Merchant)
            .where(Merchant.kind == MerchantKind.platform.value)
            .order_by(Merchant.name, Merchant.id)
        ).all()
    )
