"""Simulated hosts: URL options, what addHost writes, the resource-state table, deletion."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from cumulo.api.cloudstack.commands.hosts import _percent
from cumulo.db.engine import Database
from cumulo.db.models_infra import Cluster, Host, HostCapacity
from cumulo.services.errors import CloudError, ParamError
from cumulo.services.infra import capacity, simulator
from cumulo.services.infra import hosts as host_service
from cumulo.services.infra.hosts import Event, IllegalTransition, ResourceState
from tests.support.infra import Site, make_site


def test_url_defaults_and_options() -> None:
    plain = simulator.parse_url("http://sim/c1/h1")
    assert (plain.name, plain.cpus, plain.cpu_mhz, plain.memory_mib, plain.count) == (
        "h1",
        8,
        2400,
        16384,
        1,
    )
    sized = simulator.parse_url(
        "http://sim/c1/big?cpunumber=32&cpuspeed=3000&memory=65536&count=3&localstorage=true"
    )
    assert (sized.cpus, sized.cpu_mhz, sized.memory_mib, sized.count) == (32, 3000, 65536, 3)
    assert sized.local_storage
    assert simulator.parse_url("http://sim1/c/h?cpucore=2").cpus == 2
    assert simulator.host_names(sized) == ["big", "big-2", "big-3"]


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/c/h",
        "https://sim/c/h",
        "http://sim/",
        "http://sim/c/h?count=0",
        "http://sim/c/h?memory=lots",
        f"http://sim/c/h?count={simulator.MAX_COUNT + 1}",
    ],
)
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(ParamError):
        simulator.parse_url(url)


def _add(db: Database, site: Site, url: str, **kw: object) -> list[int]:
    with db.write() as session:
        place = host_service.locate(session, site.zone_uuid, site.pod_uuid, site.cluster_uuid, None)
        args: dict[str, object] = {
            "hypervisor": "Simulator",
            "url": url,
            "hosttags": None,
            "allocationstate": None,
        }
        args.update(kw)
        return [h.id for h in host_service.add_hosts(session, place, **args)]  # type: ignore[arg-type]


def _counts(db: Database) -> tuple[int, int]:
    with db.read() as session:
        hosts = session.scalar(select(func.count()).select_from(Host))
        caps = session.scalar(select(func.count()).select_from(HostCapacity))
        return int(hosts or 0), int(caps or 0)


def test_add_writes_up_enabled_hosts_with_capacity_rows(db: Database) -> None:
    site = make_site(db)
    ids = _add(
        db,
        site,
        "http://sim/c/h?count=3&cpunumber=4&cpuspeed=2000&memory=1024",
        hosttags=["gpu, fast", "gpu"],
    )
    with db.read() as session:
        hosts = session.scalars(select(Host).where(Host.id.in_(ids)).order_by(Host.id)).all()
        caps = session.execute(
            select(HostCapacity.host_id, HostCapacity.type, HostCapacity.total)
        ).all()
    assert [h.name for h in hosts] == ["h", "h-2", "h-3"]
    assert {(h.status, h.resource_state, h.host_tags) for h in hosts} == {
        ("Up", "Enabled", "gpu,fast")
    }
    assert all(h.private_ip for h in hosts) and len({h.private_ip for h in hosts}) == 3
    assert sorted(caps) == sorted(
        [(i, capacity.CPU, 8000) for i in ids]
        + [(i, capacity.MEMORY, 1024 * 1024 * 1024) for i in ids]
    )


def test_allocation_state_disable_at_add(db: Database) -> None:
    ids = _add(db, make_site(db), "http://sim/c/d", allocationstate="Disable")
    with db.read() as session:
        assert session.get_one(Host, ids[0]).resource_state == "Disabled"


@pytest.mark.parametrize(
    ("cluster_hv", "host_hv", "why"),
    [
        ("KVM", "KVM", "agent"),
        ("Simulator", "KVM", "hypervisor"),
        ("KVM", "Simulator", "hypervisor"),
        ("Simulator", "XenServer", "Invalid hypervisor"),
    ],
)
def test_refused_adds_write_nothing(db: Database, cluster_hv: str, host_hv: str, why: str) -> None:
    site = make_site(db, hypervisor=cluster_hv)
    with pytest.raises(ParamError, match=why):
        _add(db, site, "http://sim/c/h", hypervisor=host_hv)
    assert _counts(db) == (0, 0)


def test_a_name_taken_in_the_cluster_is_refused(db: Database) -> None:
    site = make_site(db)
    _add(db, site, "http://sim/c/h?count=2")
    with pytest.raises(ParamError, match="h-2 already exists"):
        _add(db, site, "http://sim/c/h-2")
    assert _counts(db) == (2, 4)


def test_the_state_table_refuses_everything_it_does_not_list() -> None:
    for state in ResourceState:
        for event in Event:
            host = Host(resource_state=state.value)
            if (state, event) in host_service.TRANSITIONS:
                host_service.transition(host, event)
                assert host.resource_state == host_service.TRANSITIONS[(state, event)]
            else:
                with pytest.raises(IllegalTransition):
                    host_service.transition(host, event)
                assert host.resource_state == state.value


def test_maintenance_round_trip_and_idempotent_job_bodies() -> None:
    host = Host(resource_state="Enabled")
    host_service.start_maintenance(host)
    assert host.resource_state == "PrepareForMaintenance"
    host_service.finish_maintenance(host)
    host_service.finish_maintenance(host)  # a re-run job
    assert host.resource_state == "Maintenance"
    with pytest.raises(IllegalTransition):
        host_service.start_maintenance(host)
    host_service.check_cancel_maintenance(host)
    host_service.cancel_maintenance(host)
    host_service.cancel_maintenance(host)
    assert host.resource_state == "Enabled"
    with pytest.raises(IllegalTransition):
        host_service.check_cancel_maintenance(host)


def test_delete_needs_maintenance_unless_forced(db: Database) -> None:
    site = make_site(db)
    first, second = _add(db, site, "http://sim/c/del?count=2")
    with db.write() as session, pytest.raises(CloudError, match="not in maintenance"):
        host_service.delete_host(session, session.get_one(Host, first), forced=False)
    with db.write() as session:
        host = session.get_one(Host, first)
        host_service.start_maintenance(host)
        host_service.finish_maintenance(host)
        host_service.delete_host(session, host, forced=False)
        host_service.delete_host(session, session.get_one(Host, second), forced=True)
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(HostCapacity)) == 0
        assert all(h.removed is not None for h in session.scalars(select(Host)))
        with pytest.raises(ParamError):
            host_service.find_host(session, session.get_one(Host, first).uuid)


def test_update_tags_name_and_allocation(db: Database) -> None:
    (hid,) = _add(db, make_site(db), "http://sim/c/u")
    with db.write() as session:
        host = session.get_one(Host, hid)
        host_service.update_host(
            session, host, hosttags=["a,b"], allocationstate="Disable", name="renamed"
        )
    with db.write() as session:
        host = session.get_one(Host, hid)
        assert (host.host_tags, host.resource_state, host.name) == ("a,b", "Disabled", "renamed")
        with pytest.raises(ParamError):
            host_service.update_host(session, host, allocationstate="Maintenance")


def test_cluster_by_name_within_the_pod_and_mismatched_parents(db: Database) -> None:
    site = make_site(db)
    other = make_site(db)
    with db.read() as session:
        name = session.get_one(Cluster, site.cluster_id).name
        place = host_service.locate(session, site.zone_uuid, site.pod_uuid, None, name)
        assert place.cluster.id == site.cluster_id
        with pytest.raises(ParamError):  # the name exists, but in another pod
            host_service.locate(session, other.zone_uuid, other.pod_uuid, None, name)
        with pytest.raises(ParamError, match="doesn't belong"):
            host_service.locate(session, site.zone_uuid, other.pod_uuid, site.cluster_uuid, None)
        with pytest.raises(ParamError, match="clusterid or clustername"):
            host_service.locate(session, site.zone_uuid, site.pod_uuid, None, None)


def test_allocation_shows_as_a_percentage_string() -> None:
    assert (_percent(1, 8), _percent(0, 0), _percent(1, 3), _percent(4, 4)) == (
        "12.5%",
        "0%",
        "33.33%",
        "100%",
    )
