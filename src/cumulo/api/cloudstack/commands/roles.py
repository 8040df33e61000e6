"""Dynamic roles and their ordered allow/deny rules (CloudStack 4.9+ role commands).

Only root admins manage roles (CloudStack's ``authorized = {Admin}``); domain admins may
list roles, but never see Admin-type ones. Every change drops the role's cached rules so
this server applies it at once (other servers within RuleCache's few seconds).
"""

from __future__ import annotations

from typing import Annotated, Any

from sqlalchemy import select

from cumulo.api.cloudstack.registry import Kind, Param, UUIDStr, command
from cumulo.api.cloudstack.results import Ctx, Listing, Success
from cumulo.db.models import Role, RolePermission
from cumulo.services.access import ADMINS, ROOT_ADMIN, RoleType
from cumulo.services.errors import ParamError
from cumulo.services.identity import roles as role_service

ROLE_FIELDS = ("id", "name", "type", "description", "isdefault", "ispublic", "state")
PERMISSION_FIELDS = ("id", "roleid", "rolename", "rule", "permission", "description")
TYPE_HELP = "The type of the role, valid options are: Admin, ResourceAdmin, DomainAdmin, User"


def role_response(role: Role) -> dict[str, Any]:
    return {
        "id": role.uuid,
        "name": role.name,
        "type": role.type,
        "description": role.description,
        "isdefault": role.is_default,
        # Cumulo has no private or disabled roles: every role is public and enabled.
        "ispublic": True,
        "state": "enabled",
    }


def permission_response(perm: RolePermission, role: Role) -> dict[str, Any]:
    return {
        "id": perm.uuid,
        "roleid": role.uuid,
        "rolename": role.name,
        "rule": perm.rule,
        "permission": perm.permission,
        "description": perm.description,
    }


def _changed(ctx: Ctx, role: Role) -> None:
    """Rules are cached per role, and callers (with their role type) per api key."""
    ctx.runtime.rules.forget(role.id)
    ctx.runtime.key_cache.forget_all()


@command(
    "listRoles",
    kind=Kind.LIST,
    description="Lists dynamic roles in CloudStack",
    response="role",
    roles=ADMINS,
    fields=ROLE_FIELDS,
    since="4.9.0",
)
def list_roles(
    ctx: Ctx,
    id: Annotated[UUIDStr | None, Param("List role by role ID.", entity="Role")] = None,
    name: Annotated[str | None, Param("List role by role name.")] = None,
    type: Annotated[
        str | None,
        Param(
            "List role by role type, valid options are: Admin, ResourceAdmin, DomainAdmin, User."
        ),
    ] = None,
) -> Listing:
    stmt = select(Role).where(Role.removed.is_(None))
    if not ctx.caller.is_root_admin:
        stmt = stmt.where(Role.type != RoleType.ADMIN.value)
    if id is not None:
        stmt = stmt.where(Role.uuid == id)
    if name is not None:
        stmt = stmt.where(Role.name == name)
    if type is not None:
        stmt = stmt.where(Role.type == role_service.parse_role_type(type).value)
    if ctx.paging.keyword:
        stmt = stmt.where(Role.name.ilike(f"%{ctx.paging.keyword}%"))
    rows, total = ctx.page(stmt.order_by(Role.id))
    return Listing([role_response(r) for r in rows], total)


@command(
    "createRole",
    description="Creates a role",
    response="role",
    roles=ROOT_ADMIN,
    event="ROLE.CREATE",
    entity="Role",
    fields=ROLE_FIELDS,
    since="4.9.0",
)
def create_role(
    ctx: Ctx,
    name: Annotated[str, Param("Creates a role with this unique name", required=True)],
    type: Annotated[str | None, Param(TYPE_HELP)] = None,
    roleid: Annotated[
        UUIDStr | None,
        Param(
            "ID of the role to be cloned from. Either roleid or type must be passed in",
            entity="Role",
            since="4.15.0",
        ),
    ] = None,
    description: Annotated[str | None, Param("The description of the role")] = None,
) -> dict[str, Any]:
    source = role_service.find_role(ctx.session, ctx.caller, roleid) if roleid else None
    role = role_service.create_role(
        ctx.session,
        name,
        type=role_service.parse_role_type(type) if type else None,
        clone_from=source,
        description=description,
    )
    return role_response(role)


@command(
    "updateRole",
    description="Updates a role",
    response="role",
    roles=ROOT_ADMIN,
    event="ROLE.UPDATE",
    entity="Role",
    fields=ROLE_FIELDS,
    since="4.9.0",
)
def update_role(
    ctx: Ctx,
    id: Annotated[UUIDStr, Param("ID of the role", required=True, entity="Role")],
    name: Annotated[str | None, Param("creates a role with this unique name")] = None,
    type: Annotated[str | None, Param(TYPE_HELP)] = None,
    description: Annotated[str | None, Param("The description of the role")] = None,
) -> dict[str, Any]:
    role = role_service.find_role(ctx.session, ctx.caller, id)
    role_service.update_role(
        ctx.session,
        role,
        name=name,
        type=role_service.parse_role_type(type) if type else None,
        description=description,
    )
    _changed(ctx, role)
    return role_response(role)


