"""Block storage on a real QEMU host: hot-plug latency and snapshot export speed (issue 6).

Driver level (``QemuDriver``, no management server): one tiny TCG guest runs throughout.

* ``create+attach``: ``create_volume`` (a blank 1 GiB qcow2) plus ``attach_disk``
  (blockdev-add + device_add over QMP) on the running VM, ``--runs`` times; each volume is
  detached and deleted again outside the timing.
* ``export``: a 1 GiB volume filled with a byte pattern (every cluster allocated, nothing
  for zero detection to skip) is attached to the running VM; ``backup_snapshot`` (live:
  blockdev-backup sync=full into a staged qcow2, fsync, sha256, rename) is timed against
  ``qemu-img convert -U -O qcow2`` of the same image into the same directory, in the same
  run, alternating, ``--runs`` each; and against that convert followed by the export's own
  durability work (fsync + sha256, ``describe``), which separates the copy engine's speed
  from the cost of checksumming. The offline export (``qemu-img convert`` inside the
  driver, then fsync, sha256, rename) is measured too. Ratio = export MB/s / convert MB/s;
  goal >= 0.8. Exports include the fsync and checksum the reference does not do.

    .venv/bin/python bench/volume_ops.py [--runs 5] [--size-mib 1024]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from cumulo.agent.drivers.qemu import QemuDriver, RunDir
from cumulo.agent.drivers.qemu_volumes import describe
from cumulo.agent.images.tiny import build_tiny
from cumulo.agentrpc.messages import DiskSpec, VmSpec

MIB = 1 << 20


def timed(fn: Callable[[], object]) -> float:
    began = time.perf_counter()
    fn()
    return time.perf_counter() - began


def wait_ready(serial: Path, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if serial.exists() and "GUEST-READY" in serial.read_text(errors="replace"):
            return
        time.sleep(0.2)
    raise SystemExit("the guest did not boot")


def fill(path: Path, size_mib: int) -> None:
    """Every cluster written with a non-zero pattern, 64 MiB per qemu-io request."""
    cmds: list[str] = []
    for offset in range(0, size_mib, 64):
        cmds += ["-c", f"write -q -P 0x5a {offset}M {min(64, size_mib - offset)}M"]
    subprocess.run(["qemu-io", "-f", "qcow2", *cmds, str(path)], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--size-mib", type=int, default=1024)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="volbench-"))
    image = build_tiny(work / "images")
    pool, store = work / "pool", work / "store"
    pool.mkdir()
    store.mkdir()
    driver = QemuDriver(work / "state", accelerator="tcg")
    spec = VmSpec(
        name="i-2-bench-VM",
        uuid=str(uuid.uuid4()),
        vcpus=1,
        cpu_mhz=1000,
        memory_mib=128,
        disks=(DiskSpec("root", 0, str(pool / "root.qcow2"), 0, str(image.disk)),),
        hostname="bench",
    )
    try:
        driver.start(spec)
        wait_ready(RunDir(driver.vms_dir / spec.name).serial)
        attach_s = bench_attach(driver, spec.name, pool, args.runs)
        live, offline, convert, durable = bench_export(driver, spec.name, pool, store, args)
    finally:
        driver.destroy(spec.name)
        subprocess.run(["rm", "-rf", str(work)], check=False)
    report(attach_s, live, offline, convert, durable, args.size_mib)


def bench_attach(driver: QemuDriver, vm: str, pool: Path, runs: int) -> list[float]:
    times = []
    for index in range(runs):
        volume_id = str(uuid.uuid4())
        path = pool / f"{volume_id}.qcow2"
        disk = DiskSpec(volume_id, 1 + index, str(path), 1 << 30, None, "DATADISK")

        def create_and_attach(d: DiskSpec = disk) -> None:
            driver.create_volume(d.volume_id, d.path, d.size_bytes, "QCOW2", None)
            driver.attach_disk(vm, d)

        times.append(timed(create_and_attach))
        driver.detach_disk(vm, volume_id, str(path))
        driver.delete_volume(str(path))
    return times


def bench_export(
    driver: QemuDriver, vm: str, pool: Path, store: Path, args: argparse.Namespace
) -> tuple[list[float], list[float], list[float], list[float]]:
    volume_id = str(uuid.uuid4())
    path = pool / f"{volume_id}.qcow2"
    size = args.size_mib * MIB
    driver.create_volume(volume_id, str(path), size, "QCOW2", None)
    fill(path, args.size_mib)
    url = f"file://{store}"
    live: list[float] = []
    offline: list[float] = []
    convert: list[float] = []
    durable: list[float] = []
    for run in range(args.runs):  # offline first, while the volume is detached
        target = f"off-{run}.qcow2"
        began = time.perf_counter()
        driver.backup_snapshot("s", str(path), url, target, None)
        offline.append(time.perf_counter() - began)
        (store / target).unlink()
    driver.attach_disk(vm, DiskSpec(volume_id, 1, str(path), size, None, "DATADISK"))
    for run in range(args.runs):
        target = f"live-{run}.qcow2"
        sid = str(uuid.uuid4())
        began = time.perf_counter()
        driver.backup_snapshot(sid, str(path), url, target, vm)
        live.append(time.perf_counter() - began)
        (store / target).unlink()
        ref = store / f"ref-{run}.qcow2"
        began = time.perf_counter()
        subprocess.run(
            ["qemu-img", "convert", "-U", "-O", "qcow2", str(path), str(ref)], check=True
        )
        convert.append(time.perf_counter() - began)
        ref.unlink()
        began = time.perf_counter()  # the same copy plus the durability work an export does
        subprocess.run(
            ["qemu-img", "convert", "-U", "-O", "qcow2", str(path), str(ref)], check=True
        )
        describe(ref)
        durable.append(time.perf_counter() - began)
        ref.unlink()
    driver.detach_disk(vm, volume_id, str(path))
    return live, offline, convert, durable


def report(
    attach_s: list[float],
    live: list[float],
    offline: list[float],
    convert: list[float],
    durable: list[float],
    size_mib: int,
) -> None:
    def rate(times: list[float]) -> float:
        return size_mib / statistics.median(times)

    print(f"create+attach (1 GiB blank volume, running VM), {len(attach_s)} runs:")
    print(
        f"  median {statistics.median(attach_s) * 1000:.0f} ms, "
        f"min {min(attach_s) * 1000:.0f} ms, max {max(attach_s) * 1000:.0f} ms"
    )
    print(f"export of a {size_mib} MiB fully written volume, median of {len(live)} runs:")
    ref = rate(convert)
    print(f"  qemu-img convert -U (reference): {ref:.0f} MB/s")
    print(
        f"  qemu-img convert -U + fsync + sha256 (same work as an export): {rate(durable):.0f} MB/s"
    )
    for label, times in (("live (blockdev-backup)", live), ("offline (qemu-img)", offline)):
        print(
            f"  backup_snapshot {label}: {rate(times):.0f} MB/s  ratio {rate(times) / ref:.2f}"
            f" (to convert + fsync + sha256: {rate(times) / rate(durable):.2f})"
        )


if __name__ == "__main__":
    main()
