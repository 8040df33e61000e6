"""Global settings: listConfigurations, updateConfiguration, resetConfiguration.

Definitions live in code (``services/config.py``); the table holds only what an operator
set, per scope. A value is read at the narrowest scope that has one: account, then its domain
and that domain's parents, then global, then the default. Each server caches values for a few
seconds, so a change reaches the other servers of a farm within that time (this one at once).
"""

from __future__ import annotations

from typing import Annotated, Any

from cumulo.api.cloudstack.registry import Kind, Param, UUIDStr, command
from cumulo.api.cloudstack.results import Ctx, Listing
from cumulo.db.models_infra import Cluster
from cumulo.services import config
from cumulo.services.access import ADMINS, ROOT_ADMIN
from cumulo.services.config import ConfigKey, Scope
from cumulo.services.errors import ParamError
from cumulo.services.infra.pods import cluster_settings, find_cluster, set_cluster_setting

CONFIG_FIELDS = (
    "name",
    "value",
    "defaultvalue",
    "category",
    "description",
    "scope",
    "isdynamic",
    "type",
    "displaytext",
    "component",
    "group",
    "subgroup",
    "parent",
)


def config_response(key: ConfigKey, value: str, scope: Scope) -> dict[str, Any]:
    """CloudStack's ConfigurationResponse. Its ``id`` is a Java Long that clients parse as a
    number (the Go SDK does), so the scope entity is not shown there; ``scope`` names it."""
    return {
        "name": key.name,
        "value": value,
        "defaultvalue": key.default,
        "category": key.category,
        "description": key.description,
        "scope": scope.name if scope.name != "global" else key.scope,
        "isdynamic": key.dynamic,
        "type": key.wire_type,
        "displaytext": key.display,
        "component": key.component,
        "group": key.group,
        "subgroup": key.subgroup,
        "parent": key.parent,
    }


def _scope_param(verb: str, label: str, entity: str | None = None) -> Param:
    """One of the six scope ids that list, update and reset take; CloudStack words them all
    alike (listConfigurations too says "update"), only the verb and the scope differ."""
    return Param(
        f"the ID of the {label} to {verb} the parameter value for corresponding {label.lower()}",
        entity=entity or label,
    )


def resolve(ctx: Ctx, **named: str | None) -> Scope:
    """The scope a request names (account, domain, zone, cluster, storagepool or imagestore:
    at most one), after checking the caller may see or touch it."""
    picked = config.pick_scope(named)
    if picked is None:
        return Scope()
    name, uuid = picked
    if name == "account":
        scope, account = config.account_scope(ctx.session, uuid)
        ctx.caller.check_account(account)
        return scope
    if name == "domain":
        scope, domain = config.domain_scope(ctx.session, uuid)
        ctx.caller.check_domain(domain)
        return scope
    if name == "cluster":
        cluster = find_cluster(ctx.session, uuid)
        return Scope("cluster", cluster.id, cluster.uuid, own=cluster_settings(cluster))
    # No setting here is per zone, pool or image store (yet).
    return Scope(name=name, uuid=uuid)


def _write(ctx: Ctx, key: ConfigKey, scope: Scope, value: str | None) -> None:
    """Cluster values live on the cluster's row (placement reads them there); a reset puts
    the global value back on it."""
    where, scope_id = _written_scope(ctx, key, scope)
    if where != "cluster":
        ctx.runtime.config.set(ctx.session, key, value, where, scope_id)
        return
    cluster = ctx.session.get_one(Cluster, scope_id)
    if value is None:
        value = Scope().value(ctx.session, ctx.runtime.config, key)
    set_cluster_setting(cluster, key.name, value)
    ctx.session.flush()


def _matches(
    key: ConfigKey,
    scope: Scope,
    name: str | None,
    category: str | None,
    keyword: str | None,
    group: str | None,
    subgroup: str | None,
    parent: str | None,
) -> bool:
    """listConfigurations' filters: name and keyword match parts, the others whole words."""
    if scope.name != "global" and scope.name not in key.scopes:
        return False
    if name is not None and name.lower() not in key.name.lower():
        return False
    if category is not None and category.lower() != key.category.lower():
        return False
    if group is not None and group.lower() != key.group.lower():
        return False
    if subgroup is not None and subgroup.lower() != key.subgroup.lower():
        return False
    if parent is not None and parent != key.parent:
        return False
    if keyword:
        text = " ".join((key.name, key.category, key.description)).lower()
        return keyword.lower() in text
    return True


def _page(ctx: Ctx, items: list[dict[str, Any]], unlimited: bool) -> Listing:
    p = ctx.paging
    if unlimited or p.pagesize is None:
        return Listing(items, len(items))
    start = ((p.page or 1) - 1) * p.pagesize
    return Listing(items[start : start + p.pagesize], len(items))


