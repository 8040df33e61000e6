"""A real Debian 12 cloud image: debootstrap + cloud-init (CloudStack datasource).

``debootstrap`` installs a minimal bookworm from Debian's package registry with the cloud
kernel, systemd, cloud-init, openssh-server and qemu-guest-agent. The tree then becomes the
same self-contained disk as the tiny guest (``bootdisk``: syslinux on a FAT partition, the
ext4 root on the second), so the template is one qcow2 file. A ``cumulo-ready`` unit prints
``GUEST-READY host=... ip=...`` on the serial console once cloud-init has finished, the
marker the tests and benchmarks wait for with every image.

Needs root (debootstrap chroots). The debootstrapped tree is discarded after the build;
``debian.json`` records the inputs so an unchanged recipe is not rebuilt.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cumulo.agent.images.bootdisk import DiskLayout, build_bootable_qcow2
from cumulo.agent.images.kernel import ImageBuildError, run

BUILDER_VERSION = "1"
SUITE = "bookworm"
APT_SOURCES = (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list"))
PACKAGES = (
    "systemd-sysv", "udev", "linux-image-cloud-amd64", "initramfs-tools", "cloud-init",
    "openssh-server", "qemu-guest-agent", "ifupdown", "isc-dhcp-client", "netbase", "sudo",
    "ca-certificates", "curl",
    # debootstrap does not resolve virtual packages: python3-cryptography needs this one
    "python3-cffi-backend",
    # systemd-logind turns the ACPI power button into a clean shutdown; it needs D-Bus
    "dbus",
)  # fmt: skip
LAYOUT = DiskLayout(boot_mib=64, root_mib=2048)
CMDLINE = "console=ttyS0 root=/dev/vda2 ro net.ifnames=0 quiet"

# CloudStack first (its virtual router answers on the DHCP server address), None as the
# fallback so a guest without a router still boots promptly.
CLOUD_CFG = """locale: C.UTF-8
datasource_list: [ CloudStack, None ]
datasource:
  CloudStack:
    max_wait: 30
    timeout: 5
"""

READY_UNIT = """[Unit]
Description=Tell the serial console this guest is ready (Cumulo tests and benchmarks)
After=cloud-final.service

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/cumulo-ready

[Install]
WantedBy=cloud-init.target
"""

READY_SCRIPT = """#!/bin/sh
IP=$(hostname -I | cut -d' ' -f1)
echo "GUEST-READY host=$(hostname) ip=${IP:-none} uptime=$(cut -d' ' -f1 /proc/uptime)" > /dev/ttyS0
"""

FILES = {
    "usr/local/sbin/cumulo-ready": READY_SCRIPT,
    "etc/fstab": "/dev/vda2 / ext4 defaults,errors=remount-ro 0 1\n",
    "etc/hostname": "debian\n",
    "etc/hosts": "127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n",
    "etc/network/interfaces": "auto lo\niface lo inet loopback\n\n"
    "source /etc/network/interfaces.d/*\n",
    "etc/cloud/cloud.cfg.d/90_cumulo.cfg": CLOUD_CFG,
    "etc/systemd/system/cumulo-ready.service": READY_UNIT,
}


@dataclass(frozen=True)
class DebianImage:
    directory: Path
    disk: Path
    sha256: str
    created: bool


def build_debian(out_dir: Path, *, mirror: str = "", force: bool = False) -> DebianImage:
    """Build ``out_dir/debian/debian.qcow2`` unless the same recipe was built already."""
    if os.geteuid() != 0:
        raise ImageBuildError("building the Debian image needs root (debootstrap chroots)")
    target = out_dir / "debian"
    mirror = mirror or apt_mirror()
    digest = _inputs_digest(mirror)
    existing = _load(target, digest)
    if existing is not None and not force:
        return existing
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".build-", dir=target) as tmp:
        _build(Path(tmp), target, mirror, digest)
    built = _load(target, digest)
    if built is None:
        raise ImageBuildError("the Debian image build left no usable manifest")
    return dataclasses.replace(built, created=True)


def apt_mirror() -> str:
    """The Debian mirror this host's apt already uses: the image comes from the same place."""
    for source in APT_SOURCES:
        try:
            lines = source.read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            words = line.split()
            if line.startswith("URIs:") and len(words) > 1 and "security" not in words[1]:
                return words[1]
            if words[:1] == ["deb"] and len(words) > 2 and "security" not in words[1]:
                return words[1] if not words[1].startswith("[") else words[2]
    raise ImageBuildError("no Debian mirror in the apt sources: pass --mirror")


