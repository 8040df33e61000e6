"""Primary storage pools and image stores: URLs, scopes, the pool state table, providers."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from cumulo.db.engine import Database
from cumulo.db.models_infra import ImageStore, StoragePool
from cumulo.services.errors import ParamError
from cumulo.services.infra import storage
from cumulo.services.infra.storage import PoolRequest
from tests.support.infra import Site, make_site


@pytest.fixture
def site(db: Database) -> Site:
    return make_site(db)


@pytest.mark.parametrize(
    ("url", "pool_type", "host", "path"),
    [
        ("sim://pool1", "Filesystem", "pool1", "/pool1"),
        ("file:///var/lib/cumulo/pool", "Filesystem", "localhost", "/var/lib/cumulo/pool"),
        ("nfs://10.0.0.5/export/primary", "NetworkFilesystem", "10.0.0.5", "/export/primary"),
        ("rbd://mon1/cloudpool", "RBD", "mon1", "/cloudpool"),
    ],
)
def test_pool_urls(url: str, pool_type: str, host: str, path: str) -> None:
    parsed = storage.parse_pool_url(url)
    assert (parsed.pool_type, parsed.host, parsed.path) == (pool_type, host, path)


@pytest.mark.parametrize("url", ["ftp://x/y", "nfs://host", "nfs:///path", "file://", "pool1"])
def test_bad_pool_urls(url: str) -> None:
    with pytest.raises(ParamError):
        storage.parse_pool_url(url)


def _pools(db: Database) -> int:
    with db.read() as session:
        return int(session.scalar(select(func.count()).select_from(StoragePool)) or 0)


def _create(db: Database, req: PoolRequest) -> StoragePool:
    with db.write() as session:
        return storage.create_pool(session, req)


def test_cluster_pool_takes_the_cluster_hypervisor_and_a_simulated_size(
    db: Database, site: Site
) -> None:
    pool = _create(
        db,
        PoolRequest(
            site.zone_uuid,
            "p1",
            "sim://p1",
            "cluster",
            site.pod_uuid,
            site.cluster_uuid,
            tags="ssd, fast,ssd",
        ),
    )
    assert (pool.scope, pool.hypervisor_type, pool.capacity_bytes, pool.tags, pool.status) == (
        "CLUSTER",
        "Simulator",
        storage.SIMULATED_POOL_BYTES,
        "ssd,fast",
        "Up",
    )
    nfs = _create(
        db,
        PoolRequest(site.zone_uuid, "p2", "nfs://n/e", "CLUSTER", site.pod_uuid, site.cluster_uuid),
    )
    assert nfs.capacity_bytes == 0  # unmeasured until an agent reports it
    sized = _create(
        db,
        PoolRequest(
            site.zone_uuid,
            "p3",
            "sim://p3",
            None,
            site.pod_uuid,
            site.cluster_uuid,
            capacitybytes=5,
        ),
    )
    assert (sized.scope, sized.capacity_bytes) == ("CLUSTER", 5)


@pytest.mark.parametrize(
    ("scope", "pod", "cluster", "hypervisor", "why"),
    [
        ("CLUSTER", False, True, None, "podid and clusterid"),
        ("ZONE", False, False, None, "hypervisor"),
        ("ZONE", False, False, "Hyperv", "not supported"),
        ("HOST", True, True, None, "Invalid scope"),
    ],
)
def test_refused_pools_write_nothing(
    db: Database,
    site: Site,
    scope: str,
    pod: bool,
    cluster: bool,
    hypervisor: str | None,
    why: str,
) -> None:
    req = PoolRequest(
        site.zone_uuid,
        "x",
        "sim://x",
        scope,
        site.pod_uuid if pod else None,
        site.cluster_uuid if cluster else None,
        hypervisor,
    )
    with pytest.raises(ParamError, match=why):
        _create(db, req)
    assert _pools(db) == 0


def test_zone_pool_and_duplicate_url(db: Database, site: Site) -> None:
    pool = _create(db, PoolRequest(site.zone_uuid, "z", "sim://z", "zone", hypervisor="kvm"))
    assert (pool.scope, pool.hypervisor_type, pool.pod_id) == ("ZONE", "KVM", None)
    with pytest.raises(ParamError, match="already in use"):
        _create(db, PoolRequest(site.zone_uuid, "z2", "sim://z", "zone", hypervisor="KVM"))
    assert _pools(db) == 1


def test_pool_state_table() -> None:
    pool = StoragePool(status="Up")
    with pytest.raises(ParamError):
        storage.check_cancel_pool_maintenance(pool)
    storage.update_pool(pool, enabled=False)
    assert pool.status == "Disabled"
    storage.start_pool_maintenance(pool)
    storage.finish_pool_maintenance(pool)
    storage.finish_pool_maintenance(pool)
    assert pool.status == "Maintenance"
    with pytest.raises(ParamError):
        storage.update_pool(pool, enabled=True)
    assert pool.status == "Maintenance"
    storage.check_cancel_pool_maintenance(pool)
    storage.cancel_pool_maintenance(pool)
    assert pool.status == "Up"


def test_capacity_cannot_shrink_below_allocation() -> None:
    pool = StoragePool(status="Up", allocated_bytes=10, capacity_bytes=100)
    with pytest.raises(ParamError):
        storage.update_pool(pool, capacitybytes=9)
    assert pool.capacity_bytes == 100


def _stores(db: Database) -> int:
    with db.read() as session:
        return int(session.scalar(select(func.count()).select_from(ImageStore)) or 0)


def _add_store(db: Database, site: Site, provider: str, url: str | None) -> ImageStore:
    with db.write() as session:
        return storage.add_image_store(
            session,
            provider=provider,
            url=url,
            name=None,
            zoneid=site.zone_uuid,
            details={"k": "v"},
        )


def test_image_store_providers(db: Database, site: Site) -> None:
    nfs = _add_store(db, site, "nfs", "nfs://10.0.0.9/export/secondary")
    assert (nfs.provider, nfs.protocol, nfs.name) == ("NFS", "nfs", nfs.url)
    local = _add_store(db, site, "Directory", "file:///srv/images")
    assert (local.provider, local.protocol) == ("Directory", "file")
    assert _stores(db) == 2


@pytest.mark.parametrize(
    ("provider", "url", "why"),
    [
        ("S3", "http://s3", "addImageStoreS3"),
        ("Swift", "http://swift", "not supported"),
        ("Ceph", "nfs://a/b", "Unknown"),
        ("NFS", "file:///x", "nfs://"),
        ("NFS", "nfs://host", "nfs://"),
        ("Directory", "nfs://a/b", "file://"),
        ("NFS", None, "url is required"),
    ],
)
def test_refused_image_stores_write_nothing(
    db: Database, site: Site, provider: str, url: str | None, why: str
) -> None:
    with pytest.raises(ParamError, match=why):
        _add_store(db, site, provider, url)
    assert _stores(db) == 0


def test_details_map() -> None:
    assert storage.details_map([{"key": "a", "value": "1"}, {"key": "b"}]) == {"a": "1", "b": ""}
    assert storage.details_map(None) == {}
    with pytest.raises(ParamError):
        storage.details_map([{"value": "1"}])