@command(
    "listConfigurations",
    kind=Kind.LIST,
    description="Lists all configurations.",
    response="configuration",
    roles=ADMINS,
    fields=CONFIG_FIELDS,
    since="1.0",
)
def list_configurations(
    ctx: Ctx,
    name: Annotated[str | None, Param("lists configuration by name")] = None,
    category: Annotated[str | None, Param("lists configurations by category")] = None,
    accountid: Annotated[UUIDStr | None, _scope_param("update", "Account")] = None,
    domainid: Annotated[UUIDStr | None, _scope_param("update", "Domain")] = None,
    zoneid: Annotated[UUIDStr | None, _scope_param("update", "Zone")] = None,
    clusterid: Annotated[UUIDStr | None, _scope_param("update", "Cluster")] = None,
    storageid: Annotated[
        UUIDStr | None, _scope_param("update", "Storage pool", "StoragePool")
    ] = None,
    imagestoreuuid: Annotated[
        UUIDStr | None, _scope_param("update", "Image Store", "ImageStore")
    ] = None,
    group: Annotated[
        str | None,
        Param("lists configuration by group name (primarily used for UI)", since="4.18.0"),
    ] = None,
    subgroup: Annotated[
        str | None,
        Param("lists configuration by subgroup name (primarily used for UI)", since="4.18.0"),
    ] = None,
    parent: Annotated[
        str | None,
        Param("lists configuration by parent name (primarily used for UI)", since="4.18.0"),
    ] = None,
) -> Listing:
    if subgroup and not group:
        raise ParamError("Configuration group name must be specified with the subgroup name")
    scope = resolve(
        ctx,
        account=accountid,
        domain=domainid,
        zone=zoneid,
        cluster=clusterid,
        storagepool=storageid,
        imagestore=imagestoreuuid,
    )
    keys = sorted(
        (
            k
            for k in config.KEYS.values()
            if _matches(k, scope, name, category, ctx.paging.keyword, group, subgroup, parent)
        ),
        key=lambda k: k.name,
    )
    store = ctx.runtime.config
    items = [config_response(k, scope.value(ctx.session, store, k), scope) for k in keys]
    # CloudStack answers a group's settings in one page: the UI shows a group at once.
    return _page(ctx, items, unlimited=bool(group))


def _written_scope(ctx: Ctx, key: ConfigKey, scope: Scope) -> tuple[str, int]:
    if scope.name in config.UNSUPPORTED_SCOPES or scope.name not in key.scopes:
        raise ParamError(f"Configuration {key.name} cannot be set at the {scope.name} scope")
    return scope.name, scope.id


@command(
    "updateConfiguration",
    description="Updates a configuration.",
    response="configuration",
    roles=ROOT_ADMIN,
    event="CONFIGURATION.VALUE.EDIT",
    entity="Configuration",
    fields=CONFIG_FIELDS,
    since="1.0",
)
def update_configuration(
    ctx: Ctx,
    name: Annotated[str, Param("the name of the configuration", required=True)],
    value: Annotated[str | None, Param("the value of the configuration", length=4096)] = None,
    accountid: Annotated[UUIDStr | None, _scope_param("update", "Account")] = None,
    domainid: Annotated[UUIDStr | None, _scope_param("update", "Domain")] = None,
    zoneid: Annotated[UUIDStr | None, _scope_param("update", "Zone")] = None,
    clusterid: Annotated[UUIDStr | None, _scope_param("update", "Cluster")] = None,
    storageid: Annotated[
        UUIDStr | None, _scope_param("update", "Storage pool", "StoragePool")
    ] = None,
    imagestoreuuid: Annotated[
        UUIDStr | None, _scope_param("update", "Image Store", "ImageStore")
    ] = None,
) -> dict[str, Any]:
    key = config.find_key(name)
    if value is None:
        raise ParamError(f"Empty value is not allowed for configuration {name}")
    scope = resolve(
        ctx,
        account=accountid,
        domain=domainid,
        zone=zoneid,
        cluster=clusterid,
        storagepool=storageid,
        imagestore=imagestoreuuid,
    )
    _write(ctx, key, scope, value)
    ctx.event_resource = (scope.uuid, key.name)
    return config_response(key, value, scope)


@command(
    "resetConfiguration",
    description="Resets a configuration. The configuration will be set to default value for "
    "global setting, and removed from account and domain level settings.",
    response="configuration",
    roles=ROOT_ADMIN,
    event="CONFIGURATION.VALUE.EDIT",
    entity="Configuration",
    fields=CONFIG_FIELDS,
    since="4.16.0",
)
def reset_configuration(
    ctx: Ctx,
    name: Annotated[str, Param("the name of the configuration", required=True)],
    accountid: Annotated[UUIDStr | None, _scope_param("reset", "Account")] = None,
    domainid: Annotated[UUIDStr | None, _scope_param("reset", "Domain")] = None,
    zoneid: Annotated[UUIDStr | None, _scope_param("reset", "Zone")] = None,
    clusterid: Annotated[UUIDStr | None, _scope_param("reset", "Cluster")] = None,
    storageid: Annotated[
        UUIDStr | None, _scope_param("reset", "Storage pool", "StoragePool")
    ] = None,
    imagestoreid: Annotated[
        UUIDStr | None, _scope_param("reset", "Image Store", "ImageStore")
    ] = None,
) -> dict[str, Any]:
    key = config.find_key(name)
    scope = resolve(
        ctx,
        account=accountid,
        domain=domainid,
        zone=zoneid,
        cluster=clusterid,
        storagepool=storageid,
        imagestore=imagestoreid,
    )
    _write(ctx, key, scope, None)
    ctx.session.flush()
    if scope.name == "cluster":
        scope = resolve(ctx, cluster=scope.uuid)
    ctx.event_resource = (scope.uuid, key.name)
    return config_response(key, scope.value(ctx.session, ctx.runtime.config, key), scope)
