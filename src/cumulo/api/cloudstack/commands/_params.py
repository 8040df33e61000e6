"""Parameter declarations that several command modules share word for word.

createAccount, createUser and updateUser take the same username, password, timezone and
external user id as CloudStack words them; declaring them once keeps the listApis texts of
those commands from drifting apart. This module declares no command.
"""

from __future__ import annotations

from typing import Annotated

from cumulo.api.cloudstack.registry import Param

PASSWORD_TEXT = (
    "Clear text password (Default hashed to SHA256SALT). If you wish to use any other hashing "
    "algorithm, you would need to write a custom authentication adapter See Docs section."
)

Username = Annotated[str, Param("Unique username.", required=True)]
Timezone = Annotated[
    str | None,
    Param(
        "Specifies a timezone for this command. For more information on the timezone "
        "parameter, see Time Zone Format."
    ),
]
ExternalUserId = Annotated[
    str | None,
    Param("User UUID, required for adding account from external provisioning system"),
]
