"""The physical cloud: zones, pods, clusters, physical networks and IP ranges (CloudStack's
"infrastructure"), one module per resource family.

Rows are soft-deleted (``removed`` set) where the table has that column, as CloudStack's are,
so events and usage records that name an old zone still resolve; every lookup and list
ignores removed rows.
"""

from __future__ import annotations

from cumulo.services.errors import ParamError

ENABLED = "Enabled"
DISABLED = "Disabled"
ALLOCATION_STATES = (ENABLED, DISABLED)


def allocation_state(value: str | None, default: str) -> str:
    """CloudStack matches allocation states case-insensitively and answers in its own case."""
    if value is None:
        return default
    for state in ALLOCATION_STATES:
        if state.lower() == value.lower():
            return state
    raise ParamError(f"Unable to resolve Allocation State '{value}' to a supported state")
