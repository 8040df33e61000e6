"""Units of the VM console and statistics: counter folding, stats frames, the sim console,
the console URL an agent dials back to."""

from __future__ import annotations

import struct
import time
from datetime import timedelta

import pytest

from cumulo.agent.agent import console_url
from cumulo.agent.drivers.base import DriverError
from cumulo.agent.drivers.sim import SimDriver
from cumulo.agentrpc.messages import (
    NicSpec,
    NicStats,
    OpenConsole,
    VmSpec,
    VmStats,
    command_from_wire,
    to_wire,
)
from cumulo.agentrpc.wire import ProtocolError, decode, encode, vm_stats_from_wire
from cumulo.common.time import utcnow
from cumulo.db.models_stats import VmStat
from cumulo.services.compute.stats import COUNTERS, apply_sample, fields, fold_nics


def blank() -> VmStat:
    row = VmStat(vm_id=1, **{c: 0 for c in COUNTERS}, **{f"total_{c}": 0 for c in COUNTERS})
    row.cpu_percent, row.memory_kib = 0.0, 0
    return row


def test_totals_grow_by_increases_and_survive_a_restart() -> None:
    row, start = blank(), utcnow()
    row.sampled = start
    apply_sample(row, VmStats("vm", cpu_time_ns=0, net_rx_bytes=4096), 1, start)
    assert row.total_net_rx_bytes == 4096 and row.cpu_percent == 0.0  # nothing to compare
    later = start + timedelta(seconds=10)
    apply_sample(row, VmStats("vm", cpu_time_ns=5 * 10**9, net_rx_bytes=10240), 2, later)
    assert row.total_net_rx_bytes == 10240
    assert row.cpu_percent == 25.0  # 5 s of CPU over 10 s on 2 vCPUs
    restarted = later + timedelta(seconds=10)
    apply_sample(row, VmStats("vm", cpu_time_ns=10**9, net_rx_bytes=2048), 2, restarted)
    assert row.total_net_rx_bytes == 12288, "a lower counter is a restart: all of it is new"
    assert row.total_cpu_time_ns == 6 * 10**9 and row.net_rx_bytes == 2048


def test_api_fields_show_use_only_while_running() -> None:
    row = blank()
    row.total_net_rx_bytes, row.total_disk_read_ops, row.cpu_percent = 5 * 1024, 7, 12.5
    row.memory_kib = 1024
    running = fields(row, running=True)
    assert running["cpuused"] == "12.50%" and running["networkkbsread"] == 5
    assert running["diskioread"] == 7 and running["memorykbs"] == 1024
    stopped = fields(row, running=False)
    assert "cpuused" not in stopped and "memorykbs" not in stopped
    assert stopped["networkkbsread"] == 5


def test_stats_frames_round_trip_and_refuse_bad_counters() -> None:
    sample = VmStats("i-2-3-VM", cpu_time_ns=1, disk_read_ops=2)
    frame = decode(encode("vm_stats", vms=[to_wire(sample)]))
    assert frame.type == "vm_stats"
    assert vm_stats_from_wire(frame.body["vms"]) == [sample]
    assert vm_stats_from_wire([{"name": "x", "future_counter": 3}]) == [VmStats("x")]
    for bad in ([{"name": "x", "cpu_time_ns": -1}], [{"name": "x", "net_rx_bytes": "9"}], [{}], {}):
        with pytest.raises(ProtocolError):
            vm_stats_from_wire(bad)


def test_open_console_round_trips_and_names_the_dial_back() -> None:
    command = OpenConsole("r-1", name="i-2-3-VM", token="s", server_url="http://10.0.0.1:8080")
    assert command_from_wire(to_wire(command)) == command
    assert console_url("http://10.0.0.1:8080", "s") == "ws://10.0.0.1:8080/agent/v1/console?token=s"
    assert console_url("ws://h:1/agent/v1", "t") == "ws://h:1/agent/v1/console?token=t"


def test_the_simulator_console_speaks_rfb_until_server_init() -> None:
    driver = SimDriver("h1")
    with pytest.raises(DriverError):
        driver.open_console("i-2-9-VM")  # not running: no console
    driver.start(VmSpec(name="i-2-9-VM", uuid="u", vcpus=1, cpu_mhz=500, memory_mib=64))
    with driver.open_console("i-2-9-VM") as sock:
        sock.settimeout(5)
        assert sock.recv(12) == b"RFB 003.008\n"
        sock.sendall(b"RFB 003.008\n")
        assert sock.recv(2) == b"\x01\x01"
        sock.sendall(b"\x01")
        assert sock.recv(4) == b"\x00\x00\x00\x00"
        sock.sendall(b"\x01")
        data = b""
        while len(data) < 24 + len("i-2-9-VM"):
            data += sock.recv(100)
    assert struct.unpack(">HH", data[:4]) == (640, 480)
    assert data[24:] == b"i-2-9-VM"


def test_nic_counters_fold_per_nic_and_travel_in_frames() -> None:
    row, start = blank(), utcnow()
    row.sampled, row.nic_totals = start, {}
    first = VmStats("vm", net_rx_bytes=300, nics=(NicStats("a", 100, 10), NicStats("b", 200, 20)))
    apply_sample(row, first, 1, start)
    assert row.nic_totals == {"a": [100, 10, 100, 10], "b": [200, 20, 200, 20]}
    restarted = VmStats("vm", nics=(NicStats("a", 50, 5),))  # b unplugged, a restarted
    apply_sample(row, restarted, 1, start + timedelta(seconds=5))
    assert row.nic_totals == {"a": [50, 5, 150, 15], "b": [200, 20, 200, 20]}
    assert fold_nics({}, ()) == {}

    frame = decode(encode("vm_stats", vms=[to_wire(first)]))
    assert vm_stats_from_wire(frame.body["vms"]) == [first]
    with pytest.raises(ProtocolError):
        vm_stats_from_wire([{"name": "x", "nics": [{"rx_bytes": 1}]}])
    with pytest.raises(ProtocolError):
        vm_stats_from_wire([{"name": "x", "nics": [{"nic_id": "a", "tx_bytes": -5}]}])


def test_the_simulator_splits_traffic_over_its_nics() -> None:
    driver = SimDriver("h2")
    nics = (NicSpec("n1", "02:00:00:00:00:01", "br0"), NicSpec("n2", "02:00:00:00:00:02", "br0"))
    spec = VmSpec(name="i-2-8-VM", uuid="u", vcpus=1, cpu_mhz=500, memory_mib=64, nics=nics)
    driver.start(spec)
    time.sleep(0.05)
    (sample,) = driver.stats(("i-2-8-VM",))
    assert [n.nic_id for n in sample.nics] == ["n1", "n2"]
    assert sample.net_rx_bytes == sum(n.rx_bytes for n in sample.nics) > 0
