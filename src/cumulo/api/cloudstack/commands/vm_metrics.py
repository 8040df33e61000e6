"""listVirtualMachinesMetrics: listVirtualMachines plus CloudStack's metrics view of each VM.

CloudStack's metrics plugin takes the VM list response and adds human-readable totals:
``cputotal`` in GHz, ``memorytotal`` in GiB, network and disk traffic in MiB from the
``*kbs*`` counters, ``diskiopstotal`` (reads plus writes) and the first NIC's ``ipaddress``.
The parameters, scoping and paging are listVirtualMachines' own: the handler is wrapped,
not copied, so both commands always filter alike.
"""

from __future__ import annotations

import functools
from typing import Any

from cumulo.api.cloudstack.commands.vms import VM_FIELDS, list_virtual_machines
from cumulo.api.cloudstack.registry import Kind, ResponseField, command
from cumulo.api.cloudstack.results import Ctx, Listing

METRIC_FIELDS = (
    ResponseField("ipaddress", "the VM's primary IP address"),
    ResponseField("cputotal", "the total cpu capacity in Ghz"),
    ResponseField("cpuused", "the amount of the vm's CPU currently used"),
    ResponseField("memorytotal", "the total memory capacity in GiB"),
    ResponseField("networkread", "network read in MiB"),
    ResponseField("networkwrite", "network write in MiB"),
    ResponseField("diskread", "disk read in MiB"),
    ResponseField("diskwrite", "disk write in MiB"),
    ResponseField("diskiopstotal", "the total disk iops", "long"),
)
_MIB_FROM_KIB = {
    "networkread": "networkkbsread",
    "networkwrite": "networkkbswrite",
    "diskread": "diskkbsread",
    "diskwrite": "diskkbswrite",
}


def with_metrics(vm: dict[str, Any]) -> dict[str, Any]:
    """The metrics fields CloudStack derives from a VM response (absent inputs: absent)."""
    out = dict(vm)
    nics = [n for n in vm.get("nic", []) if n.get("ipaddress")]
    if nics:
        out["ipaddress"] = nics[0]["ipaddress"]
    if vm.get("cpunumber") is not None and vm.get("cpuspeed") is not None:
        out["cputotal"] = f"{vm['cpunumber'] * vm['cpuspeed'] / 1000.0:.1f} Ghz"
    if vm.get("memory") is not None:
        out["memorytotal"] = f"{vm['memory'] / 1024.0:.2f} GiB"
    for field, source in _MIB_FROM_KIB.items():
        if vm.get(source) is not None:
            out[field] = f"{vm[source] / 1024.0:.2f} MiB"
    if vm.get("diskioread") is not None and vm.get("diskiowrite") is not None:
        out["diskiopstotal"] = vm["diskioread"] + vm["diskiowrite"]
    return out


_list_vms = list_virtual_machines.handler


@functools.wraps(_list_vms)
def _list_metrics(ctx: Ctx, *args: Any, **kwargs: Any) -> Listing:
    listing: Listing = _list_vms(ctx, *args, **kwargs)
    return Listing([with_metrics(vm) for vm in listing.items], listing.count)


_list_metrics.__module__ = __name__  # listed under this module in docs/api-coverage.md

list_virtual_machines_metrics = command(
    "listVirtualMachinesMetrics",
    kind=Kind.LIST,
    description="Lists VM metrics",
    response="virtualmachine",
    since="4.9.3",
    scoped=True,
    fields=(*VM_FIELDS, *METRIC_FIELDS),
)(_list_metrics)
