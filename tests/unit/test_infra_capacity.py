"""Capacity reservation (one guarded UPDATE per type) and the listCapacity totals."""

from __future__ import annotations

import threading

from sqlalchemy import select

from cumulo.db.engine import Database
from cumulo.db.models_infra import Host, HostCapacity, StoragePool
from cumulo.services.infra import capacity
from cumulo.services.infra.simulator import MIB
from tests.support.infra import Site, make_site

GIB = 1024 * MIB


def _host(
    db: Database,
    site: Site,
    *,
    cpus: int = 4,
    mhz: int = 1000,
    mem_gib: int = 4,
    state: str = "Enabled",
) -> int:
    with db.write() as session:
        host = Host(
            name="h",
            zone_id=site.zone_id,
            pod_id=site.pod_id,
            cluster_id=site.cluster_id,
            hypervisor_type="Simulator",
            cpu_number=cpus,
            cpu_speed=mhz,
            memory=mem_gib * GIB,
            resource_state=state,
        )
        session.add(host)
        session.flush()
        capacity.set_host_capacity(session, host.id, cpus * mhz, mem_gib * GIB)
        return host.id


def _used(db: Database, host_id: int) -> dict[int, int]:
    with db.read() as session:
        rows = session.execute(
            select(HostCapacity.type, HostCapacity.used).where(HostCapacity.host_id == host_id)
        ).all()
        return {t: u for t, u in rows}


def _reserve(db: Database, host_id: int, cpu: int, mem: int) -> bool:
    with db.write() as session:
        return capacity.reserve(session, host_id, cpu, mem)


def test_reserve_takes_both_and_refuses_what_does_not_fit(db: Database) -> None:
    host = _host(db, make_site(db))
    assert _reserve(db, host, 3000, 3 * GIB)
    assert _used(db, host) == {capacity.CPU: 3000, capacity.MEMORY: 3 * GIB}
    assert not _reserve(db, host, 1001, GIB)  # cpu would exceed 4000
    assert _used(db, host) == {capacity.CPU: 3000, capacity.MEMORY: 3 * GIB}
    assert _reserve(db, host, 1000, GIB)  # exactly full is allowed
    assert _used(db, host) == {capacity.CPU: 4000, capacity.MEMORY: 4 * GIB}


def test_cpu_is_given_back_when_memory_does_not_fit(db: Database) -> None:
    host = _host(db, make_site(db))
    assert not _reserve(db, host, 500, 5 * GIB)
    assert _used(db, host) == {capacity.CPU: 0, capacity.MEMORY: 0}


def test_reserved_capacity_counts_against_the_guard(db: Database) -> None:
    host = _host(db, make_site(db))
    with db.write() as session:
        row = session.scalars(
            select(HostCapacity).where(
                HostCapacity.host_id == host, HostCapacity.type == capacity.CPU
            )
        ).one()
        row.reserved = 3500
    assert not _reserve(db, host, 600, GIB)
    assert _reserve(db, host, 500, GIB)


def test_overcommit_factor_of_the_cluster_applies(db: Database) -> None:
    host = _host(db, make_site(db, cpu_overcommit=2.0, memory_overcommit=1.5))
    assert _reserve(db, host, 8000, 6 * GIB)
    assert not _reserve(db, host, 1, 0)
    assert not _reserve(db, host, 0, 1)


def test_release_gives_back_and_never_goes_negative(db: Database) -> None:
    host = _host(db, make_site(db))
    assert _reserve(db, host, 2000, 2 * GIB)
    with db.write() as session:
        capacity.release(session, host, 1500, GIB)
    assert _used(db, host) == {capacity.CPU: 500, capacity.MEMORY: GIB}
    with db.write() as session:
        capacity.release(session, host, 1500, 3 * GIB)
    assert _used(db, host) == {capacity.CPU: 0, capacity.MEMORY: 0}


