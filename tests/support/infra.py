"""A zone, pod and cluster written straight into a unit test's database (``db`` fixture).

Rows are written directly (the zone/pod/cluster commands have their own tests); each test
gets a fresh database so counts and totals are exact.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from cumulo.db.engine import Database
from cumulo.db.models_infra import Cluster, Pod, Zone


@dataclass(frozen=True)
class Site:
    """Keys and uuids of one zone > pod > cluster chain."""

    zone_id: int
    zone_uuid: str
    pod_id: int
    pod_uuid: str
    cluster_id: int
    cluster_uuid: str


def make_site(
    db: Database,
    *,
    hypervisor: str = "Simulator",
    cpu_overcommit: float = 1.0,
    memory_overcommit: float = 1.0,
    zone_id: int | None = None,
) -> Site:
    with db.write() as session:
        if zone_id is None:
            zone = Zone(name=f"z-{uuid.uuid4().hex[:6]}", allocation_state="Enabled")
            session.add(zone)
            session.flush()
        else:
            zone = session.get_one(Zone, zone_id)
        pod = Pod(name=f"p-{uuid.uuid4().hex[:6]}", zone_id=zone.id)
        session.add(pod)
        session.flush()
        cluster = Cluster(
            name=f"c-{uuid.uuid4().hex[:6]}",
            zone_id=zone.id,
            pod_id=pod.id,
            hypervisor_type=hypervisor,
            cpu_overcommit=cpu_overcommit,
            memory_overcommit=memory_overcommit,
        )
        session.add(cluster)
        session.flush()
        return Site(zone.id, zone.uuid, pod.id, pod.uuid, cluster.id, cluster.uuid)
