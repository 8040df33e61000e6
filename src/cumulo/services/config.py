"""Global settings that CloudStack exposes through listConfigurations, kept in the database.

Definitions (name, type, default, scopes) live here in code; the ``configurations`` table
holds only values an operator set. Values are cached per process for a few seconds so a hot
path such as throttling does not query on every call; ``updateConfiguration`` on one server
reaches the others within that time.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from cumulo.db.models import Account, Configuration, Domain
from cumulo.services.errors import ParamError

SCOPES = ("global", "account", "domain")
CACHE_SECONDS = 3.0
WIRE_TYPES = {"Integer": "Number", "Long": "Number", "Float": "Decimal"}


@dataclass(frozen=True)
class ConfigKey:
    name: str
    category: str
    type: str  # Boolean, Integer, Long, Float, String, Range
    default: str
    description: str
    scopes: tuple[str, ...] = ("global",)
    dynamic: bool = True
    component: str = "ManagementServer"
    group: str = "Miscellaneous"
    subgroup: str = "Others"
    min: float | None = None
    max: float | None = None
    display_text: str = ""
    parent: str | None = None

    @property
    def scope(self) -> str:
        """CloudStack shows the narrowest scope a key supports."""
        return self.scopes[-1]

    @property
    def wire_type(self) -> str:
        """The value kinds the CloudStack UI knows (it picks an input widget by them)."""
        return WIRE_TYPES.get(self.type, self.type)

    @property
    def display(self) -> str:
        """CloudStack derives a label from the dotted name when none is declared."""
        if self.display_text:
            return self.display_text
        words = self.name.replace(".", " ").replace("_", " ")
        return words[:1].upper() + words[1:]

    def convert(self, text: str) -> Any:
        try:
            if self.type == "Boolean":
                if text.lower() not in ("true", "false"):
                    raise ValueError(text)
                return text.lower() == "true"
            if self.type in ("Integer", "Long"):
                number: float = int(text)
            elif self.type == "Float":
                number = float(text)
            else:
                return text
        except ValueError:
            raise ParamError(
                f"Invalid value {text!r} for configuration {self.name}: expected {self.type}"
            ) from None
        if (self.min is not None and number < self.min) or (
            self.max is not None and number > self.max
        ):
            raise ParamError(
                f"Value {text} for configuration {self.name} is outside {self.min}..{self.max}"
            )
        return number


KEYS: dict[str, ConfigKey] = {}


def define(key: ConfigKey) -> ConfigKey:
    if key.name in KEYS:
        raise ValueError(f"configuration {key.name} defined twice")
    KEYS[key.name] = key
    return key


DEFAULT_PAGE_SIZE = define(
    ConfigKey(
        "default.page.size",
        "Advanced",
        "Integer",
        "500",
        "Default page size for API list* commands",
        group="Management Server",
        subgroup="API",
        min=-1,
    )
)
THROTTLE_ENABLED = define(
    ConfigKey(
        "api.throttling.enabled",
        "Advanced",
        "Boolean",
        "false",
        "Enable/disable Api rate limit",
        group="Management Server",
        subgroup="API",
    )
)
THROTTLE_INTERVAL = define(
    ConfigKey(
        "api.throttling.interval",
        "Advanced",
        "Integer",
        "1",
        "Time interval (in seconds) to reset API count",
        group="Management Server",
        subgroup="API",
        min=1,
    )
)
THROTTLE_MAX = define(
    ConfigKey(
        "api.throttling.max",
        "Advanced",
        "Integer",
        "25",
        "Max allowed number of APIs within fixed interval",
        group="Management Server",
        subgroup="API",
        min=1,
    )
)
SESSION_CHECK = define(
    ConfigKey(
        "api.sessionkey.check.locations",
        "Advanced",
        "String",
        "CookieAndParameter",
        "Where the session key must be present: CookieAndParameter, CookieOrParameter or "
        "ParameterOnly",
        group="Management Server",
        subgroup="API",
    )
)
ALLOW_USER_VIEW_DESTROYED_VM = define(
    ConfigKey(
        "allow.user.view.destroyed.vm",
        "Advanced",
        "Boolean",
        "false",
        "Determines whether users can view their destroyed or expunging vm",
        scopes=("global", "account"),
    )
)
ALLOW_USER_EXPUNGE_RECOVER_VM = define(
    ConfigKey(
        "allow.user.expunge.recover.vm",
        "Advanced",
        "Boolean",
        "false",
        "Determines whether users can expunge or recover their vm",
        scopes=("global", "account"),
    )
)
SECURITY_GROUPS_ENABLED = define(
    ConfigKey(
        "security.groups.enabled",
        "Network",
        "Boolean",
        "false",
        "Whether any zone of the cloud uses security groups",
        dynamic=False,
    )
)
EVENTS_PURGE_DELAY = define(
    ConfigKey(
        "event.purge.delay",
        "Advanced",
        "Integer",
        "15",
        "Events older than specified number days will be purged. Set this value to 0 to never "
        "delete events",
        min=0,
    )
)

CUSTOM_DISK_MIN = define(
    ConfigKey(
        "custom.diskoffering.size.min",
        "Advanced",
        "Long",
        "1",
        "Minimum size in GB for custom disk offering.",
        min=1,
    )
)
CUSTOM_DISK_MAX = define(
    ConfigKey(
        "custom.diskoffering.size.max",
        "Advanced",
        "Long",
        "1024",
        "Maximum size in GB for custom disk offering.",
        min=1,
    )
)
USERDATA_MAX_LENGTH = define(
    ConfigKey(
        "vm.userdata.max.length",
        "Advanced",
        "Integer",
        "32768",
        "Max length of vm userdata after base64 decoding. Default is 32768 and maximum is 1048576",
        min=1,
        max=1048576,
    )
)

# Cluster-scoped in CloudStack: the global value is what a new cluster starts with; a
# cluster's own value lives on its row (clusters.cpu_overcommit / memory_overcommit), where
# placement reads it, and updateConfiguration with clusterid writes it there.
CPU_OVERPROVISIONING = define(
    ConfigKey(
        "cpu.overprovisioning.factor",
        "Advanced",
        "Float",
        "1.0",
        "Used for CPU overprovisioning calculation; available CPU will be "
        "(actualCpuCapacity * cpu.overprovisioning.factor)",
        scopes=("global", "cluster"),
        min=1,
    )
)
MEM_OVERPROVISIONING = define(
    ConfigKey(
        "mem.overprovisioning.factor",
        "Advanced",
        "Float",
        "1.0",
        "Used for memory overprovisioning calculation",
        scopes=("global", "cluster"),
        min=1,
    )
)

# Default resource limits (CloudStack's "Account Defaults" and "Domain Defaults"): the limit an
# account or a non-ROOT domain has when no explicit updateResourceLimit row exists. Keyed by
# CloudStack's resource type name; storage limits are in GiB, memory in MiB. -1 is unlimited.
_LIMIT_DEFAULTS: tuple[tuple[str, str, str, str, str], ...] = (
    ("user_vm", "user.vms", "20", "40", "number of user VMs that can be deployed"),
    ("public_ip", "public.ips", "20", "40", "number of public IPs that can be consumed"),
    ("volume", "volumes", "20", "40", "number of volumes that can be created"),
    ("snapshot", "snapshots", "20", "40", "number of snapshots that can be created"),
    ("template", "templates", "20", "40", "number of templates that can be deployed"),
    ("project", "projects", "10", "50", "number of projects that can be created"),
    ("network", "networks", "20", "40", "number of networks that can be created"),
    ("vpc", "vpcs", "20", "40", "number of vpcs that can be created"),
    ("cpu", "cpus", "40", "80", "number of cpu cores that can be used"),
    ("memory", "memory", "40960", "81920", "memory (in MB) that can be used"),
    ("primary_storage", "primary.storage", "200", "400", "primary storage space (in GiB)"),
    ("secondary_storage", "secondary.storage", "400", "800", "secondary storage space (in GiB)"),
)


def _limit_key(owner: str, suffix: str, default: str, what: str) -> ConfigKey:
    return define(
        ConfigKey(
            f"max.{owner}.{suffix}",
            f"{owner.capitalize()} Defaults",
            "Long",
            default,
            f"The default maximum {what} for an {owner}"
            if owner == "account"
            else f"The default maximum {what} for a {owner}",
            min=-1,
        )
    )


ACCOUNT_LIMIT_KEYS: dict[str, ConfigKey] = {
    rtype: _limit_key("account", suffix, account, what)
    for rtype, suffix, account, _domain, what in _LIMIT_DEFAULTS
}
DOMAIN_LIMIT_KEYS: dict[str, ConfigKey] = {
    rtype: _limit_key("domain", suffix, domain, what)
    for rtype, suffix, _account, domain, what in _LIMIT_DEFAULTS
}


class ConfigStore:
    """Reads effective values: account, then domain (and its parents), then global, then default."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str, int], tuple[float, str | None]] = {}

    def _row(self, session: Session, name: str, scope: str, scope_id: int) -> str | None:
        key = (name, scope, scope_id)
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
        if hit and now - hit[0] < CACHE_SECONDS:
            return hit[1]
        value = session.scalar(
            select(Configuration.value).where(
                Configuration.name == name,
                Configuration.scope == scope,
                Configuration.scope_id == scope_id,
            )
        )
        with self._lock:
            self._cache[key] = (now, value)
        return value

    def raw(
        self,
        session: Session,
        key: ConfigKey,
        account_id: int | None = None,
        domain_ids: tuple[int, ...] = (),
    ) -> str:
        if account_id is not None and "account" in key.scopes:
            found = self._row(session, key.name, "account", account_id)
            if found is not None:
                return found
        if "domain" in key.scopes:
            for domain_id in domain_ids:
                found = self._row(session, key.name, "domain", domain_id)
                if found is not None:
                    return found
        found = self._row(session, key.name, "global", 0)
        return key.default if found is None else found

    def get(self, session: Session, key: ConfigKey, **scope: Any) -> Any:
        return key.convert(self.raw(session, key, **scope))

    def set(
        self, session: Session, key: ConfigKey, value: str | None, scope: str, scope_id: int
    ) -> None:
        """Write (or with None, reset) one value; the caller's transaction commits it."""
        if scope not in key.scopes:
            raise ParamError(f"Configuration {key.name} cannot be set at the {scope} scope")
        row = session.scalar(
            select(Configuration).where(
                Configuration.name == key.name,
                Configuration.scope == scope,
                Configuration.scope_id == scope_id,
            )
        )
        if value is None:
            if row is not None:
                session.delete(row)
        else:
            key.convert(value)
            if row is None:
                session.add(
                    Configuration(name=key.name, scope=scope, scope_id=scope_id, value=value)
                )
            else:
                row.value = value
        self._forget(key.name, scope, scope_id)
        # Also after commit: a reader between now and then may have cached the old value.
        event.listen(
            session,
            "after_commit",
            lambda _s: self._forget(key.name, scope, scope_id),
            once=True,
        )

    def _forget(self, name: str, scope: str, scope_id: int) -> None:
        with self._lock:
            self._cache.pop((name, scope, scope_id), None)


