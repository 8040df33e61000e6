"""A self-contained bootable qcow2 made without mounting anything.

Layout (MBR): partition 1 is a small FAT16 boot partition holding syslinux, the kernel and
the initramfs; partition 2 is the ext4 root. SeaBIOS boots it like any cloud image, so a
template is one file that ``registerTemplate`` can take. Every step works on plain files
(``mkfs.fat``, ``syslinux`` through mtools, ``mcopy``, ``mkfs.ext4 -d``): no loop device, no
mount to leak, no root needed to build.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from cumulo.agent.images.kernel import ImageBuildError, run

SECTOR = 512
FIRST_LBA = 2048  # partitions start 1 MiB in, as every partitioning tool does
MBR_CODE = Path("/usr/lib/syslinux/mbr/mbr.bin")
_FAT16_LBA = 0x0E
_LINUX = 0x83


@dataclass(frozen=True)
class DiskLayout:
    boot_mib: int
    root_mib: int


def build_bootable_qcow2(
    out: Path,
    *,
    workdir: Path,
    boot_files: dict[str, Path],
    syslinux_cfg: str,
    root_tree: Path,
    layout: DiskLayout,
) -> None:
    """Write ``out`` (qcow2): syslinux + ``boot_files`` on p1, ``root_tree`` as ext4 on p2."""
    fat = workdir / "boot.fat"
    root = workdir / "root.ext4"
    raw = workdir / "disk.raw"
    make_fat(fat, layout.boot_mib, boot_files, syslinux_cfg, workdir)
    make_ext4(root, layout.root_mib, root_tree)
    assemble(raw, fat, root)
    run(["qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", str(raw), str(out)])
    for part in (fat, root, raw):
        part.unlink()


def make_fat(
    path: Path, size_mib: int, files: dict[str, Path], syslinux_cfg: str, workdir: Path
) -> None:
    """FAT16 with syslinux's boot sector and ldlinux, installed through mtools."""
    path.unlink(missing_ok=True)
    run(["mkfs.fat", "-F", "16", "-n", "CUMULOBOOT", "-C", str(path), str(size_mib * 1024)])
    run(["syslinux", "--install", str(path)])
    cfg = workdir / "syslinux.cfg"
    cfg.write_text(syslinux_cfg)
    for name, source in {**files, "syslinux.cfg": cfg}.items():
        run(["mcopy", "-o", "-i", str(path), str(source), f"::{name}"])
    cfg.unlink()


def make_ext4(path: Path, size_mib: int, tree: Path) -> None:
    path.unlink(missing_ok=True)
    with path.open("wb") as fh:
        fh.truncate(size_mib << 20)
    run(["mkfs.ext4", "-q", "-F", "-L", "root", "-E", "root_owner=0:0", "-d", str(tree), str(path)])


def assemble(raw: Path, fat: Path, root: Path) -> None:
    """MBR boot code + partition table, then the two file systems at their offsets."""
    boot_sectors = _sectors(fat)
    root_lba = FIRST_LBA + boot_sectors
    root_sectors = _sectors(root)
    with raw.open("wb") as out:
        out.truncate((root_lba + root_sectors) * SECTOR)
        out.write(
            _mbr(
                [
                    (FIRST_LBA, boot_sectors, _FAT16_LBA, True),
                    (root_lba, root_sectors, _LINUX, False),
                ]
            )
        )
        for lba, part in ((FIRST_LBA, fat), (root_lba, root)):
            out.seek(lba * SECTOR)
            with part.open("rb") as src:
                while chunk := src.read(1 << 20):
                    out.write(chunk)


def _sectors(path: Path) -> int:
    size = path.stat().st_size
    if size % SECTOR:
        raise ImageBuildError(f"{path.name} is not a whole number of sectors")
    return size // SECTOR


def _mbr(partitions: list[tuple[int, int, int, bool]]) -> bytes:
    """Sector 0: syslinux's 440-byte boot code, a disk id, four entries, the 55AA mark.

    CHS fields hold the "use LBA" filler (FE FF FF); SeaBIOS and the syslinux MBR read by LBA.
    """
    code = MBR_CODE.read_bytes()[:440] if MBR_CODE.exists() else b""
    if len(code) != 440:
        raise ImageBuildError(f"{MBR_CODE} is missing (install syslinux-common)")
    table = b""
    for lba, count, kind, active in partitions:
        chs = b"\xfe\xff\xff"
        table += struct.pack("<B3sB3sII", 0x80 if active else 0, chs, kind, chs, lba, count)
    table = table.ljust(64, b"\0")
    return code + b"CMLO" + b"\0\0" + table + b"\x55\xaa"
