"""Resource limits and counts: listResourceLimits, updateResourceLimit, updateResourceCount.

The behaviour (which limit applies, how counts move and are rebuilt) lives in
``services/limits.py``; here are the CloudStack rules about who may ask what, and the shapes.
Limits of storage types are GiB on the wire; counts of them are bytes, as in CloudStack.
"""

from __future__ import annotations

from typing import Annotated, Any

from cumulo.api.cloudstack.registry import Kind, Param, UUIDStr, command
from cumulo.api.cloudstack.results import Ctx, Listing
from cumulo.db.models import Account, Domain, ResourceLimit
from cumulo.services import limits
from cumulo.services.access import ADMINS, AccountType, Caller, find_domain
from cumulo.services.errors import ParamError, PermissionDenied
from cumulo.services.identity.accounts import find_account_by_name
from cumulo.services.limits import ACCOUNT, DOMAIN, ResourceType

TYPE_HELP = (
    "Type of resource. Values are 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 and 11. "
    "0 - Instance. Number of instances a user can create. "
    "1 - IP. Number of public IP addresses an account can own. "
    "2 - Volume. Number of disk volumes an account can own. "
    "3 - Snapshot. Number of snapshots an account can own. "
    "4 - Template. Number of templates an account can register/create. "
    "5 - Project. Number of projects an account can own. "
    "6 - Network. Number of networks an account can own. "
    "7 - VPC. Number of VPC an account can own. "
    "8 - CPU. Number of CPU an account can allocate for their resources. "
    "9 - Memory. Amount of RAM an account can allocate for their resources. "
    "10 - PrimaryStorage. Total primary storage space (in GiB) a user can use. "
    "11 - SecondaryStorage. Total secondary storage space (in GiB) a user can use."
)
LIMIT_FIELDS = ("account", "domainid", "domain", "resourcetype", "resourcetypename", "max")
COUNT_FIELDS = (
    "account",
    "domainid",
    "domain",
    "resourcetype",
    "resourcetypename",
    "resourcecount",
)


def _owner_fields(account: Account | None, domain: Domain) -> dict[str, Any]:
    return {
        "account": account.name if account is not None else None,
        "domainid": domain.uuid,
        "domain": domain.name,
    }


def limit_response(
    account: Account | None, domain: Domain, rtype: ResourceType, max: int
) -> dict[str, Any]:
    """resourcetype is the ordinal as a string, as CloudStack's ResourceLimitResponse has it."""
    return {
        **_owner_fields(account, domain),
        "resourcetype": str(int(rtype)),
        "resourcetypename": rtype.name,
        "max": max,
    }


def count_response(
    account: Account | None, domain: Domain, rtype: ResourceType, count: int
) -> dict[str, Any]:
    return {
        **_owner_fields(account, domain),
        "resourcetype": str(int(rtype)),
        "resourcetypename": rtype.name,
        "resourcecount": count,
    }


# --- listResourceLimits ----------------------------------------------------------------------


def _limit_owner(ctx: Ctx) -> tuple[Account | None, Domain]:
    """Whose limits a list shows: a named account, a named domain, else the caller's account.

    The scope was already checked by the dispatcher (a user naming a domain gets 531); a user
    always sees its own account, as CloudStack's searchForLimits does.
    """
    args = ctx.list_args
    if ctx.caller.role_type not in ADMINS or args["domainid"] is None:
        account = ctx.session.get(Account, ctx.caller.account_id)
        assert account is not None
        return account, account.domain
    domain = find_domain(ctx.session, args["domainid"])
    if args["account"] is not None:
        account = find_account_by_name(ctx.session, args["account"], domain)
        return account, domain
    return None, domain


def _limit_of(ctx: Ctx, account: Account | None, domain: Domain, rtype: ResourceType) -> int:
    store = ctx.runtime.config
    if account is not None:
        return limits.account_limit(ctx.session, account, rtype, store)
    return limits.domain_limit(ctx.session, domain, rtype, store)


def _by_row_id(ctx: Ctx, row_id: int) -> Listing:
    """``id`` names a stored limit row (CloudStack exposes its numeric id only here)."""
    row = ctx.session.get(ResourceLimit, row_id)
    if row is None:
        return Listing([], 0)
    if row.owner_type == ACCOUNT:
        account = ctx.session.get(Account, row.owner_id)
        if account is None:
            return Listing([], 0)
        ctx.caller.check_account(account)
        owner: tuple[Account | None, Domain] = (account, account.domain)
    else:
        domain = ctx.session.get(Domain, row.owner_id)
        if domain is None:
            return Listing([], 0)
        ctx.caller.check_domain(domain)
        owner = (None, domain)
    return Listing([limit_response(*owner, ResourceType(row.resource_type), row.max)], 1)


@command(
    "listResourceLimits",
    kind=Kind.LIST,
    description="Lists resource limits.",
    response="resourcelimit",
    scoped=True,
    fields=LIMIT_FIELDS,
    since="1.0",
)
def list_resource_limits(
    ctx: Ctx,
    id: Annotated[int | None, Param("Lists resource limits by ID.")] = None,
    resourcetype: Annotated[int | None, Param(TYPE_HELP)] = None,
    resourcetypename: Annotated[
        str | None,
        Param(
            "Type of resource (wins over resourceType if both are provided). Values are: "
            "user_vm, public_ip, volume, snapshot, template, project, network, vpc, cpu, "
            "memory, primary_storage, secondary_storage"
        ),
    ] = None,
) -> Listing:
    rtype = limits.resource_type(resourcetype, resourcetypename)
    if id is not None:
        return _by_row_id(ctx, id)
    account, domain = _limit_owner(ctx)
    types = [rtype] if rtype is not None else list(ResourceType)
    items = [limit_response(account, domain, t, _limit_of(ctx, account, domain, t)) for t in types]
    p = ctx.paging
    if p.pagesize is None:
        return Listing(items, len(items))
    start = ((p.page or 1) - 1) * p.pagesize
    return Listing(items[start : start + p.pagesize], len(items))


