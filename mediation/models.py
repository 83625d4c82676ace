"""Imports every model module so that metadata (and Alembic) sees all tables."""

import mediation.analytics.alert_models  # noqa: F401
import mediation.analytics.risk_models  # noqa: F401
import mediation.analytics.stats_models  # noqa: F401
import mediation.analytics.warning_models  # noqa: F401
from mediation.analytics.audit_models import AuditEntry  # noqa: F401
from mediation.arbitration.models import (  # noqa: F401
    Award,
    AwardCorrection,
    InfoRequest,
    Objection,
)
from mediation.auth.models import ApiToken, MerchantClaim, User  # noqa: F401
from mediation.cases.models import (  # noqa: F401
    Case,
    CaseEvent,
    CaseVersion,
    Evidence,
    IdempotencyKey,
    Offer,
)
from mediation.chat.models import (  # noqa: F401
    ChatMessage,
    ChatReadPosition,
    ChatRoom,
)
from mediation.credit.models import (  # noqa: F401
    CreditChange,
    CreditEvent,
    CreditRepair,
    CreditStanding,
    WebhookDelivery,
    WebhookSubscription,
)
from mediation.credit.webhook_models import WebhookAttempt  # noqa: F401
from mediation.merchants.models import Merchant  # noqa: F401
from mediation.notifications.models import Notification  # noqa: F401
