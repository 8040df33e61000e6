"""The guest kernel: Debian's cloud kernel, fetched from Debian's package registry.

``apt-get download`` brings the ``.deb`` that ``linux-image-cloud-amd64`` depends on, and
``dpkg-deb -x`` unpacks it; no image is downloaded from anywhere else. Both steps are cached
in the builder's cache directory, so a rebuild needs no network once the package is there.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

META_PACKAGE = "linux-image-cloud-amd64"


class ImageBuildError(Exception):
    """A guest image could not be built; the text says which step failed."""


@dataclass(frozen=True)
class Kernel:
    package: str  # the .deb's file name: name, version and architecture
    release: str  # the module directory name, e.g. 6.1.0-56-cloud-amd64
    vmlinuz: Path
    modules: Path  # .../lib/modules/<release>/kernel


def run(argv: list[str], *, cwd: Path | None = None) -> str:
    """Run a build tool; its stderr becomes the error text when it fails."""
    try:
        done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise ImageBuildError(f"{argv[0]} is not installed (see scripts/apt-packages.txt)") from exc
    if done.returncode != 0:
        raise ImageBuildError(f"{' '.join(argv)} failed: {done.stderr.strip()[-500:]}")
    return done.stdout


def fetch_kernel(cache_dir: Path) -> Kernel:
    """The newest cloud kernel the package index names, downloaded and unpacked once."""
    debs = cache_dir / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    deb = _cached_or_download(debs)
    return _unpack(deb, cache_dir / "kernels")


def _cached_or_download(debs: Path) -> Path:
    package = _resolve_package()
    if package is not None:
        found = sorted(debs.glob(f"{package}_*.deb"))
        if found:
            return found[-1]
        run(["apt-get", "download", "-q", package], cwd=debs)
        found = sorted(debs.glob(f"{package}_*.deb"))
        if found:
            return found[-1]
    found = sorted(debs.glob("linux-image-*-cloud-amd64_*.deb"))
    if not found:
        raise ImageBuildError(
            f"cannot find {META_PACKAGE} in the package index: run apt-get update"
        )
    return found[-1]


def _resolve_package() -> str | None:
    """The versioned kernel package the meta package points at (``None`` when unknown)."""
    try:
        text = run(["apt-cache", "depends", META_PACKAGE])
    except ImageBuildError:
        return None
    for line in text.splitlines():
        name = line.strip().removeprefix("Depends:").strip()
        if line.strip().startswith("Depends:") and name.startswith("linux-image-"):
            return name
    return None


def _unpack(deb: Path, kernels: Path) -> Kernel:
    """Unpack into a temporary directory renamed into place, so a crash leaves no half tree."""
    target = kernels / deb.stem
    if not target.is_dir():
        kernels.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".unpack-", dir=kernels))
        try:
            run(["dpkg-deb", "-x", str(deb), str(tmp)])
            tmp.rename(target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    vmlinuz = sorted((target / "boot").glob("vmlinuz-*"))
    if not vmlinuz:
        raise ImageBuildError(f"{deb.name} holds no vmlinuz")
    release = vmlinuz[-1].name.removeprefix("vmlinuz-")
    return Kernel(
        package=deb.name,
        release=release,
        vmlinuz=vmlinuz[-1],
        modules=target / "lib" / "modules" / release / "kernel",
    )
