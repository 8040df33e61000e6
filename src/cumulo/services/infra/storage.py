"""Primary storage pools and image (secondary) stores.

A pool's ``status`` follows CloudStack's StoragePoolStatus through one table: Up ↔ Disabled
(updateStoragePool enabled=…), Up/Disabled → PrepareForMaintenance → Maintenance, and back
to Up on cancel. Pools without an agent to measure them (everything but ``sim://``) carry the
size the operator gave, or none until an agent reports one.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from cumulo.common.time import utcnow
from cumulo.db.models_infra import Cluster, ImageStore, Pod, StoragePool, Zone
from cumulo.services.errors import NotFound, ParamError
from cumulo.services.infra.hosts import HYPERVISORS, find_cluster, find_pod
from cumulo.services.infra.zones import find_zone

TIB = 1024**4
SIMULATED_POOL_BYTES = TIB

# URL scheme -> CloudStack StoragePoolType.
POOL_TYPES = {
    "sim": "Filesystem",
    "file": "Filesystem",
    "nfs": "NetworkFilesystem",
    "rbd": "RBD",
    "sharedmountpoint": "SharedMountPoint",
}


class PoolStatus(StrEnum):
    UP = "Up"
    DISABLED = "Disabled"
    PREPARE_FOR_MAINTENANCE = "PrepareForMaintenance"
    MAINTENANCE = "Maintenance"
    ERROR_IN_MAINTENANCE = "ErrorInMaintenance"


class PoolEvent(StrEnum):
    ENABLE = "enable"
    DISABLE = "disable"
    PREPARE_MAINTENANCE = "prepare maintenance for"
    MAINTENANCE_DONE = "complete maintenance of"
    CANCEL_MAINTENANCE = "cancel maintenance of"


P, PE = PoolStatus, PoolEvent
POOL_TRANSITIONS: dict[tuple[PoolStatus, PoolEvent], PoolStatus] = {
    (P.UP, PE.ENABLE): P.UP,
    (P.UP, PE.DISABLE): P.DISABLED,
    (P.DISABLED, PE.DISABLE): P.DISABLED,
    (P.DISABLED, PE.ENABLE): P.UP,
    (P.UP, PE.PREPARE_MAINTENANCE): P.PREPARE_FOR_MAINTENANCE,
    (P.DISABLED, PE.PREPARE_MAINTENANCE): P.PREPARE_FOR_MAINTENANCE,
    (P.ERROR_IN_MAINTENANCE, PE.PREPARE_MAINTENANCE): P.PREPARE_FOR_MAINTENANCE,
    (P.PREPARE_FOR_MAINTENANCE, PE.MAINTENANCE_DONE): P.MAINTENANCE,
    (P.PREPARE_FOR_MAINTENANCE, PE.CANCEL_MAINTENANCE): P.UP,
    (P.MAINTENANCE, PE.CANCEL_MAINTENANCE): P.UP,
    (P.ERROR_IN_MAINTENANCE, PE.CANCEL_MAINTENANCE): P.UP,
}


def next_pool_status(current: str, event: PoolEvent) -> PoolStatus:
    to = POOL_TRANSITIONS.get((PoolStatus(current), event))
    if to is None:
        raise ParamError(f"Cannot {event} a storage pool whose state is {current}")
    return to


def pool_transition(pool: StoragePool, event: PoolEvent) -> None:
    """The only writer of a pool's ``status``."""
    pool.status = next_pool_status(pool.status, event)


@dataclass(frozen=True)
class PoolUrl:
    pool_type: str
    host: str
    path: str
    simulated: bool


def parse_pool_url(url: str) -> PoolUrl:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in POOL_TYPES:
        raise ParamError(
            f"Unsupported storage pool URL {url}: use one of "
            + ", ".join(f"{s}://" for s in POOL_TYPES)
        )
    host = parts.hostname or ("localhost" if scheme == "file" else "")
    path = parts.path or ("/" + host if scheme == "sim" else "")
    if scheme in ("nfs", "rbd") and not (host and path.strip("/")):
        raise ParamError(f"Storage pool URL {url} needs a host and a path")
    if scheme in ("file", "sharedmountpoint") and not path.strip("/"):
        raise ParamError(f"Storage pool URL {url} needs a path")
    return PoolUrl(POOL_TYPES[scheme], host, path, scheme == "sim")


