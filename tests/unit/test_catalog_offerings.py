"""Offerings as services: which shapes are fixed or custom, which are refused, and who sees
an offering limited to domains (the rule lives in SQL, so it is checked against a database)."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from cumulo.db.models import Domain, User
from cumulo.db.models_catalog import ServiceOffering
from cumulo.services.access import Caller
from cumulo.services.catalog import offerings as svc
from cumulo.services.catalog.offerings import SERVICE, ComputeOptions, ComputeShape
from cumulo.services.errors import ParamError
from cumulo.services.identity import accounts, auth, domains


def test_all_three_values_make_a_fixed_offering() -> None:
    assert svc.check_shape(ComputeShape(2, 1000, 2048)) is False


def test_no_values_or_customized_make_a_custom_offering() -> None:
    assert svc.check_shape(ComputeShape()) is True
    assert svc.check_shape(ComputeShape(cpu_speed=1000, customized=True)) is True
    assert svc.check_shape(ComputeShape(min_cpu_number=1, max_cpu_number=8)) is True


@pytest.mark.parametrize(
    "shape",
    [
        ComputeShape(cpu_number=1, memory=512),  # cpuspeed missing
        ComputeShape(customized=False),  # fixed with nothing
        ComputeShape(2, 1000, 2048, customized=True),  # custom takes no cpunumber
        ComputeShape(2, 1000, 16),  # below 32 MiB
        ComputeShape(0, 1000, 512),
        ComputeShape(2, 1000, 2048, min_cpu_number=1, max_cpu_number=2),  # bounds on fixed
        ComputeShape(min_cpu_number=1),  # half a bound
        ComputeShape(min_memory=4096, max_memory=1024),
        ComputeShape(2, 0, 512),
    ],
)
def test_bad_shapes_are_refused(shape: ComputeShape) -> None:
    with pytest.raises(ParamError):
        svc.check_shape(shape)


def test_disk_sizes() -> None:
    svc.check_disk_size(5, False)
    svc.check_disk_size(None, True)
    for size, customized in ((None, False), (0, False), (5, True), (-1, False)):
        with pytest.raises(ParamError):
            svc.check_disk_size(size, customized)


def test_tags_and_choices_are_normalised() -> None:
    assert svc.normal_tags(" a, b ,,c ") == "a,b,c"
    assert svc.normal_tags(" , ") is None
    assert svc.check_choice("LOCAL", svc.STORAGE_TYPES, "storagetype") == "local"
    assert svc.check_choice(None, svc.STORAGE_TYPES, "storagetype") == "shared"
    with pytest.raises(ParamError):
        svc.check_choice("nfs", svc.STORAGE_TYPES, "storagetype")


def test_ancestor_paths() -> None:
    assert svc.ancestor_paths("/") == ["/"]
    assert svc.ancestor_paths("/a/b/") == ["/", "/a/", "/a/b/"]


def _caller(session: Session, domain: Domain, kind: int) -> Caller:
    admin_id = session.scalar(select(User.id).where(User.username == "admin"))
    assert admin_id is not None
    admin = auth.caller_by_user_id(session, admin_id)
    assert admin is not None
    name = f"acct{domain.id}k{kind}"
    new = accounts.NewAccount(
        username=name,
        password="pw",
        firstname="F",
        lastname="L",
        email="x@example.org",
        account_type=kind,
        role_uuid=None,
    )
    account = accounts.create_account(session, admin, domain, new)
    user_id = session.scalar(select(User.id).where(User.account_id == account.id))
    assert user_id is not None
    caller = auth.caller_by_user_id(session, user_id)
    assert caller is not None
    return caller


def _visible(session: Session, caller: Caller) -> set[str]:
    o = ServiceOffering
    stmt = select(o.name).where(o.removed.is_(None), svc.visible_to(caller, SERVICE, o.id))
    return set(session.scalars(stmt))


def test_visibility_of_domain_limited_offerings(session: Session) -> None:
    root = session.scalar(select(Domain).where(Domain.parent_id.is_(None)))
    assert root is not None
    admin_id = session.scalar(select(User.id).where(User.username == "admin"))
    admin = auth.caller_by_user_id(session, admin_id or 0)
    assert admin is not None
    parent = domains.create_domain(session, admin, root, "parent")
    child = domains.create_domain(session, admin, parent, "child")
    other = domains.create_domain(session, admin, root, "other")
    shape = ComputeShape(1, 100, 128)
    for name, domain in (("p", parent), ("c", child), ("o", other)):
        offering = svc.create_service_offering(session, name, None, shape, ComputeOptions())
        svc.set_scopes(session, SERVICE, offering.id, [domain.uuid], None)
    public = {"Small Instance", "Medium Instance"}
    assert _visible(session, _caller(session, child, 0)) == public | {"p", "c"}
    assert _visible(session, _caller(session, parent, 0)) == public | {"p"}
    assert _visible(session, _caller(session, parent, 2)) == public | {"p", "c"}
    assert _visible(session, _caller(session, other, 0)) == public | {"o"}
    assert _visible(session, admin) >= public | {"p", "c", "o"}


def test_retired_offering_keeps_its_row(session: Session) -> None:
    offering = svc.create_service_offering(
        session, "gone", "", ComputeShape(1, 100, 128), ComputeOptions()
    )
    svc.retire(offering)
    with pytest.raises(ParamError):
        svc.find_service_offering(session, offering.uuid)
    assert session.get(ServiceOffering, offering.id) is not None
    assert offering.state == "Inactive"