# --- updateResourceLimit ---------------------------------------------------------------------


def _check_max(max: int | None) -> int:
    if max is None:
        return limits.UNLIMITED
    if max < limits.UNLIMITED:
        raise ParamError(
            "Please specify either '-1' for an infinite limit, or a limit that is at least '0'."
        )
    return max


def _account_target(caller: Caller, account: Account, max: int) -> None:
    """Access first, so a domain admin learns nothing about accounts above it."""
    caller.check_account(account)
    if account.id == caller.account_id and caller.is_domain_admin:
        raise PermissionDenied(
            f"Unable to update resource limit for their own account {account.uuid}, "
            "permission denied"
        )
    if account.type == AccountType.ADMIN and max != limits.UNLIMITED:
        raise ParamError(f"Only {limits.UNLIMITED} limit is supported for Root Admin accounts")


def _domain_target(ctx: Ctx, domain: Domain, rtype: ResourceType, max: int) -> None:
    ctx.caller.check_domain(domain)
    if domain.parent_id is None:
        raise PermissionDenied(
            f"Cannot update resource limit for ROOT domain {domain.uuid}, permission denied"
        )
    if domain.id == ctx.caller.domain_id and ctx.caller.is_domain_admin:
        raise PermissionDenied(
            f"Unable to update resource limit for domain {domain.uuid}, permission denied"
        )
    parent = domain.parent
    assert parent is not None
    ceiling = limits.domain_limit(ctx.session, parent, rtype, ctx.runtime.config)
    if ceiling >= 0 and max > ceiling:
        raise ParamError(
            f"Domain {domain.name}(id: {parent.uuid}) has maximum allowed resource limit "
            f"{ceiling} for {rtype.name}, please specify a value less than or equal to {ceiling}"
        )


@command(
    "updateResourceLimit",
    description="Updates resource limits for an account or domain.",
    response="resourcelimit",
    roles=ADMINS,
    fields=LIMIT_FIELDS,
    since="1.0",
)
def update_resource_limit(
    ctx: Ctx,
    resourcetype: Annotated[int, Param("Type of resource to update. " + TYPE_HELP, required=True)],
    max: Annotated[int | None, Param("Maximum resource limit.")] = None,
    account: Annotated[
        str | None,
        Param("Update resource for a specified account. Must be used with the domainId parameter."),
    ] = None,
    domainid: Annotated[
        UUIDStr | None,
        Param(
            "Update resource limits for all accounts in specified domain. If used with the "
            "account parameter, updates resource limits for a specified account in specified "
            "domain.",
            entity="Domain",
        ),
    ] = None,
) -> dict[str, Any]:
    rtype = limits.resource_type(resourcetype)
    assert rtype is not None
    value = _check_max(max)
    if account is not None and domainid is None:
        raise ParamError("account must be specified with domainid")
    if domainid is None:
        raise ParamError(
            "AccountId or domainId have to be specified in order to update resource limit"
        )
    domain = find_domain(ctx.session, domainid)
    ctx.caller.check_domain(domain)
    if account is not None:
        target = find_account_by_name(ctx.session, account, domain)
        _account_target(ctx.caller, target, value)
        limits.set_limit(ctx.session, ACCOUNT, target.id, rtype, value)
        return limit_response(target, domain, rtype, value)
    _domain_target(ctx, domain, rtype, value)
    limits.set_limit(ctx.session, DOMAIN, domain.id, rtype, value)
    return limit_response(None, domain, rtype, value)


# --- updateResourceCount ---------------------------------------------------------------------


@command(
    "updateResourceCount",
    description="Recalculate and update resource count for an account or domain.",
    response="resourcecount",
    roles=ADMINS,
    fields=COUNT_FIELDS,
    since="2.1.0",
)
def update_resource_count(
    ctx: Ctx,
    domainid: Annotated[
        UUIDStr,
        Param(
            "If account parameter specified then updates resource counts for a specified "
            "account in this domain else update resource counts for all accounts & child "
            "domains in specified domain.",
            required=True,
            entity="Domain",
        ),
    ],
    account: Annotated[
        str | None,
        Param(
            "Update resource count for a specified account. Must be used with the domainId "
            "parameter."
        ),
    ] = None,
    resourcetype: Annotated[
        int | None,
        Param(
            "Type of resource to update. If not specified will update all resource counts. "
            + TYPE_HELP
        ),
    ] = None,
) -> Listing:
    rtype = limits.resource_type(resourcetype)
    domain = find_domain(ctx.session, domainid)
    ctx.caller.check_domain(domain)
    target = None
    if account is not None:
        target = find_account_by_name(ctx.session, account, domain)
        ctx.caller.check_account(target)
    counts = limits.recalculate(ctx.session, domain, target, rtype)
    items = [count_response(target, domain, c.resource_type, c.count) for c in counts]
    return Listing(items, len(items))
