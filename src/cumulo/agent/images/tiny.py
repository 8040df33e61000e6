"""The tiny test guest: Debian's cloud kernel, a busybox initramfs and an ext4 root.

One build yields ``tiny.qcow2``, a self-contained bootable disk (``bootdisk``), plus the same
kernel and initramfs as separate files for direct kernel boot (the accelerator probe and the
raw-QEMU benchmark use them). ``tiny.json`` is written last and is the commit point: it
records a digest of every input, so a rebuild with unchanged inputs does nothing.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cumulo.agent.images import guest_files
from cumulo.agent.images.bootdisk import DiskLayout, build_bootable_qcow2
from cumulo.agent.images.kernel import ImageBuildError, Kernel, fetch_kernel

BUILDER_VERSION = "1"
BUSYBOX = Path("/bin/busybox")
LAYOUT = DiskLayout(boot_mib=24, root_mib=64)
CMDLINE = "console=ttyS0 quiet panic=-1 root=/dev/vda2"
_TREE_DIRS: tuple[str, ...] = ("bin", "sbin", "proc", "sys", "dev", "tmp", "etc", "newroot")
_TREE_DIRS += ("lib/modules", "run", "var", "root/.ssh", "www/cgi-bin")


@dataclass(frozen=True)
class TinyImage:
    directory: Path
    disk: Path
    kernel: Path
    initrd: Path
    cmdline: str
    sha256: str
    created: bool  # False when an up-to-date build was already there

    def direct_boot(self, *, with_disk: bool = True) -> dict[str, str]:
        """``VmSpec.boot`` details that skip the firmware and boot the kernel directly."""
        cmdline = self.cmdline if with_disk else self.cmdline.replace(" root=/dev/vda2", "")
        return {"kernel": str(self.kernel), "initrd": str(self.initrd), "cmdline": cmdline}


def build_tiny(out_dir: Path, *, cache_dir: Path | None = None, force: bool = False) -> TinyImage:
    """Build into ``out_dir/tiny`` unless an identical build is already there."""
    target = out_dir / "tiny"
    cache = cache_dir or out_dir / "cache"
    kernel = fetch_kernel(cache)
    digest = _inputs_digest(kernel)
    existing = _load(target, digest)
    if existing is not None and not force:
        return existing
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".build-", dir=target) as tmp:
        _build(Path(tmp), target, kernel, digest)
    built = _load(target, digest)
    if built is None:
        raise ImageBuildError("the tiny image build left no usable manifest")
    return dataclasses.replace(built, created=True)


def _inputs_digest(kernel: Kernel) -> str:
    h = hashlib.sha256()
    for part in (BUILDER_VERSION, kernel.package, CMDLINE, repr(LAYOUT), repr(guest_files.MODULES)):
        h.update(part.encode() + b"\0")
    for name, (text, mode) in sorted(guest_files.FILES.items()):
        h.update(f"{name}:{mode}:{text}".encode() + b"\0")
    h.update(_file_sha256(BUSYBOX).encode())
    return h.hexdigest()


def _load(target: Path, digest: str) -> TinyImage | None:
    """The finished build in ``target`` when it was made from exactly these inputs."""
    try:
        manifest = json.loads((target / "tiny.json").read_text())
    except (OSError, ValueError):
        return None
    files = [target / manifest.get(k, "") for k in ("disk", "kernel", "initrd")]
    if manifest.get("inputs") != digest or not all(f.is_file() for f in files):
        return None
    if _file_sha256(files[0]) != manifest.get("sha256"):
        return None
    disk, kernel, initrd = files
    cmdline, sha256 = str(manifest["cmdline"]), str(manifest["sha256"])
    return TinyImage(target, disk, kernel, initrd, cmdline, sha256, created=False)


def _build(tmp: Path, target: Path, kernel: Kernel, digest: str) -> None:
    tree = tmp / "rootfs"
    make_tree(tree, kernel)
    initrd = tmp / "initrd.gz"
    make_initramfs(tree, initrd)
    disk = tmp / "tiny.qcow2"
    build_bootable_qcow2(
        disk,
        workdir=tmp,
        boot_files={"vmlinuz": kernel.vmlinuz, "initrd.gz": initrd},
        syslinux_cfg=_syslinux_cfg(),
        root_tree=tree,
        layout=LAYOUT,
    )
    shutil.copyfile(kernel.vmlinuz, tmp / "vmlinuz")
    for name in ("tiny.qcow2", "vmlinuz", "initrd.gz"):
        _fsync(tmp / name)
        os.replace(tmp / name, target / name)
    manifest = {
        "inputs": digest,
        "kernel_package": kernel.package,
        "disk": "tiny.qcow2",
        "kernel": "vmlinuz",
        "initrd": "initrd.gz",
        "cmdline": CMDLINE,
        "sha256": _file_sha256(target / "tiny.qcow2"),
    }
    (tmp / "tiny.json").write_text(json.dumps(manifest, indent=2) + "\n")
    _fsync(tmp / "tiny.json")
    os.replace(tmp / "tiny.json", target / "tiny.json")


def make_tree(tree: Path, kernel: Kernel) -> None:
    """The guest's files: busybox, the virtio modules and the scripts in ``guest_files``."""
    for d in _TREE_DIRS:
        (tree / d).mkdir(parents=True, exist_ok=True)
    shutil.copyfile(BUSYBOX, tree / "bin" / "busybox")
    (tree / "bin" / "busybox").chmod(0o755)
    for module in guest_files.MODULES:
        source = kernel.modules / f"{module}.ko"
        if not source.is_file():
            raise ImageBuildError(f"{kernel.package} has no module {module}.ko")
        shutil.copyfile(source, tree / "lib" / "modules" / source.name)
    for name, (text, executable) in guest_files.FILES.items():
        path = tree / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(0o755 if executable else 0o644)


def make_initramfs(tree: Path, out: Path) -> None:
    """A gzip'd newc cpio of ``tree``, written with busybox cpio (no cpio package needed)."""
    names = [".", *sorted(str(p.relative_to(tree)) for p in tree.rglob("*"))]
    done = subprocess.run(
        [str(BUSYBOX), "cpio", "-o", "-H", "newc"],
        cwd=tree,
        input="\n".join(names).encode() + b"\n",
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        raise ImageBuildError(f"busybox cpio failed: {done.stderr.decode()[-300:]}")
    out.write_bytes(gzip.compress(done.stdout, compresslevel=9))


def _syslinux_cfg() -> str:
    return (
        "DEFAULT cumulo\nPROMPT 0\nTIMEOUT 0\n"
        f"LABEL cumulo\n  KERNEL vmlinuz\n  INITRD initrd.gz\n  APPEND {CMDLINE}\n"
    )


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _fsync(path: Path) -> None:
    """Data on disk before the rename that publishes it (a crash never shows a torn file)."""
    with path.open("rb") as fh:
        os.fsync(fh.fileno())
