"""Every command module; importing this package declares the whole API."""

from cumulo.api.cloudstack.commands import (  # noqa: F401
    asyncjobs,
    discovery,
    session,
    users,
)
