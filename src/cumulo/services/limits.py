"""Resource limits and counts: how much of each resource type an account and its domains hold.

An account's count and every ancestor domain's count move together: a domain's count is the
sum over the accounts of its subtree (CloudStack's ``listAllRowsToUpdate``). Limits come from
an explicit ``resource_limits`` row, else the ``max.account.*`` / ``max.domain.*`` defaults; the
root admin account and the ROOT domain are never limited. A child domain without its own row
inherits the nearest ancestor's explicit limit (CloudStack's findCorrectResourceLimitForDomain).

Units follow CloudStack: counts of primary and secondary storage are bytes while their limits
are GiB (``updateResourceLimit max=10`` means 10 GiB); memory is MiB in both.

Concurrency: ``check_and_increment`` first makes sure every count row it needs exists (an
insert that ignores conflicts, so two first-time callers cannot both create one), then locks
them with ``SELECT … FOR UPDATE`` in ascending id order before reading, checking and writing.
On PostgreSQL two concurrent deploys for accounts under the same domain therefore queue on the
domain's row instead of both seeing room for one more; the fixed order means they cannot
deadlock. SQLite has no row locks, but every Cumulo write transaction starts with
``BEGIN IMMEDIATE`` (one writer at a time), so the read-check-write is serial there as well.
The check and the increment happen in the caller's transaction: if the resource creation
fails afterwards, the rollback takes the increment with it.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from sqlalchemy import bindparam, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from cumulo.db.models import Account, Domain, ResourceCount, ResourceLimit
from cumulo.services.access import AccountType
from cumulo.services.config import ACCOUNT_LIMIT_KEYS, DOMAIN_LIMIT_KEYS, ConfigKey, ConfigStore
from cumulo.services.errors import ParamError, ResourceLimitExceeded

log = logging.getLogger(__name__)

UNLIMITED = -1
GIB = 1024**3
ACCOUNT, DOMAIN = "account", "domain"


class ResourceType(IntEnum):
    """CloudStack's Resource.ResourceType: the wire shows the ordinal and the name."""

    user_vm = 0
    public_ip = 1
    volume = 2
    snapshot = 3
    template = 4
    project = 5
    network = 6
    vpc = 7
    cpu = 8
    memory = 9
    primary_storage = 10
    secondary_storage = 11

    @property
    def is_storage(self) -> bool:
        return self in (ResourceType.primary_storage, ResourceType.secondary_storage)

    def to_count_units(self, limit: int) -> int:
        """A limit as it compares with a count (GiB → bytes for storage)."""
        return limit * GIB if self.is_storage and limit >= 0 else limit


def resource_type(number: int | None = None, name: str | None = None) -> ResourceType | None:
    """Parse ``resourcetype``/``resourcetypename``; the name wins when both are given."""
    if name is not None:
        try:
            return ResourceType[name]
        except KeyError:
            raise ParamError("Please specify a valid resource type name.") from None
    if number is not None:
        try:
            return ResourceType(number)
        except ValueError:
            raise ParamError("Please specify a valid resource type.") from None
    return None


# --- limits ----------------------------------------------------------------------------------


def _explicit(session: Session, owner_type: str, owner_id: int, rtype: ResourceType) -> int | None:
    return session.scalar(
        select(ResourceLimit.max).where(
            ResourceLimit.owner_type == owner_type,
            ResourceLimit.owner_id == owner_id,
            ResourceLimit.resource_type == int(rtype),
        )
    )


def _default(
    session: Session, store: ConfigStore | None, rtype: ResourceType, keys: dict[str, ConfigKey]
) -> int:
    """max.account.* / max.domain.*; without the server's store, read uncached (tests, jobs)."""
    value = int((store or ConfigStore()).get(session, keys[rtype.name]))
    return UNLIMITED if value < 0 else value


def account_limit(
    session: Session, account: Account, rtype: ResourceType, store: ConfigStore | None = None
) -> int:
    """The account's limit in API units (GiB for storage); -1 is unlimited."""
    if account.type == AccountType.ADMIN:
        return UNLIMITED
    explicit = _explicit(session, ACCOUNT, account.id, rtype)
    if explicit is not None:
        return int(explicit)
    return _default(session, store, rtype, ACCOUNT_LIMIT_KEYS)