@command(
    "deleteRole",
    description="Deletes a role",
    roles=ROOT_ADMIN,
    event="ROLE.DELETE",
    entity="Role",
    since="4.9.0",
)
def delete_role(
    ctx: Ctx, id: Annotated[UUIDStr, Param("ID of the role", required=True, entity="Role")]
) -> Success:
    role = role_service.find_role(ctx.session, ctx.caller, id)
    role_service.delete_role(ctx.session, role)
    _changed(ctx, role)
    ctx.event_resource = (role.uuid, role.name)
    return Success()


@command(
    "createRolePermission",
    description="Adds an API permission to a role",
    response="rolepermission",
    roles=ROOT_ADMIN,
    event="ROLE.PERMISSION.CREATE",
    entity="RolePermission",
    fields=PERMISSION_FIELDS,
    since="4.9.0",
)
def create_role_permission(
    ctx: Ctx,
    roleid: Annotated[UUIDStr, Param("ID of the role", required=True, entity="Role")],
    rule: Annotated[str, Param("The API name or wildcard rule such as list*", required=True)],
    permission: Annotated[
        str, Param("The rule permission, allow or deny. Default: deny.", required=True)
    ],
    description: Annotated[str | None, Param("The description of the role permission")] = None,
) -> dict[str, Any]:
    role = role_service.find_role(ctx.session, ctx.caller, roleid)
    perm = role_service.add_permission(ctx.session, role, rule, permission, description)
    _changed(ctx, role)
    ctx.event_resource = (perm.uuid, perm.rule)
    return permission_response(perm, role)


@command(
    "listRolePermissions",
    description="Lists role permissions",
    response="rolepermission",
    roles=ROOT_ADMIN,
    fields=PERMISSION_FIELDS,
    since="4.9.0",
)
def list_role_permissions(
    ctx: Ctx,
    roleid: Annotated[UUIDStr | None, Param("ID of the role", entity="Role")] = None,
) -> Listing:
    """A plain (unpaged) list in CloudStack: rules in the order they are evaluated."""
    stmt = (
        select(RolePermission, Role)
        .join(Role, RolePermission.role_id == Role.id)
        .where(Role.removed.is_(None))
    )
    if roleid is not None:
        role = role_service.find_role(ctx.session, ctx.caller, roleid)
        stmt = stmt.where(Role.id == role.id)
    rows = ctx.session.execute(
        stmt.order_by(Role.id, RolePermission.sort_order, RolePermission.id)
    ).all()
    return Listing([permission_response(p, r) for p, r in rows], len(rows))


@command(
    "updateRolePermission",
    description="Updates a role permission order",
    roles=ROOT_ADMIN,
    event="ROLE.PERMISSION.UPDATE",
    entity="Role",
    since="4.9.0",
)
def update_role_permission(
    ctx: Ctx,
    roleid: Annotated[UUIDStr, Param("ID of the role", required=True, entity="Role")],
    ruleorder: Annotated[
        list[UUIDStr] | None,
        Param(
            "The parent role permission uuid, use 0 to move this rule at the top of the list",
            entity="RolePermission",
        ),
    ] = None,
    ruleid: Annotated[
        UUIDStr | None,
        Param("Role permission rule id", entity="RolePermission", since="4.11"),
    ] = None,
    permission: Annotated[
        str | None, Param("Rule permission, can be: allow or deny", since="4.11")
    ] = None,
) -> Success:
    """Either a complete new order of the role's rules, or one rule's allow/deny flipped."""
    role = role_service.find_role(ctx.session, ctx.caller, roleid)
    if ruleorder is not None:
        if ruleid is not None or permission is not None:
            raise ParamError(
                "Parameters permission and ruleid must be mutually exclusive with ruleorder"
            )
        role_service.reorder_permissions(ctx.session, role, [str(u) for u in ruleorder])
    elif ruleid is not None and permission is not None:
        role_service.set_permission(ctx.session, role, ruleid, permission)
    else:
        raise ParamError("Either ruleorder, or ruleid together with permission, must be given")
    _changed(ctx, role)
    ctx.event_resource = (role.uuid, role.name)
    return Success()


@command(
    "deleteRolePermission",
    description="Deletes a role permission",
    roles=ROOT_ADMIN,
    event="ROLE.PERMISSION.DELETE",
    entity="RolePermission",
    since="4.9.0",
)
def delete_role_permission(
    ctx: Ctx,
    id: Annotated[
        UUIDStr, Param("ID of the role permission", required=True, entity="RolePermission")
    ],
) -> Success:
    perm, role = role_service.delete_permission(ctx.session, ctx.caller, id)
    _changed(ctx, role)
    ctx.event_resource = (perm.uuid, perm.rule)
    return Success()
