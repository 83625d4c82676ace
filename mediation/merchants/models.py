"""The merchant registry."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mediation.dbtypes import UTCDateTime
from mediation.extensions import db


class MerchantKind(str, enum.Enum):
    goods = "goods"
    service = "service"
    platform = "platform"


class Merchant(db.Model):
    __tablename__ = "merchants"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    #: Unified social credit code (GB 32100-2015), validated on the way in.
    uscc: Mapped[str] = mapped_column(String(18), unique=True)
    kind: Mapped[str] = mapped_column(String(20), index=True)
    #: The platform (a merchant of kind ``platform``) this shop sells on.
    platform_id: Mapped[int | None] = mapped_column(
        ForeignKey("merchants.id"), index=True
    )
    shop_url: Mapped[str | None] = mapped_column(String(500))
    #: Six-digit administrative division code.
    region_code: Mapped[str] = mapped_column(String(6), index=True)
    #: The merchant agreed in advance to online arbitration.
    arbitration_consent: Mapped[bool] = mapped_column(default=False)
    commitment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    platform = relationship("Merchant", remote_side=[id])

    @property
    def is_platform(self) -> bool:
        return self.kind == MerchantKind.platform.value

    def __repr__(self) -> str:
        return f"<Merchant {self.id} {self.name}>"