def domain_limit(
    session: Session, domain: Domain, rtype: ResourceType, store: ConfigStore | None = None
) -> int:
    """The domain's own row, else the nearest ancestor's below ROOT, else max.domain.*."""
    if domain.parent_id is None:
        return UNLIMITED
    current: Domain | None = domain
    while current is not None and current.parent_id is not None:
        explicit = _explicit(session, DOMAIN, current.id, rtype)
        if explicit is not None:
            return int(explicit)
        current = current.parent
    return _default(session, store, rtype, DOMAIN_LIMIT_KEYS)


def set_limit(
    session: Session, owner_type: str, owner_id: int, rtype: ResourceType, max: int
) -> None:
    row = session.scalar(
        select(ResourceLimit).where(
            ResourceLimit.owner_type == owner_type,
            ResourceLimit.owner_id == owner_id,
            ResourceLimit.resource_type == int(rtype),
        )
    )
    if row is None:
        session.add(
            ResourceLimit(
                owner_type=owner_type, owner_id=owner_id, resource_type=int(rtype), max=max
            )
        )
    elif row.max != max:
        row.max = max


# --- counts ----------------------------------------------------------------------------------


def ancestors(domain: Domain) -> list[Domain]:
    """The domain and its parents up to ROOT, nearest first."""
    chain: list[Domain] = []
    current: Domain | None = domain
    while current is not None:
        chain.append(current)
        current = current.parent
    return chain


def _owners(account: Account) -> list[tuple[str, int]]:
    return [(ACCOUNT, account.id)] + [(DOMAIN, d.id) for d in ancestors(account.domain)]


def _ensure_rows(session: Session, owners: Iterable[tuple[str, int]], rtype: ResourceType) -> None:
    """Create missing count rows; a concurrent creator's row wins and ours is skipped."""
    values = [
        {"owner_type": t, "owner_id": i, "resource_type": int(rtype), "count": 0} for t, i in owners
    ]
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    session.execute(insert(ResourceCount).values(values).on_conflict_do_nothing())


