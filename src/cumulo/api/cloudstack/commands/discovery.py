"""listApis and listCapabilities: what a client may call, and what the cloud offers."""

from __future__ import annotations

from typing import Annotated, Any

from cumulo import CLOUDSTACK_VERSION
from cumulo.api.cloudstack.registry import REGISTRY, CommandSpec, Param, command
from cumulo.api.cloudstack.results import Ctx, Listing
from cumulo.services import config
from cumulo.services.errors import ParamError


def api_entry(spec: CommandSpec) -> dict[str, Any]:
    params = [
        {
            "name": p.name,
            "description": p.meta.description,
            "type": p.type,
            "length": p.meta.length,
            "required": p.meta.required,
            "since": p.meta.since,
            "related": p.meta.entity and f"list{p.meta.entity}s",
        }
        for p in spec.params.values()
    ]
    return {
        "name": spec.name,
        "description": spec.description,
        "since": spec.since,
        "isasync": spec.kind.is_async,
        "related": ",".join(spec.related) or None,
        "params": params,
        "response": [
            {"name": f.name, "description": f.description, "type": f.type} for f in spec.fields
        ],
        "type": spec.kind.value,
    }


@command(
    "listApis",
    description="lists all available apis on the server, provided by the Api Discovery plugin",
    response="api",
    since="4.1.0",
    fields=("name", "description", "since", "isasync", "related", "params", "response"),
)
def list_apis(ctx: Ctx, name: Annotated[str | None, Param("API name")] = None) -> Listing:
    visible = [
        spec
        for spec in sorted(REGISTRY.values(), key=lambda s: s.name.lower())
        if ctx.caller.role_type in spec.roles
        and ctx.runtime.rules.permits(ctx.session, ctx.caller.role_id, spec.name)
    ]
    if name is not None:
        visible = [s for s in visible if s.name.lower() == name.lower()]
        if not visible:
            raise ParamError(
                f"Api Discovery plugin was unable to find an api by that name or "
                f"api is not available for user: {name}"
            )
    return Listing([api_entry(s) for s in visible], len(visible))


@command(
    "listCapabilities",
    description="Lists capabilities",
    response="capability",
    since="2.2.0",
    fields=("cloudstackversion", "apilimitinterval", "apilimitmax", "defaultuipagesize"),
)
def list_capabilities(ctx: Ctx) -> dict[str, Any]:
    cfg, s = ctx.runtime.config, ctx.session
    return {
        "securitygroupsenabled": cfg.get(s, config.SECURITY_GROUPS_ENABLED),
        "dynamicrolesenabled": True,
        "cloudstackversion": CLOUDSTACK_VERSION,
        "userpublictemplateenabled": True,
        "supportELB": "false",
        "projectinviterequired": False,
        "allowusercreateprojects": True,
        "customdiskofferingminsize": 1,
        "customdiskofferingmaxsize": 1024,
        "regionsecondaryenabled": False,
        "apilimitinterval": cfg.get(s, config.THROTTLE_INTERVAL),
        "apilimitmax": cfg.get(s, config.THROTTLE_MAX),
        "kvmsnapshotenabled": True,
        "allowuserviewdestroyedvm": cfg.get(
            s, config.ALLOW_USER_VIEW_DESTROYED_VM, account_id=ctx.caller.account_id
        ),
        "allowuserexpungerecovervm": cfg.get(
            s, config.ALLOW_USER_EXPUNGE_RECOVER_VM, account_id=ctx.caller.account_id
        ),
        "kubernetesserviceenabled": False,
        "defaultuipagesize": 20,
    }
