"""SSH key pairs: createSSHKeyPair, registerSSHKeyPair, listSSHKeyPairs, deleteSSHKeyPair.

CloudStack names the object ``keypair`` in create/register replies and ``sshkeypair`` in
lists (libcloud reads exactly those keys). A generated private key appears in the create
reply only; it is never stored.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any

from sqlalchemy import Select, select

from cumulo.api.cloudstack.registry import Kind, Param, UUIDStr, command
from cumulo.api.cloudstack.results import Ctx, Listing, Success
from cumulo.db.models import Account, Domain
from cumulo.db.models_catalog import SshKeyPair
from cumulo.services.catalog import sshkeys as svc
from cumulo.services.catalog.owners import resolve_owner

KEYPAIR_FIELDS = ("id", "name", "fingerprint", "account", "domainid", "domain")

OwnerAccount = Annotated[
    str | None,
    Param("an optional account for the ssh key. Must be used with domainId."),
]
OwnerDomain = Annotated[
    UUIDStr | None,
    Param(
        "an optional domainId for the ssh key. If the account parameter is used, domainId "
        "must also be used.",
        entity="Domain",
    ),
]
OwnerProject = Annotated[
    UUIDStr | None, Param("an optional project for the ssh key", entity="Project")
]
KeyName = Annotated[str, Param("Name of the keypair", required=True)]


def keypair_response(row: Any) -> dict[str, Any]:
    return {
        "id": row.uuid,
        "name": row.name,
        "fingerprint": row.fingerprint,
        "account": row.account,
        "domainid": row.domainid,
        "domain": row.domain,
        "hasannotations": False,
    }


@cache
def keypairs_select() -> Select[*tuple[Any, ...]]:
    return (
        select(
            SshKeyPair.id,
            SshKeyPair.uuid,
            SshKeyPair.name,
            SshKeyPair.fingerprint,
            Account.name.label("account"),
            Domain.uuid.label("domainid"),
            Domain.name.label("domain"),
        )
        .join(Account, Account.id == SshKeyPair.account_id)
        .join(Domain, Domain.id == SshKeyPair.domain_id)
    )


def render(ctx: Ctx, pair: SshKeyPair) -> dict[str, Any]:
    ctx.session.flush()
    row = ctx.session.execute(keypairs_select().where(SshKeyPair.id == pair.id)).one()
    ctx.event_resource = (pair.uuid, pair.name)
    return keypair_response(row)


@command(
    "createSSHKeyPair",
    description="Create a new keypair and returns the private key",
    response="keypair",
    event="REGISTER.SSH.KEYPAIR",
    entity="SSHKeyPair",
    fields=(*KEYPAIR_FIELDS, "privatekey"),
)
def create_ssh_key_pair(
    ctx: Ctx,
    name: KeyName,
    account: OwnerAccount = None,
    domainid: OwnerDomain = None,
    projectid: OwnerProject = None,
) -> dict[str, Any]:
    """CloudStack has no event type of its own for a generated pair: it is a registration."""
    owner = resolve_owner(ctx.session, ctx.caller, account, domainid, projectid)
    pair, private = svc.create(ctx.session, owner, name)
    return {**render(ctx, pair), "privatekey": private}


@command(
    "registerSSHKeyPair",
    description="Register a public key in a keypair under a certain name",
    response="keypair",
    event="REGISTER.SSH.KEYPAIR",
    entity="SSHKeyPair",
    fields=KEYPAIR_FIELDS,
)
def register_ssh_key_pair(
    ctx: Ctx,
    name: KeyName,
    publickey: Annotated[
        str, Param("Public key material of the keypair", required=True, length=5120)
    ],
    account: OwnerAccount = None,
    domainid: OwnerDomain = None,
    projectid: OwnerProject = None,
) -> dict[str, Any]:
    owner = resolve_owner(ctx.session, ctx.caller, account, domainid, projectid)
    return render(ctx, svc.register(ctx.session, owner, name, publickey))


@command(
    "listSSHKeyPairs",
    kind=Kind.LIST,
    description="List registered keypairs",
    response="sshkeypair",
    scoped=True,
    fields=KEYPAIR_FIELDS,
)
def list_ssh_key_pairs(
    ctx: Ctx,
    id: Annotated[UUIDStr | None, Param("the ID of the ssh keypair", since="4.13")] = None,
    name: Annotated[str | None, Param("A key pair name to look for")] = None,
    fingerprint: Annotated[str | None, Param("A public key fingerprint to look for")] = None,
    projectid: OwnerProject = None,
) -> Listing:
    if projectid is not None:
        return Listing([], 0)  # no projects exist, so none of them owns a key
    stmt = keypairs_select().where(ctx.scope.where(SshKeyPair.account_id, Domain.path))
    if id is not None:
        stmt = stmt.where(SshKeyPair.uuid == id)
    if name is not None:
        stmt = stmt.where(SshKeyPair.name == name)
    if fingerprint is not None:
        stmt = stmt.where(SshKeyPair.fingerprint == fingerprint.lower())
    if ctx.paging.keyword:
        stmt = stmt.where(SshKeyPair.name.ilike(f"%{ctx.paging.keyword}%"))
    rows, total = ctx.page_records(stmt.order_by(SshKeyPair.id))
    return Listing([keypair_response(r) for r in rows], total)


@command(
    "deleteSSHKeyPair",
    description="Deletes a keypair by name",
    entity="SSHKeyPair",
)
def delete_ssh_key_pair(
    ctx: Ctx,
    name: KeyName,
    account: Annotated[
        str | None,
        Param("the account associated with the keypair. Must be used with the domainId parameter."),
    ] = None,
    domainid: Annotated[
        UUIDStr | None, Param("the domain ID associated with the keypair", entity="Domain")
    ] = None,
    projectid: Annotated[
        UUIDStr | None, Param("the project associated with keypair", entity="Project")
    ] = None,
) -> Success:
    owner = resolve_owner(ctx.session, ctx.caller, account, domainid, projectid)
    svc.delete(ctx.session, owner, name)
    return Success()
