"""`cumulo zone apply FILE`: a zone described once in YAML, built through the signed API."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

from tests.support.cloud import Cloud

ZONE = """
zone:
  name: {name}
  networktype: Advanced
  internaldns1: 10.250.0.2
  dns1: 10.250.0.3
  physical_networks:
    - name: {name}-phys
      isolationmethods: VXLAN
      vlan: 5000-5099
      traffic_types: [Guest, Public, Management]
      providers: [VirtualRouter]
  ip_ranges:
    - {{gateway: 10.{o}.0.1, netmask: 255.255.255.0, startip: 10.{o}.0.10, endip: 10.{o}.0.99,
       forvirtualnetwork: true}}
  pods:
    - name: {name}-pod
      gateway: 10.{o}.1.1
      netmask: 255.255.255.0
      startip: 10.{o}.1.10
      endip: 10.{o}.1.99
      clusters:
        - name: {name}-c1
          hypervisor: Simulator
          hosts:
            - url: http://sim/{name}-c1/host?count=3&cpunumber=4&cpuspeed=2000&memory=8192
          primary_storage:
            - {{name: {name}-pool, url: "sim://{name}-pool"}}
  secondary_storage:
    - {{name: {name}-images, provider: NFS, url: "nfs://10.{o}.2.5/export/images"}}
"""


def _apply(cloud: Cloud, path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CUMULO_", "CLOUDSTACK_"))}
    env.update(
        CLOUDSTACK_ENDPOINT=cloud.endpoint,
        CLOUDSTACK_KEY=cloud.admin.api_key,
        CLOUDSTACK_SECRET=cloud.admin.secret,
    )
    return subprocess.run(
        [sys.executable, "-m", "cumulo", "zone", "apply", str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_zone_apply_builds_a_zone_once_and_then_changes_nothing(
    cloud: Cloud, tmp_path: Path
) -> None:
    name = f"yz-{uuid.uuid4().hex[:8]}"
    octet = 100 + cloud.port % 100  # distinct ranges per backend's server
    path = tmp_path / "zone.yaml"
    path.write_text(ZONE.format(name=name, o=octet))

    first = _apply(cloud, path)
    assert first.returncode == 0, first.stderr
    for thing in (
        "zone",
        "physical network",
        "pod",
        "cluster",
        "primary storage",
        "secondary storage",
        "ip range",
    ):
        assert f"created {thing}" in first.stdout, (thing, first.stdout)
    assert "created 3 host(s)" in first.stdout

    zone = cloud.call("listZones", name=name)["zone"][0]
    assert zone["allocationstate"] == "Enabled"
    hosts = cloud.call("listHosts", zoneid=zone["id"], type="Routing")["host"]
    assert len(hosts) == 3 and {h["state"] for h in hosts} == {"Up"}
    memory = [
        c for c in cloud.call("listCapacity", zoneid=zone["id"])["capacity"] if c["type"] == 0
    ]
    assert memory and memory[0]["capacitytotal"] == 3 * 8192 * 1024 * 1024

    second = _apply(cloud, path)
    assert second.returncode == 0, second.stderr
    assert "created" not in second.stdout, second.stdout
    assert f"unchanged zone {name}" in second.stdout
    assert len(cloud.call("listHosts", zoneid=zone["id"], type="Routing")["host"]) == 3


def test_zone_apply_refuses_a_file_without_a_zone(cloud: Cloud, tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("pods: []\n")
    result = _apply(cloud, path)
    assert result.returncode == 1
    assert "expected a mapping with a 'zone' key" in result.stderr