@dataclass(frozen=True)
class PoolRequest:
    zoneid: str
    name: str
    url: str
    scope: str | None = None
    podid: str | None = None
    clusterid: str | None = None
    hypervisor: str | None = None
    tags: str | None = None
    capacitybytes: int | None = None
    provider: str | None = None


def _hypervisor(name: str) -> str:
    known = {h.lower(): h for h in HYPERVISORS}
    if name.lower() not in known:
        raise ParamError(f"Zone-wide storage is not supported for hypervisor {name}")
    return known[name.lower()]


def _pool_place(
    session: Session, req: PoolRequest
) -> tuple[Zone, Pod | None, Cluster | None, str, str]:
    """(zone, pod, cluster, scope, hypervisor) as CloudStack derives them."""
    zone = find_zone(session, req.zoneid)
    scope = (req.scope or ("CLUSTER" if req.clusterid else "ZONE")).upper()
    if scope == "CLUSTER":
        if not (req.podid and req.clusterid):
            raise ParamError("Cluster-wide storage needs both podid and clusterid")
        pod = find_pod(session, req.podid, zone)
        cluster = find_cluster(session, req.clusterid, None, pod)
        return zone, pod, cluster, scope, cluster.hypervisor_type
    if scope == "ZONE":
        if not req.hypervisor:
            raise ParamError("hypervisor type must be specified for zone-wide storage")
        return zone, None, None, scope, _hypervisor(req.hypervisor)
    raise ParamError(f"Invalid scope {req.scope}: CLUSTER or ZONE")


def _check_url_free(session: Session, zone: Zone, url: str) -> None:
    clash = session.scalar(
        select(StoragePool.uuid).where(
            StoragePool.zone_id == zone.id, StoragePool.url == url, StoragePool.removed.is_(None)
        )
    )
    if clash is not None:
        raise ParamError(f"Storage pool {url} is already in use in zone {zone.name}", uuids=[clash])


def create_pool(session: Session, req: PoolRequest) -> StoragePool:
    if not req.name.strip():
        raise ParamError("Storage pool name can't be empty")
    if req.capacitybytes is not None and req.capacitybytes < 0:
        raise ParamError("capacitybytes can't be negative")
    zone, pod, cluster, scope, hypervisor = _pool_place(session, req)
    parsed = parse_pool_url(req.url)
    _check_url_free(session, zone, req.url)
    size = req.capacitybytes
    if size is None:
        size = SIMULATED_POOL_BYTES if parsed.simulated else 0
    pool = StoragePool(
        name=req.name.strip(),
        zone_id=zone.id,
        pod_id=pod.id if pod else None,
        cluster_id=cluster.id if cluster else None,
        scope=scope,
        pool_type=parsed.pool_type,
        hypervisor_type=hypervisor,
        url=req.url,
        path=parsed.path,
        provider=req.provider or "DefaultPrimary",
        capacity_bytes=size,
        used_bytes=0,
        allocated_bytes=0,
        tags=_tags(req.tags),
        status=PoolStatus.UP,
    )
    session.add(pool)
    session.flush()
    return pool


def _tags(tags: str | None) -> str:
    return ",".join(dict.fromkeys(t.strip() for t in (tags or "").split(",") if t.strip()))


def pool_host(pool: StoragePool) -> str:
    """The ``ipaddress`` CloudStack shows: the storage server's host from the URL."""
    parts = urlsplit(pool.url)
    return parts.hostname or ("localhost" if parts.scheme == "file" else "")


def find_pool(session: Session, uuid: str) -> StoragePool:
    pool = session.scalar(
        select(StoragePool).where(StoragePool.uuid == uuid, StoragePool.removed.is_(None))
    )
    if pool is None:
        raise NotFound(f"Unable to find storage pool by id {uuid}")
    return pool


def update_pool(
    pool: StoragePool,
    *,
    name: str | None = None,
    tags: str | None = None,
    capacitybytes: int | None = None,
    enabled: bool | None = None,
) -> None:
    if capacitybytes is not None:
        if capacitybytes < pool.allocated_bytes:
            raise ParamError(
                f"capacitybytes {capacitybytes} is below what is already allocated "
                f"({pool.allocated_bytes})"
            )
        pool.capacity_bytes = capacitybytes
    if enabled is not None:
        pool_transition(pool, PoolEvent.ENABLE if enabled else PoolEvent.DISABLE)
    if tags is not None:
        pool.tags = _tags(tags)
    if name is not None:
        if not name.strip():
            raise ParamError("Storage pool name can't be empty")
        pool.name = name.strip()