@dataclass(frozen=True)
class Scope:
    """Where a value is read or written: global, or one account or domain (with its parents)."""

    name: str = "global"
    id: int = 0
    uuid: str | None = None
    account_id: int | None = None
    domain_ids: tuple[int, ...] = ()
    # Values kept on the scoped resource's own row rather than in configurations (a
    # cluster's over-provisioning factors), as (name, value) pairs.
    own: tuple[tuple[str, str], ...] = ()

    def value(self, session: Session, store: ConfigStore, key: ConfigKey) -> str:
        """The effective value here: the scope's own, else its parents', else global/default."""
        for name, value in self.own:
            if name == key.name:
                return value
        return store.raw(session, key, account_id=self.account_id, domain_ids=self.domain_ids)


UNSUPPORTED_SCOPES = ("zone", "storagepool", "imagestore")


def _domain_chain(domain: Domain) -> tuple[int, ...]:
    chain: list[int] = []
    current: Domain | None = domain
    while current is not None:
        chain.append(current.id)
        current = current.parent
    return tuple(chain)


def account_scope(session: Session, uuid: str) -> tuple[Scope, Account]:
    account = session.scalar(select(Account).where(Account.uuid == uuid, Account.removed.is_(None)))
    if account is None:
        raise ParamError(f"Unable to find account by id {uuid}")
    chain = _domain_chain(account.domain)
    return Scope("account", account.id, account.uuid, account.id, chain), account


