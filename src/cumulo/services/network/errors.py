"""The one networking error the common table lacks."""

from __future__ import annotations

from cumulo.services.errors import CloudError


class RuleConflict(CloudError):
    """NetworkRuleConflictException: a rule overlaps an existing one (CS ApiErrorCode 537)."""

    errorcode = 537
    cserrorcode = 4360