def delete_pool(pool: StoragePool, *, forced: bool) -> None:
    """No volumes exist yet, so nothing can hold a pool; the volume issue adds that check."""
    del forced
    pool.removed = utcnow()
    pool.status = "Removed"


def start_pool_maintenance(pool: StoragePool) -> None:
    pool_transition(pool, PoolEvent.PREPARE_MAINTENANCE)


def finish_pool_maintenance(pool: StoragePool) -> None:
    """Job body; idempotent (a re-run finds the pool in Maintenance and leaves it)."""
    if pool.status != PoolStatus.MAINTENANCE:
        pool_transition(pool, PoolEvent.MAINTENANCE_DONE)


def check_cancel_pool_maintenance(pool: StoragePool) -> None:
    next_pool_status(pool.status, PoolEvent.CANCEL_MAINTENANCE)


def cancel_pool_maintenance(pool: StoragePool) -> None:
    if pool.status != PoolStatus.UP:
        pool_transition(pool, PoolEvent.CANCEL_MAINTENANCE)


# --- image stores -----------------------------------------------------------------------

IMAGE_PROVIDERS = {"nfs": "NFS", "directory": "Directory"}
LATER_PROVIDERS = {"s3": "addImageStoreS3", "swift": "a later release"}


def _image_provider(provider: str) -> str:
    key = provider.lower()
    if key in LATER_PROVIDERS:
        raise ParamError(
            f"Image store provider {provider} is not supported here yet "
            f"({provider} stores come with {LATER_PROVIDERS[key]}); use NFS or Directory"
        )
    if key not in IMAGE_PROVIDERS:
        raise ParamError(f"Unknown image store provider {provider}: NFS or Directory")
    return IMAGE_PROVIDERS[key]


def _image_protocol(provider: str, url: str) -> str:
    parts = urlsplit(url)
    if provider == "NFS":
        if parts.scheme != "nfs" or not parts.hostname or not parts.path.strip("/"):
            raise ParamError(f"NFS image store URL must be nfs://<server>/<path>: {url}")
        return "nfs"
    if parts.scheme != "file" or not parts.path.strip("/"):
        raise ParamError(f"Directory image store URL must be file:///<path>: {url}")
    return "file"


def add_image_store(
    session: Session,
    *,
    provider: str,
    url: str | None,
    name: str | None,
    zoneid: str | None,
    details: dict[str, str],
) -> ImageStore:
    canonical = _image_provider(provider)
    if not url:
        raise ParamError(f"url is required for a {canonical} image store")
    if not zoneid:
        raise ParamError(f"A {canonical} image store belongs to a zone: zoneid is required")
    zone = find_zone(session, zoneid)
    protocol = _image_protocol(canonical, url)
    clash = session.scalar(
        select(ImageStore.uuid).where(ImageStore.url == url, ImageStore.removed.is_(None))
    )
    if clash is not None:
        raise ParamError(f"Image store with url {url} already exists", uuids=[clash])
    store = ImageStore(
        name=(name or url).strip(),
        zone_id=zone.id,
        provider=canonical,
        protocol=protocol,
        url=url,
        details=details,
        role="Image",
        readonly=False,
    )
    session.add(store)
    session.flush()
    return store


def find_image_store(session: Session, uuid: str) -> ImageStore:
    store = session.scalar(
        select(ImageStore).where(ImageStore.uuid == uuid, ImageStore.removed.is_(None))
    )
    if store is None:
        raise NotFound(f"Unable to find image store by id {uuid}")
    return store


def update_image_store(
    store: ImageStore, *, readonly: bool | None = None, name: str | None = None
) -> None:
    if readonly is not None:
        store.readonly = readonly
    if name is not None:
        if not name.strip():
            raise ParamError("Image store name can't be empty")
        store.name = name.strip()


def delete_image_store(store: ImageStore) -> None:
    """No templates or snapshots exist yet, so nothing can hold a store."""
    store.removed = utcnow()


def details_map(entries: list[dict[str, Any]] | None) -> dict[str, str]:
    """``details[0].key=k&details[0].value=v`` pairs as one dict."""
    out: dict[str, str] = {}
    for entry in entries or []:
        key = entry.get("key")
        if not key:
            raise ParamError("Every details entry needs a key")
        out[str(key)] = str(entry.get("value", ""))
    return out