def _locked_rows(
    session: Session, owners: list[tuple[str, int]], rtype: ResourceType
) -> dict[tuple[str, int], ResourceCount]:
    _ensure_rows(session, owners, rtype)
    mine = or_(
        *[(ResourceCount.owner_type == t) & (ResourceCount.owner_id == i) for t, i in owners]
    )
    rows = session.scalars(
        select(ResourceCount)
        .where(ResourceCount.resource_type == int(rtype), mine)
        .order_by(ResourceCount.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return {(r.owner_type, r.owner_id): r for r in rows}


def count_of(session: Session, owner_type: str, owner_id: int, rtype: ResourceType) -> int:
    value = session.scalar(
        select(ResourceCount.count).where(
            ResourceCount.owner_type == owner_type,
            ResourceCount.owner_id == owner_id,
            ResourceCount.resource_type == int(rtype),
        )
    )
    return int(value or 0)


def _exceeded_account(rtype: ResourceType, account: Account) -> ResourceLimitExceeded:
    # CloudStack prints its internal domain id here; ours stay inside, so the uuid stands in.
    return ResourceLimitExceeded(
        f"Maximum number of resources of type '{rtype.name}' for account name={account.name} "
        f"in domain id={account.domain.uuid} has been exceeded."
    )


def _exceeded_domain(rtype: ResourceType, domain: Domain) -> ResourceLimitExceeded:
    return ResourceLimitExceeded(
        f"Maximum number of resources of type '{rtype.name}' for domain id={domain.uuid} "
        "has been exceeded."
    )


def _load_account(session: Session, account_id: int) -> Account:
    account = session.get(Account, account_id)
    if account is None:
        raise ParamError(f"Unable to find account by id {account_id}")
    return account


def check_and_increment(
    session: Session,
    account_id: int,
    resource_type: ResourceType | int,
    delta: int = 1,
    *,
    config: ConfigStore | None = None,
) -> None:
    """Reserve ``delta`` more of a resource for an account, or raise 532 and change nothing.

    Checks the account's limit and that of every domain above it except ROOT; then adds
    ``delta`` to the account's count and to every ancestor domain's. Storage deltas are bytes.
    """
    rtype = ResourceType(resource_type)
    if delta < 0:
        raise ValueError("check_and_increment takes a positive delta; use decrement")
    if delta == 0:
        return
    account = _load_account(session, account_id)
    owners = _owners(account)
    rows = _locked_rows(session, owners, rtype)
    if account.type != AccountType.ADMIN:
        _check(session, account, rtype, delta, rows, config)
    for row in rows.values():
        row.count = row.count + delta
    session.flush()


def _check(
    session: Session,
    account: Account,
    rtype: ResourceType,
    delta: int,
    rows: dict[tuple[str, int], ResourceCount],
    config: ConfigStore | None,
) -> None:
    limit = rtype.to_count_units(account_limit(session, account, rtype, config))
    if limit != UNLIMITED and rows[(ACCOUNT, account.id)].count + delta > limit:
        raise _exceeded_account(rtype, account)
    for domain in ancestors(account.domain):
        if domain.parent_id is None:
            continue
        limit = rtype.to_count_units(domain_limit(session, domain, rtype, config))
        if limit != UNLIMITED and rows[(DOMAIN, domain.id)].count + delta > limit:
            raise _exceeded_domain(rtype, domain)


def decrement(
    session: Session, account_id: int, resource_type: ResourceType | int, delta: int = 1
) -> None:
    """Give back ``delta`` of a resource; never below zero (a drift is fixed by recounting)."""
    rtype = ResourceType(resource_type)
    if delta < 0:
        raise ValueError("decrement takes a positive delta")
    if delta == 0:
        return
    account = _load_account(session, account_id)
    rows = _locked_rows(session, _owners(account), rtype)
    for key, row in rows.items():
        if row.count < delta:
            log.warning(
                "resource count would go negative",
                extra={"owner": key, "resource_type": rtype.name, "count": row.count},
            )
        row.count = max(0, row.count - delta)
    session.flush()


# --- several types at once (a VM holds an instance, CPU, memory, a volume and storage) --------


def _ensure_rows_many(
    session: Session, owners: list[tuple[str, int]], rtypes: Iterable[ResourceType]
) -> None:
    values = [
        {"owner_type": t, "owner_id": i, "resource_type": int(r), "count": 0}
        for r in rtypes
        for t, i in owners
    ]
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    session.execute(insert(ResourceCount).values(values).on_conflict_do_nothing())


def _locked_many(
    session: Session, owners: list[tuple[str, int]], rtypes: list[ResourceType]
) -> dict[tuple[str, int, int], ResourceCount]:
    """Every count row of these owners and types, locked in one statement in id order.

    The rows usually exist (every deploy after an owner's first): they are read first, and
    only when some are missing are they created (conflicts ignored) and read again.
    """
    stmt = _counts_statement(len(owners))
    params: dict[str, Any] = {"p_types": [int(r) for r in rtypes]}
    for n, (owner_type, owner_id) in enumerate(owners):
        params[f"p_type{n}"], params[f"p_id{n}"] = owner_type, owner_id
    rows = {(r.owner_type, r.owner_id, r.resource_type): r for r in session.scalars(stmt, params)}
    if len(rows) < len(owners) * len(rtypes):
        _ensure_rows_many(session, owners, rtypes)
        found = session.scalars(stmt, params)
        rows = {(r.owner_type, r.owner_id, r.resource_type): r for r in found}
    return rows


@functools.lru_cache(maxsize=32)
def _counts_statement(owners: int) -> Any:
    """The locked read of ``owners`` owners' count rows (bound values; built once per size)."""
    mine = or_(
        *[
            (ResourceCount.owner_type == bindparam(f"p_type{n}"))
            & (ResourceCount.owner_id == bindparam(f"p_id{n}"))
            for n in range(owners)
        ]
    )
    return (
        select(ResourceCount)
        .where(ResourceCount.resource_type.in_(bindparam("p_types", expanding=True)), mine)
        .order_by(ResourceCount.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


def _explicit_many(
    session: Session, owners: list[tuple[str, int]], rtypes: list[ResourceType]
) -> dict[tuple[str, int, int], int]:
    mine = or_(
        *[(ResourceLimit.owner_type == t) & (ResourceLimit.owner_id == i) for t, i in owners]
    )
    return {
        (t, i, r): int(m)
        for t, i, r, m in session.execute(
            select(
                ResourceLimit.owner_type,
                ResourceLimit.owner_id,
                ResourceLimit.resource_type,
                ResourceLimit.max,
            ).where(ResourceLimit.resource_type.in_([int(x) for x in rtypes]), mine)
        )
    }


def check_and_increment_many(
    session: Session,
    account_id: int,
    deltas: dict[ResourceType, int],
    *,
    config: ConfigStore | None = None,
) -> None:
    """``check_and_increment`` for several types in three statements: all or nothing."""
    wanted = {r: d for r, d in deltas.items() if d}
    if any(d < 0 for d in wanted.values()):
        raise ValueError("check_and_increment_many takes positive deltas")
    if not wanted:
        return
    account = _load_account(session, account_id)
    owners = _owners(account)
    rtypes = sorted(wanted)
    rows = _locked_many(session, owners, rtypes)
    if account.type != AccountType.ADMIN:
        explicit = _explicit_many(session, owners, rtypes)
        for rtype in rtypes:
            _check_one(session, account, rtype, wanted[rtype], rows, explicit, config)
    for (_, _, rtype_no), row in rows.items():
        row.count = row.count + wanted[ResourceType(rtype_no)]
    session.flush()


def _check_one(
    session: Session,
    account: Account,
    rtype: ResourceType,
    delta: int,
    rows: dict[tuple[str, int, int], ResourceCount],
    explicit: dict[tuple[str, int, int], int],
    config: ConfigStore | None,
) -> None:
    own = explicit.get((ACCOUNT, account.id, int(rtype)))
    limit = own if own is not None else _default(session, config, rtype, ACCOUNT_LIMIT_KEYS)
    limit = rtype.to_count_units(limit)
    if limit != UNLIMITED and rows[(ACCOUNT, account.id, int(rtype))].count + delta > limit:
        raise _exceeded_account(rtype, account)
    chain = [d for d in ancestors(account.domain) if d.parent_id is not None]
    for i, domain in enumerate(chain):
        found = next(
            (explicit[k] for d in chain[i:] if (k := (DOMAIN, d.id, int(rtype))) in explicit),
            None,
        )
        value = found if found is not None else _default(session, config, rtype, DOMAIN_LIMIT_KEYS)
        limit = rtype.to_count_units(value)
        if limit != UNLIMITED and rows[(DOMAIN, domain.id, int(rtype))].count + delta > limit:
            raise _exceeded_domain(rtype, domain)


def increment_unchecked(session: Session, account_id: int, deltas: dict[ResourceType, int]) -> None:
    """Add to the counts without checking limits (a resource that already exists)."""
    wanted = {r: d for r, d in deltas.items() if d}
    if not wanted:
        return
    account = _load_account(session, account_id)
    rows = _locked_many(session, _owners(account), sorted(wanted))
    for key, row in rows.items():
        row.count = row.count + wanted[ResourceType(key[2])]
    session.flush()


def decrement_many(session: Session, account_id: int, deltas: dict[ResourceType, int]) -> None:
    wanted = {r: d for r, d in deltas.items() if d}
    if not wanted:
        return
    account = _load_account(session, account_id)
    rows = _locked_many(session, _owners(account), sorted(wanted))
    for key, row in rows.items():
        delta = wanted[ResourceType(key[2])]
        if row.count < delta:
            log.warning(
                "resource count would go negative",
                extra={"owner": key[:2], "resource_type": ResourceType(key[2]).name},
            )
        row.count = max(0, row.count - delta)
    session.flush()


# --- recounting ------------------------------------------------------------------------------

Counter = Callable[[Session, Account], int]
_COUNTERS: dict[ResourceType, Counter] = {}


def register_counter(rtype: ResourceType, counter: Counter) -> None:
    """Modules that own a resource (VMs, volumes, IPs …) say how to count it from the truth."""
    _COUNTERS[rtype] = counter


def true_count(session: Session, account: Account, rtype: ResourceType) -> int:
    """The registered counter, or the stored count for types no module owns yet."""
    counter = _COUNTERS.get(rtype)
    if counter is None:
        return count_of(session, ACCOUNT, account.id, rtype)
    return counter(session, account)


@dataclass(frozen=True)
class CountResult:
    owner_type: str
    owner_id: int
    resource_type: ResourceType
    count: int


def recount_account(session: Session, account: Account, rtype: ResourceType) -> int:
    """Set the account's count from the truth and move its domains' counts by the change."""
    rows = _locked_rows(session, _owners(account), rtype)
    own = rows[(ACCOUNT, account.id)]
    new = true_count(session, account, rtype)
    change = new - own.count
    if change:
        for row in rows.values():
            row.count = max(0, row.count + change)
        session.flush()
    return new


def recount_domain(session: Session, domain: Domain, rtype: ResourceType) -> int:
    """Recount every account below ``domain``, then rebuild each subtree domain as the sum.

    Domain rows are rebuilt rather than moved by differences, so a drifted domain count is
    repaired too; the domains above ``domain`` move by the change of its total.
    """
    subtree = list(
        session.scalars(
            select(Domain).where(
                Domain.path.startswith(domain.path, autoescape=True), Domain.removed.is_(None)
            )
        )
    )
    accounts = list(
        session.scalars(
            select(Account).where(
                Account.domain_id.in_([d.id for d in subtree]), Account.removed.is_(None)
            )
        )
    )
    for account in accounts:
        row = _locked_rows(session, [(ACCOUNT, account.id)], rtype)[(ACCOUNT, account.id)]
        row.count = true_count(session, account, rtype)
    session.flush()
    paths = {d.id: d.path for d in subtree}
    totals = {d.id: 0 for d in subtree}
    for account in accounts:
        n = count_of(session, ACCOUNT, account.id, rtype)
        for d_id, path in paths.items():
            if paths[account.domain_id].startswith(path):
                totals[d_id] += n
    old_top = count_of(session, DOMAIN, domain.id, rtype)
    _write_domain_totals(session, totals, rtype)
    change = totals[domain.id] - old_top
    if change and domain.parent is not None:
        above = [(DOMAIN, d.id) for d in ancestors(domain.parent)]
        for row in _locked_rows(session, above, rtype).values():
            row.count = max(0, row.count + change)
    session.flush()
    return totals[domain.id]


def _write_domain_totals(session: Session, totals: dict[int, int], rtype: ResourceType) -> None:
    owners = [(DOMAIN, d_id) for d_id in totals]
    rows = _locked_rows(session, owners, rtype)
    for (_, d_id), row in rows.items():
        row.count = totals[d_id]


def recalculate(
    session: Session,
    domain: Domain,
    account: Account | None = None,
    rtype: ResourceType | None = None,
) -> list[CountResult]:
    """updateResourceCount: recount one account, or a whole domain subtree, per type."""
    types = [rtype] if rtype is not None else list(ResourceType)
    out: list[CountResult] = []
    for t in types:
        if account is not None:
            out.append(CountResult(ACCOUNT, account.id, t, recount_account(session, account, t)))
        else:
            out.append(CountResult(DOMAIN, domain.id, t, recount_domain(session, domain, t)))
    return out


# --- an account's totals, as listAccounts shows them ----------------------------------------

# CloudStack's AccountResponse prefixes per resource type (vmlimit, vmtotal, vmavailable …).
ACCOUNT_FIELD_PREFIX = {
    ResourceType.user_vm: "vm",
    ResourceType.public_ip: "ip",
    ResourceType.volume: "volume",
    ResourceType.snapshot: "snapshot",
    ResourceType.template: "template",
    ResourceType.project: "project",
    ResourceType.network: "network",
    ResourceType.vpc: "vpc",
    ResourceType.cpu: "cpu",
    ResourceType.memory: "memory",
    ResourceType.primary_storage: "primarystorage",
    ResourceType.secondary_storage: "secondarystorage",
}


def _shown(rtype: ResourceType, count: int) -> int | float:
    """Storage totals are GiB on the wire (secondary as a fraction, as CloudStack shows)."""
    if rtype is ResourceType.primary_storage:
        return count // GIB
    if rtype is ResourceType.secondary_storage:
        return round(count / GIB, 2)
    return count


def account_totals(
    session: Session, accounts: Sequence[Account], store: ConfigStore | None = None
) -> dict[int, dict[str, Any]]:
    """``<type>limit``, ``<type>total`` and ``<type>available`` per account, counts batched."""
    ids = [a.id for a in accounts]
    stored: dict[tuple[int, int], int] = {}
    if ids:
        for owner_id, rtype_no, count in session.execute(
            select(ResourceCount.owner_id, ResourceCount.resource_type, ResourceCount.count).where(
                ResourceCount.owner_type == ACCOUNT, ResourceCount.owner_id.in_(ids)
            )
        ):
            stored[(owner_id, rtype_no)] = int(count)
    out: dict[int, dict[str, Any]] = {}
    for account in accounts:
        fields: dict[str, Any] = {}
        for rtype, prefix in ACCOUNT_FIELD_PREFIX.items():
            count = stored.get((account.id, int(rtype)), 0)
            limit = account_limit(session, account, rtype, store)
            fields[f"{prefix}total"] = _shown(rtype, count)
            if limit == UNLIMITED:
                fields[f"{prefix}limit"] = fields[f"{prefix}available"] = "Unlimited"
            else:
                fields[f"{prefix}limit"] = str(limit)
                left = max(0, rtype.to_count_units(limit) - count)
                fields[f"{prefix}available"] = str(_shown(rtype, left))
        out[account.id] = fields
    return out