def domain_scope(session: Session, uuid: str) -> tuple[Scope, Domain]:
    domain = session.scalar(select(Domain).where(Domain.uuid == uuid, Domain.removed.is_(None)))
    if domain is None:
        raise ParamError(f"Unable to find domain by id {uuid}")
    return Scope("domain", domain.id, domain.uuid, None, _domain_chain(domain)), domain


def pick_scope(named: dict[str, str | None]) -> tuple[str, str] | None:
    """At most one scope id may be given (CloudStack's updateConfiguration rule)."""
    given = [(name, uuid) for name, uuid in named.items() if uuid is not None]
    if len(given) > 1:
        raise ParamError(
            "cannot handle multiple IDs, provide only one ID corresponding to the scope"
        )
    return given[0] if given else None


def find_key(name: str) -> ConfigKey:
    key = KEYS.get(name)
    if key is None:
        raise ParamError(f"Configuration {name} not found")
    return key


# Placement and the VM lifecycle (CloudStack's names and defaults).
VM_ALLOCATION_ALGORITHM = define(
    ConfigKey(
        "vm.allocation.algorithm",
        "Advanced",
        "String",
        "random",
        "'random', 'firstfit', 'userdispersing', 'firstfitleastconsumed': the order in which "
        "hosts are tried for a new VM",
    )
)
START_RETRY = define(
    ConfigKey(
        "start.retry",
        "Advanced",
        "Integer",
        "10",
        "Number of times to retry create and start commands",
        min=0,
    )
)
AGENT_WAIT = define(
    ConfigKey(
        "wait",
        "Advanced",
        "Integer",
        "1800",
        "Time in seconds to wait for control commands to return",
        min=1,
    )
)
EXPUNGE_DELAY = define(
    ConfigKey(
        "expunge.delay",
        "Advanced",
        "Integer",
        "86400",
        "Determines how long (in seconds) to wait before actually expunging destroyed vm. "
        "The default value = the default value of expunge.interval",
        min=0,
    )
)
EXPUNGE_INTERVAL = define(
    ConfigKey(
        "expunge.interval",
        "Advanced",
        "Integer",
        "86400",
        "The interval (in seconds) to wait before running the expunge thread.",
        min=1,
    )
)
