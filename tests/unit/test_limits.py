"""Resource limits and counts against a real database: the 532 path, domains, recounting.

Each test builds its own small tree under ROOT (``/lim-x/`` with one user account, and a
child domain with another), so nothing depends on what other tests created.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import pytest
from sqlalchemy import select

from cumulo.db.engine import Database
from cumulo.db.models import Account, Domain, ResourceCount, Role
from cumulo.services import limits
from cumulo.services.access import AccountType
from cumulo.services.config import ConfigStore, find_key
from cumulo.services.errors import ResourceLimitExceeded
from cumulo.services.limits import ACCOUNT, DOMAIN, GIB, ResourceType

VM = ResourceType.user_vm


@dataclass(frozen=True)
class Tree:
    root: int
    parent: int  # /lim-x/
    child: int  # /lim-x/sub/
    alice: int  # user account in parent
    bob: int  # user account in child
    admin: int  # the root admin account


def _domain(session: object, name: str, parent: Domain) -> Domain:
    d = Domain(name=name, path=f"{parent.path}{name}/", parent_id=parent.id, level=parent.level + 1)
    session.add(d)  # type: ignore[attr-defined]
    session.flush()  # type: ignore[attr-defined]
    return d


@pytest.fixture
def tree(db: Database) -> Tree:
    with db.write() as s:
        root = s.scalars(select(Domain).where(Domain.parent_id.is_(None))).one()
        role = s.scalars(select(Role).where(Role.type == "User")).first()
        assert role is not None
        parent = _domain(s, "lim-x", root)
        child = _domain(s, "sub", parent)
        alice = Account(name="alice", domain_id=parent.id, type=AccountType.USER, role_id=role.id)
        bob = Account(name="bob", domain_id=child.id, type=AccountType.USER, role_id=role.id)
        s.add_all([alice, bob])
        s.flush()
        admin = s.scalars(select(Account).where(Account.type == AccountType.ADMIN)).one()
        return Tree(root.id, parent.id, child.id, alice.id, bob.id, admin.id)


def _count(db: Database, owner_type: str, owner_id: int, rtype: ResourceType = VM) -> int:
    with db.read() as s:
        return limits.count_of(s, owner_type, owner_id, rtype)


def _set(db: Database, owner_type: str, owner_id: int, max: int, rtype: ResourceType = VM) -> None:
    with db.write() as s:
        limits.set_limit(s, owner_type, owner_id, rtype, max)


def _take(db: Database, account_id: int, n: int = 1, rtype: ResourceType = VM) -> None:
    with db.write() as s:
        limits.check_and_increment(s, account_id, rtype, n)


def test_increment_moves_the_account_and_every_ancestor_domain(db: Database, tree: Tree) -> None:
    _take(db, tree.bob, 3)
    assert _count(db, ACCOUNT, tree.bob) == 3
    assert _count(db, DOMAIN, tree.child) == 3
    assert _count(db, DOMAIN, tree.parent) == 3
    assert _count(db, DOMAIN, tree.root) == 3
    assert _count(db, ACCOUNT, tree.alice) == 0
    with db.write() as s:
        limits.decrement(s, tree.bob, VM, 2)
    assert [_count(db, DOMAIN, d) for d in (tree.child, tree.parent, tree.root)] == [1, 1, 1]


def test_account_limit_raises_532_with_cloudstack_text_and_changes_nothing(
    db: Database, tree: Tree
) -> None:
    _set(db, ACCOUNT, tree.alice, 2)
    _take(db, tree.alice, 2)
    with pytest.raises(ResourceLimitExceeded) as err, db.write() as s:
        limits.check_and_increment(s, tree.alice, VM, 1)
    assert err.value.errorcode == 532
    with db.read() as s:
        domain_uuid = s.get(Domain, tree.parent).uuid  # type: ignore[union-attr]
    assert err.value.text == (
        "Maximum number of resources of type 'user_vm' for account name=alice "
        f"in domain id={domain_uuid} has been exceeded."
    )
    assert _count(db, ACCOUNT, tree.alice) == 2
    assert _count(db, DOMAIN, tree.parent) == 2


def test_default_account_limit_comes_from_global_config(db: Database, tree: Tree) -> None:
    _take(db, tree.alice, 20)  # max.account.user.vms defaults to 20
    with pytest.raises(ResourceLimitExceeded), db.write() as s:
        limits.check_and_increment(s, tree.alice, VM, 1)
    with db.write() as s:
        ConfigStore().set(s, find_key("max.account.user.vms"), "21", "global", 0)
    _take(db, tree.alice, 1)
    assert _count(db, ACCOUNT, tree.alice) == 21


def test_parent_domain_limit_stops_an_account_in_a_child_domain(db: Database, tree: Tree) -> None:
    """Bob's own limit and his domain's leave room; the grandparent domain's limit does not."""
    _set(db, DOMAIN, tree.parent, 3)
    _take(db, tree.alice, 2)
    _take(db, tree.bob, 1)
    with pytest.raises(ResourceLimitExceeded) as err, db.write() as s:
        limits.check_and_increment(s, tree.bob, VM, 1)
    with db.read() as s:
        parent_uuid = s.get(Domain, tree.parent).uuid  # type: ignore[union-attr]
    assert err.value.text == (
        f"Maximum number of resources of type 'user_vm' for domain id={parent_uuid} "
        "has been exceeded."
    )
    assert [_count(db, ACCOUNT, tree.bob), _count(db, DOMAIN, tree.child)] == [1, 1]
    assert _count(db, DOMAIN, tree.parent) == 3


