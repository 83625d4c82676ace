"""Registry services: register, edit and search merchants."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import or_

from mediation.errors import Conflict, NotFound, ValidationError
from mediation.extensions import db
from mediation.merchants import uscc
from mediation.merchants.models import Merchant, MerchantKind

USCC_MESSAGES = {
    "length": _l("A unified social credit code has 18 characters."),
    "alphabet": _l("The code may only use digits and capital letters other than I, O, S, V and Z."),
    "authority": _l("The first character is not a registration authority code."),
    "region": _l("Characters 3 to 8 must be the administrative division code."),
    "check": _l("The check character does not match: the code has a typing error."),
}
EDITABLE = ("name", "uscc", "kind", "platform_id", "shop_url", "region_code",
            "arbitration_consent", "commitment")


def clean_merchant_values(values: dict[str, Any], *, current: Merchant | None = None) -> dict[str, Any]:
    """Validate and normalise registry fields.

    :param values: any subset of :data:`EDITABLE` (all required ones when creating).
    :param current: the merchant being edited (None when registering).
    :raise ValidationError: naming every bad field.
    """
    errors: dict[str, Any] = {}
    out: dict[str, Any] = {}
    creating = current is None
    if "name" in values or creating:
        name = (values.get("name") or "").strip()
        if not name:
            errors["name"] = _l("Enter the merchant's name.")
        elif len(name) > 200:
            errors["name"] = _l("The name is too long.")
        out["name"] = name
    if "uscc" in values or creating:
        code = uscc.normalise(values.get("uscc") or "")
        reason = uscc.validation_error(code)
        if reason:
            errors["uscc"] = USCC_MESSAGES[reason]
        else:
            clash = db.session.scalar(db.select(Merchant.id).where(Merchant.uscc == code))
            if clash and (current is None or clash != current.id):
                errors["uscc"] = _l("A merchant with this code is already registered.")
        out["uscc"] = code
    if "kind" in values or creating:
        kind = values.get("kind")
        if kind not in {k.value for k in MerchantKind}:
            errors["kind"] = _l("Choose goods, service or platform.")
        out["kind"] = kind
    if "region_code" in values or creating:
        region = (values.get("region_code") or "").strip()
        if not re.fullmatch(r"[1-9]\d{5}", region):
            errors["region_code"] = _l("Enter the 6-digit administrative division code.")
        out["region_code"] = region
    if "platform_id" in values:
        pid = values.get("platform_id")
        if pid in ("", None):
            out["platform_id"] = None
        else:
            platform = db.session.get(Merchant, pid) if isinstance(pid, int) else None
            kind = out.get("kind") or (current.kind if current else None)
            if platform is None or platform.kind != MerchantKind.platform.value:
                errors["platform_id"] = _l("Choose a registered platform.")
            elif kind == MerchantKind.platform.value:
                errors["platform_id"] = _l("A platform does not sell on another platform.")
            elif current is not None and platform.id == current.id:
                errors["platform_id"] = _l("A merchant cannot sell on itself.")
            out["platform_id"] = pid
    if "shop_url" in values:
        url = (values.get("shop_url") or "").strip()
        if url and not re.match(r"^https?://[^\s]+$", url):
            errors["shop_url"] = _l("Enter a web address starting with http:// or https://.")
        out["shop_url"] = url or None
    if "arbitration_consent" in values:
        out["arbitration_consent"] = bool(values.get("arbitration_consent"))
    if "commitment" in values:
        out["commitment"] = (values.get("commitment") or "").strip() or None
    if errors:
        raise ValidationError(fields=errors)
    return out


def register_merchant(values: dict[str, Any], *, now: datetime) -> Merchant:
    """Add a merchant to the registry.

    :raise ValidationError: for any invalid field (the credit code is checked).
    """
    clean = clean_merchant_values(values)
    merchant = Merchant(created_at=now, updated_at=now, **clean)
    db.session.add(merchant)
    db.session.flush()
    return merchant


def update_merchant(merchant: Merchant, values: dict[str, Any], *, now: datetime) -> Merchant:
    """Edit a registry entry.

    :raise ValidationError: for any invalid field.
    :raise Conflict: when a platform with shops would stop being a platform.
    """
    clean = clean_merchant_values(values, current=merchant)
    if (merchant.is_platform and clean.get("kind", merchant.kind) != MerchantKind.platform.value
            and db.session.scalar(db.select(Merchant.id).where(Merchant.platform_id == merchant.id))):
        raise Conflict(_l("Shops sell on this platform; it must stay a platform."))
    for key, value in clean.items():
        setattr(merchant, key, value)
    merchant.updated_at = now
    db.session.flush()
    return merchant


def get_merchant(merchant_id: int) -> Merchant:
    """Return a merchant.

    :raise NotFound: for an unknown id.
    """
    merchant = db.session.get(Merchant, merchant_id)
    if merchant is None:
        raise NotFound()
    return merchant


def search_merchants(q: str | None = None, *, kind: str | None = None):
    """Return a SELECT of merchants matching a name fragment or a code prefix."""
    query = db.select(Merchant)
    text = (q or "").strip()
    if text:
        like = "%" + text.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_") + "%"
        query = query.where(
            or_(
                Merchant.name.ilike(like, escape="\\"),
                Merchant.uscc.startswith(uscc.normalise(text), autoescape=True),
            )
        )
    if kind:
        query = query.where(Merchant.kind == kind)
    return query.order_by(Merchant.name, Merchant.id)


def platforms() -> list[Merchant]:
    """Return every platform operator, by name."""
    return list(db.session.scalars(
        db.select(Merchant).where(Merchant.kind == MerchantKind.platform.value).order_by(Merchant.name)
    ).all())