def _inputs_digest(mirror: str) -> str:
    h = hashlib.sha256()
    for part in (BUILDER_VERSION, SUITE, mirror, CMDLINE, repr(LAYOUT), repr(PACKAGES)):
        h.update(part.encode() + b"\0")
    for name, text in sorted(FILES.items()):
        h.update(f"{name}:{text}".encode() + b"\0")
    return h.hexdigest()


def _load(target: Path, digest: str) -> DebianImage | None:
    try:
        manifest = json.loads((target / "debian.json").read_text())
    except (OSError, ValueError):
        return None
    disk = target / "debian.qcow2"
    if manifest.get("inputs") != digest or not disk.is_file():
        return None
    return DebianImage(target, disk, str(manifest["sha256"]), created=False)


def _build(tmp: Path, target: Path, mirror: str, digest: str) -> None:
    tree = tmp / "rootfs"
    run(["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE,
         str(tree), mirror])  # fmt: skip
    configure(tree)
    kernel, initrd = _boot_files(tree)
    disk = tmp / "debian.qcow2"
    build_bootable_qcow2(
        disk,
        workdir=tmp,
        boot_files={"vmlinuz": kernel, "initrd.img": initrd},
        syslinux_cfg=(
            "DEFAULT debian\nPROMPT 0\nTIMEOUT 0\n"
            f"LABEL debian\n  KERNEL vmlinuz\n  INITRD initrd.img\n  APPEND {CMDLINE}\n"
        ),
        root_tree=tree,
        layout=LAYOUT,
    )
    shutil.rmtree(tree)
    with disk.open("rb") as fh:
        os.fsync(fh.fileno())
    os.replace(disk, target / "debian.qcow2")
    sha = hashlib.sha256()
    with (target / "debian.qcow2").open("rb") as fh:
        while chunk := fh.read(1 << 20):
            sha.update(chunk)
    manifest = {"inputs": digest, "sha256": sha.hexdigest(), "cmdline": CMDLINE, "suite": SUITE}
    (tmp / "debian.json").write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(tmp / "debian.json", target / "debian.json")


def configure(tree: Path) -> None:
    """Make the tree a cloud image: config files, first-boot identity, no download caches."""
    for name, text in FILES.items():
        path = tree / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(0o755 if text.startswith("#!") else 0o644)
    # cloud-final runs after multi-user.target: hooked there, the unit would form a cycle.
    wants = tree / "etc/systemd/system/cloud-init.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    link = wants / "cumulo-ready.service"
    link.unlink(missing_ok=True)
    link.symlink_to("/etc/systemd/system/cumulo-ready.service")
    # Every VM must get its own machine id and SSH host keys on first boot (cloud-init
    # regenerates the keys); a shared one would make clones indistinguishable.
    (tree / "etc/machine-id").write_text("")
    for key in (tree / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for item in (tree / cache).glob("*"):
            if item.is_file():
                item.unlink()


def _boot_files(tree: Path) -> tuple[Path, Path]:
    kernels = sorted((tree / "boot").glob("vmlinuz-*"))
    if not kernels:
        raise ImageBuildError("debootstrap installed no kernel")
    release = kernels[-1].name.removeprefix("vmlinuz-")
    initrd = tree / "boot" / f"initrd.img-{release}"
    if not initrd.is_file():
        subprocess.run(
            ["chroot", str(tree), "update-initramfs", "-c", "-k", release],
            capture_output=True,
            check=False,
        )
    if not initrd.is_file():
        raise ImageBuildError(f"no initramfs for {release}")
    return kernels[-1], initrd
