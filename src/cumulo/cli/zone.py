"""``cumulo zone apply FILE``: describe a zone once in YAML, build it through the public API.

Applying is idempotent: every item is looked up by name first and created only when missing,
and each line printed says what happened (``created``, ``unchanged``, ``updated``). Keys the
file gives beyond the structural ones (``pods``, ``clusters``, ``hosts`` …) are passed to the
create command as API parameters, so anything ``createZone``/``createPod`` … accept works.

    zone:
      name: zone1
      networktype: Advanced
      internaldns1: 10.0.0.2
      physical_networks:
        - name: physnet1
          isolationmethods: VXLAN
          vlan: 5000-5999
          traffic_types: [Guest, Public, Management]
          providers: [VirtualRouter]
      ip_ranges:
        - {gateway: 10.1.0.1, netmask: 255.255.255.0, startip: 10.1.0.10, endip: 10.1.0.99}
      pods:
        - name: pod1
          gateway: 10.2.0.1
          netmask: 255.255.255.0
          startip: 10.2.0.10
          endip: 10.2.0.99
          clusters:
            - name: cluster1
              hypervisor: Simulator
              hosts:
                - url: http://sim/cluster1/host?count=4&cpunumber=8&memory=16384
              primary_storage:
                - {name: pool1, url: "sim://pool1"}
      secondary_storage:
        - {name: images1, provider: Directory, url: "file:///var/lib/cumulo/images"}
      enabled: true
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from cumulo.cli.client import Client

STRUCTURE = {
    "physical_networks",
    "traffic_types",
    "providers",
    "ip_ranges",
    "pods",
    "clusters",
    "hosts",
    "primary_storage",
    "secondary_storage",
    "enabled",
}
Say = Callable[[str], None]


class ZoneFileError(ValueError):
    """The YAML file does not describe a zone the way ``zone apply`` expects."""


def load(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text())
    if not isinstance(doc, dict) or not isinstance(doc.get("zone"), dict):
        raise ZoneFileError(f"{path}: expected a mapping with a 'zone' key")
    zone: dict[str, Any] = doc["zone"]
    if not zone.get("name"):
        raise ZoneFileError(f"{path}: the zone needs a name")
    return zone


def _params(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k not in STRUCTURE}


def _named(
    client: Client, command: str, key: str, name: str, **scope: Any
) -> dict[str, Any] | None:
    for found in client.find(command, key, name=name, **scope):
        if found.get("name") == name:
            return found
    return None


def _one(result: dict[str, Any], key: str) -> dict[str, Any]:
    """Create responses hold the object, or (addCluster, addHost) a one-item list of it."""
    value = result[key]
    found: dict[str, Any] = value[0] if isinstance(value, list) else value
    return found


class ZoneApplier:
    def __init__(self, client: Client, say: Say = print) -> None:
        self.client, self.say = client, say

    def apply(self, spec: dict[str, Any]) -> str:
        zone = self._zone(spec)
        for net in spec.get("physical_networks", []):
            self._physical_network(zone["id"], net)
        for ip_range in spec.get("ip_ranges", []):
            self._ip_range(zone["id"], ip_range)
        for pod in spec.get("pods", []):
            self._pod(zone["id"], pod)
        for store in spec.get("secondary_storage", []):
            self._image_store(zone["id"], store)
        if spec.get("enabled", True) and zone.get("allocationstate") != "Enabled":
            self.client.wait("updateZone", id=zone["id"], allocationstate="Enabled")
            self.say(f"updated zone {spec['name']}: Enabled")
        return str(zone["id"])

    def _zone(self, spec: dict[str, Any]) -> dict[str, Any]:
        found = _named(self.client, "listZones", "zone", spec["name"])
        if found:
            self.say(f"unchanged zone {spec['name']}")
            return found
        params = {"networktype": "Advanced", **_params(spec)}
        created = _one(self.client.wait("createZone", **params), "zone")
        self.say(f"created zone {spec['name']}")
        return created

    def _physical_network(self, zone_id: str, spec: dict[str, Any]) -> None:
        net = _named(
            self.client, "listPhysicalNetworks", "physicalnetwork", spec["name"], zoneid=zone_id
        )
        if net:
            self.say(f"unchanged physical network {spec['name']}")
        else:
            result = self.client.wait("createPhysicalNetwork", zoneid=zone_id, **_params(spec))
            net = _one(result, "physicalnetwork")
            self.say(f"created physical network {spec['name']}")
        self._traffic_types(net["id"], spec.get("traffic_types", []))
        self._providers(net["id"], spec.get("providers", []))
        if net.get("state") != "Enabled":
            self.client.wait("updatePhysicalNetwork", id=net["id"], state="Enabled")
            self.say(f"updated physical network {spec['name']}: Enabled")

    def _traffic_types(self, net_id: str, wanted: list[Any]) -> None:
        have = {
            t["traffictype"]
            for t in self.client.find("listTrafficTypes", "traffictype", physicalnetworkid=net_id)
        }
        for item in wanted:
            params = item if isinstance(item, dict) else {"traffictype": item}
            kind = params["traffictype"]
            if kind in have:
                self.say(f"unchanged traffic type {kind}")
                continue
            self.client.wait("addTrafficType", physicalnetworkid=net_id, **params)
            self.say(f"created traffic type {kind}")

    def _providers(self, net_id: str, wanted: list[str]) -> None:
        providers = self.client.find(
            "listNetworkServiceProviders", "networkserviceprovider", physicalnetworkid=net_id
        )
        by_name = {p["name"]: p for p in providers}
        for name in wanted:
            provider = by_name.get(name)
            if provider is None:
                raise ZoneFileError(f"no network service provider named {name}")
            if provider.get("state") == "Enabled":
                self.say(f"unchanged provider {name}")
                continue
            self.client.wait("updateNetworkServiceProvider", id=provider["id"], state="Enabled")
            self.say(f"updated provider {name}: Enabled")

    def _ip_range(self, zone_id: str, spec: dict[str, Any]) -> None:
        ranges = self.client.find("listVlanIpRanges", "vlan", zoneid=zone_id)
        if any(r.get("startip") == spec["startip"] for r in ranges):
            self.say(f"unchanged ip range {spec['startip']}-{spec.get('endip', '')}")
            return
        self.client.wait("createVlanIpRange", zoneid=zone_id, **spec)
        self.say(f"created ip range {spec['startip']}-{spec.get('endip', '')}")

    def _pod(self, zone_id: str, spec: dict[str, Any]) -> None:
        pod = _named(self.client, "listPods", "pod", spec["name"], zoneid=zone_id)
        if pod:
            self.say(f"unchanged pod {spec['name']}")
        else:
            pod = _one(self.client.wait("createPod", zoneid=zone_id, **_params(spec)), "pod")
            self.say(f"created pod {spec['name']}")
        for cluster in spec.get("clusters", []):
            self._cluster(zone_id, pod["id"], cluster)

    def _cluster(self, zone_id: str, pod_id: str, spec: dict[str, Any]) -> None:
        params = _params(spec)
        name = params.pop("name")
        found = [
            c
            for c in self.client.find("listClusters", "cluster", podid=pod_id, name=name)
            if c.get("name") == name
        ]
        if found:
            cluster = found[0]
            self.say(f"unchanged cluster {name}")
        else:
            result = self.client.wait(
                "addCluster",
                zoneid=zone_id,
                podid=pod_id,
                clustername=name,
                clustertype="CloudManaged",
                **params,
            )
            cluster = _one(result, "cluster")
            self.say(f"created cluster {name}")
        self._hosts(zone_id, pod_id, cluster, spec.get("hosts", []))
        for pool in spec.get("primary_storage", []):
            self._pool(zone_id, pod_id, cluster["id"], pool)

    def _hosts(
        self, zone_id: str, pod_id: str, cluster: dict[str, Any], wanted: list[dict[str, Any]]
    ) -> None:
        """Hosts have no name in the file (a simulator URL can add many): a cluster that has
        hosts already is left as it is, an empty one gets every entry."""
        present = self.client.find("listHosts", "host", clusterid=cluster["id"], type="Routing")
        if present:
            self.say(f"unchanged hosts of cluster {cluster['name']} ({len(present)})")
            return
        for entry in wanted:
            added = self.client.wait(
                "addHost",
                zoneid=zone_id,
                podid=pod_id,
                clusterid=cluster["id"],
                hypervisor=cluster.get("hypervisortype", "Simulator"),
                username="root",
                password="unused",
                **entry,
            )
            count = len(added["host"]) if isinstance(added.get("host"), list) else 1
            self.say(f"created {count} host(s) in cluster {cluster['name']}")

    def _pool(self, zone_id: str, pod_id: str, cluster_id: str, spec: dict[str, Any]) -> None:
        if _named(self.client, "listStoragePools", "storagepool", spec["name"], zoneid=zone_id):
            self.say(f"unchanged primary storage {spec['name']}")
            return
        params = {"scope": "cluster", "podid": pod_id, "clusterid": cluster_id, **spec}
        self.client.wait("createStoragePool", zoneid=zone_id, **params)
        self.say(f"created primary storage {spec['name']}")

    def _image_store(self, zone_id: str, spec: dict[str, Any]) -> None:
        if _named(self.client, "listImageStores", "imagestore", spec["name"]):
            self.say(f"unchanged secondary storage {spec['name']}")
            return
        self.client.wait("addImageStore", zoneid=zone_id, **spec)
        self.say(f"created secondary storage {spec['name']}")