def test_child_domain_inherits_the_nearest_explicit_limit(db: Database, tree: Tree) -> None:
    _set(db, DOMAIN, tree.parent, 7)
    with db.read() as s:
        child = s.get(Domain, tree.child)
        root = s.get(Domain, tree.root)
        assert child is not None and root is not None
        assert limits.domain_limit(s, child, VM) == 7
        assert limits.domain_limit(s, root, VM) == limits.UNLIMITED
        assert limits.domain_limit(s, child, ResourceType.cpu) == 80  # max.domain.cpus


def test_unlimited_account_and_root_admin_are_never_stopped(db: Database, tree: Tree) -> None:
    _set(db, ACCOUNT, tree.alice, limits.UNLIMITED)
    _take(db, tree.alice, 25)
    _take(db, tree.admin, 500)
    assert _count(db, ACCOUNT, tree.admin) == 500
    assert _count(db, DOMAIN, tree.root) == 525


def test_storage_limits_are_gib_and_counts_bytes(db: Database, tree: Tree) -> None:
    ps = ResourceType.primary_storage
    _set(db, ACCOUNT, tree.alice, 1, ps)
    _take(db, tree.alice, GIB // 2, ps)
    _take(db, tree.alice, GIB // 2, ps)
    with pytest.raises(ResourceLimitExceeded), db.write() as s:
        limits.check_and_increment(s, tree.alice, ps, 1)
    assert _count(db, ACCOUNT, tree.alice, ps) == GIB


def test_recount_rebuilds_drifted_domain_counts_from_registered_counters(
    db: Database, tree: Tree
) -> None:
    _take(db, tree.alice, 2)
    _take(db, tree.bob, 1)
    with db.write() as s:  # corrupt a domain row, as a crash between two systems might
        row = s.scalars(
            select(ResourceCount).where(
                ResourceCount.owner_type == DOMAIN,
                ResourceCount.owner_id == tree.child,
                ResourceCount.resource_type == int(VM),
            )
        ).one()
        row.count = 40
    truth = {tree.alice: 5, tree.bob: 4}
    limits.register_counter(VM, lambda _s, account: truth.get(account.id, 0))
    try:
        with db.write() as s:
            parent = s.get(Domain, tree.parent)
            assert parent is not None
            result = limits.recalculate(s, parent, rtype=VM)
    finally:
        limits._COUNTERS.pop(VM, None)
    assert [(r.owner_type, r.owner_id, r.count) for r in result] == [(DOMAIN, tree.parent, 9)]
    assert _count(db, DOMAIN, tree.child) == 4
    assert _count(db, DOMAIN, tree.parent) == 9
    assert _count(db, DOMAIN, tree.root) == 9  # 3 before; moved by the parent's change of 6


def test_recount_of_an_unowned_type_keeps_the_stored_count(db: Database, tree: Tree) -> None:
    _take(db, tree.alice, 3, ResourceType.vpc)
    with db.write() as s:
        alice = s.get(Account, tree.alice)
        assert alice is not None
        result = limits.recalculate(s, alice.domain, alice)
    assert len(result) == len(ResourceType)
    assert {r.resource_type: r.count for r in result}[ResourceType.vpc] == 3


def test_concurrent_increments_never_overshoot_a_shared_domain_limit(
    db: Database, tree: Tree
) -> None:
    """Eight writers, each with its own engine, race for five slots under one domain."""
    _set(db, DOMAIN, tree.parent, 5)
    outcomes: list[str] = []
    lock = threading.Lock()

    def worker(account_id: int) -> None:
        own = Database(db.url)
        try:
            for _ in range(2):
                try:
                    with own.write() as s:
                        limits.check_and_increment(s, account_id, VM, 1)
                    result = "ok"
                except ResourceLimitExceeded:
                    result = "full"
                with lock:
                    outcomes.append(result)
        finally:
            own.dispose()

    threads = [
        threading.Thread(target=worker, args=(tree.alice if i % 2 else tree.bob,)) for i in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert outcomes.count("ok") == 5
    assert outcomes.count("full") == 11
    assert _count(db, DOMAIN, tree.parent) == 5
    assert _count(db, ACCOUNT, tree.alice) + _count(db, ACCOUNT, tree.bob) == 5
