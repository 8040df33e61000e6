"""The pieces of the QEMU command line and the boot sector, without starting anything."""

from __future__ import annotations

import struct

from cumulo.agent.drivers.qemu import _boot_args, _disk_args, _nic_args, _opt, tap_name
from cumulo.agent.images.bootdisk import _mbr
from cumulo.agentrpc.messages import DiskSpec, NicSpec


def test_the_root_disk_boots_first_unless_a_kernel_is_given() -> None:
    disks = (
        DiskSpec("d", 1, "/pool/data,1.qcow2", 1 << 30, kind="DATADISK"),
        DiskSpec("r", 0, "/pool/root.qcow2", 0, template_path="/pool/t.qcow2"),
    )
    args = _disk_args(disks, boot_from_disk=True)
    assert args[1].startswith("file=/pool/root.qcow2,") and "bootindex=0" in args[3]
    assert "file=/pool/data,,1.qcow2," in args[5]  # commas in paths are escaped
    assert "bootindex" not in args[7]
    assert not any("bootindex" in a for a in _disk_args(disks, boot_from_disk=False))


def test_nics_follow_device_order_on_their_taps() -> None:
    nics = (NicSpec("b", "52:54:00:00:00:02", "br1", device_id=1),
            NicSpec("a", "52:54:00:AA:00:01", "br0", device_id=0))  # fmt: skip
    args = _nic_args(nics, ["tap0", "tap1"])
    assert args[1] == "tap,id=net0,ifname=tap0,script=no,downscript=no"
    assert args[3] == "virtio-net-pci,netdev=net0,mac=52:54:00:aa:00:01"
    assert args[7].endswith("mac=52:54:00:00:00:02")


def test_direct_boot_arguments_and_names() -> None:
    assert _boot_args({}) == []
    assert _boot_args({"kernel": "/k", "cmdline": "root=/dev/vda2"}) == [
        "-kernel", "/k", "-append", "root=/dev/vda2",
    ]  # fmt: skip
    name = tap_name("i-2-15-VM", 3)
    assert len(name) <= 15 and name == tap_name("i-2-15-VM", 3) != tap_name("i-2-16-VM", 3)
    assert _opt("a,b") == "a,,b"


def test_the_boot_sector_marks_the_first_partition_active() -> None:
    sector = _mbr([(2048, 100, 0x0E, True), (2148, 200, 0x83, False)])
    assert len(sector) == 512 and sector[510:] == b"\x55\xaa"
    first = struct.unpack("<B3sB3sII", sector[446:462])
    second = struct.unpack("<B3sB3sII", sector[462:478])
    assert (first[0], first[2], first[4], first[5]) == (0x80, 0x0E, 2048, 100)
    assert (second[0], second[2], second[4], second[5]) == (0, 0x83, 2148, 200)