def test_concurrent_reservations_never_overcommit(db: Database) -> None:
    """24 deploys race for a host with room for 8: exactly 8 win, whatever the interleaving.

    Each thread has its own engine, as separate management servers would.
    """
    host = _host(db, make_site(db), cpus=8, mhz=1000, mem_gib=64)
    threads, results = 24, []
    barrier = threading.Barrier(threads)
    lock = threading.Lock()

    def deploy() -> None:
        own = Database(db.url, pool_size=1)
        try:
            barrier.wait()
            ok = _reserve(own, host, 1000, GIB)
            with lock:
                results.append(ok)
        finally:
            own.dispose()

    workers = [threading.Thread(target=deploy) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert len(results) == threads
    assert results.count(True) == 8
    assert _used(db, host) == {capacity.CPU: 8000, capacity.MEMORY: 8 * GIB}


def test_totals_count_enabled_hosts_with_overcommit(db: Database) -> None:
    site = make_site(db, cpu_overcommit=2.0)
    first = _host(db, site, cpus=4, mhz=1000, mem_gib=4)
    _host(db, site, cpus=2, mhz=1000, mem_gib=2)
    _host(db, site, cpus=16, mhz=1000, mem_gib=16, state="Maintenance")
    assert _reserve(db, first, 1000, GIB)
    with db.read() as session:
        scope = capacity.Scope(zone_id=site.zone_id)
        cpu = capacity.host_totals(session, scope, capacity.CPU)
        mem = capacity.host_totals(session, scope, capacity.MEMORY)
    assert [(t.total, t.used) for t in cpu] == [(12000, 1000)]
    assert [(t.total, t.used) for t in mem] == [(6 * GIB, GIB)]
    assert cpu[0].zone[0] == site.zone_uuid and cpu[0].pod is None


def test_totals_group_by_pod_and_cluster_when_asked(db: Database) -> None:
    a = make_site(db)
    b = make_site(db, zone_id=a.zone_id)
    _host(db, a, cpus=1, mhz=1000)
    _host(db, b, cpus=3, mhz=1000)
    with db.read() as session:
        zone_level = capacity.host_totals(session, capacity.Scope(a.zone_id), capacity.CPU)
        pod_level = capacity.host_totals(
            session, capacity.Scope(a.zone_id, pod_id=b.pod_id), capacity.CPU
        )
        cluster_level = capacity.host_totals(
            session, capacity.Scope(cluster_id=a.cluster_id), capacity.CPU
        )
    assert [t.total for t in zone_level] == [4000]
    assert [(t.pod[0], t.total) for t in pod_level] == [(b.pod_uuid, 3000)]
    assert [(t.cluster[0], t.total) for t in cluster_level] == [(a.cluster_uuid, 1000)]


def test_storage_totals_skip_pools_in_maintenance(db: Database) -> None:
    site = make_site(db)
    with db.write() as session:
        session.add_all(
            [
                StoragePool(
                    name="a",
                    zone_id=site.zone_id,
                    pod_id=site.pod_id,
                    cluster_id=site.cluster_id,
                    capacity_bytes=100,
                    used_bytes=10,
                    allocated_bytes=50,
                    overcommit=2.0,
                    status="Up",
                ),
                StoragePool(
                    name="b",
                    zone_id=site.zone_id,
                    scope="ZONE",
                    capacity_bytes=300,
                    used_bytes=30,
                    allocated_bytes=0,
                    overcommit=1.0,
                    status="Up",
                ),
                StoragePool(
                    name="c", zone_id=site.zone_id, capacity_bytes=1000, status="Maintenance"
                ),
            ]
        )
    with db.read() as session:
        scope = capacity.Scope(zone_id=site.zone_id)
        used = capacity.storage_totals(session, scope, capacity.STORAGE)
        allocated = capacity.storage_totals(session, scope, capacity.STORAGE_ALLOCATED)
        per_pod = capacity.storage_totals(
            session, capacity.Scope(pod_id=site.pod_id), capacity.STORAGE
        )
    assert [(t.total, t.used) for t in used] == [(400, 40)]
    assert [(t.total, t.used) for t in allocated] == [(500, 50)]
    assert [(t.total, t.used) for t in per_pod] == [(100, 10)]
    assert used[0].percent == 10.0
