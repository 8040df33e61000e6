"""VM boot time: raw QEMU against the full Cumulo stack (issue 5's benchmark).

Part (a), ``raw``: ``qemu-system-x86_64`` started by hand on a fresh copy-on-write clone of
the tiny image (machine ``pc``, TCG ``tb-size=32``, 1 vCPU, 128 MiB, the self-contained
disk booted by SeaBIOS + syslinux), timed from process start to ``GUEST-READY`` on the
serial console. One at a time (median of ``--runs``), then ``--parallel`` at once (time until
the last is ready). ``--direct-kernel`` adds the same boots with ``-kernel/-initrd``, which
skip the firmware and boot loader, for comparison.

Part (b), ``stack``: a fresh ``cumulo up`` (management server, local agent with the QEMU
driver, the box zone and its tiny template, no S3) in a temporary data directory; each boot
is timed from the deployVirtualMachine request to ``GUEST-READY`` in that VM's serial log,
through the API, the job, the planner, the agent WebSocket, the template cache, the disk
clone and QEMU. VMs are destroyed and expunged between runs (outside the timing). The
report prints both parts and the ratio stack / raw of the one-at-a-time medians.

    .venv/bin/python bench/vm_boot.py [--runs 5] [--parallel 10] [--parts raw,stack]
"""

from __future__ import annotations

import argparse
import configparser
import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cumulo.agent.drivers.qemu import READY_MARKER, boot_until_marker
from cumulo.agent.images.tiny import TinyImage, build_tiny
from cumulo.cli.client import Client, load_credentials
from cumulo.common.settings import load_settings

TIMEOUT_S = 120.0


@dataclass
class PartResult:
    """Seconds per boot one at a time, and the wall time of one parallel wave."""

    name: str
    single: list[float] = field(default_factory=list)
    wave_s: float | None = None
    wave_size: int = 0
    failures: int = 0


def qemu_argv(disk: Path, image: TinyImage, *, direct: bool) -> list[str]:
    argv = [
        "qemu-system-x86_64", "-machine", "pc", "-accel", "tcg,tb-size=32",
        "-smp", "1", "-m", "128", "-nodefaults", "-display", "none", "-serial", "stdio",
        "-drive", f"file={disk},if=virtio,format=qcow2",
    ]  # fmt: skip
    if direct:
        argv += ["-kernel", str(image.kernel), "-initrd", str(image.initrd)]
        argv += ["-append", image.cmdline]
    return argv


def clone(image: TinyImage, workdir: Path, index: int) -> Path:
    """A fresh CoW clone per boot, as a VM's root disk is (made outside the timing)."""
    disk = workdir / f"clone-{index}-{time.monotonic_ns()}.qcow2"
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(image.disk), "-F", "qcow2",
         str(disk)],
        check=True,
    )  # fmt: skip
    return disk


def raw_boot(image: TinyImage, workdir: Path, index: int, *, direct: bool) -> float | None:
    disk = clone(image, workdir, index)
    try:
        return boot_until_marker(qemu_argv(disk, image, direct=direct), READY_MARKER, TIMEOUT_S)
    finally:
        disk.unlink(missing_ok=True)


def raw_part(image: TinyImage, runs: int, parallel: int, *, direct: bool = False) -> PartResult:
    result = PartResult("raw qemu" + (" (direct kernel)" if direct else " (disk boot)"))
    with tempfile.TemporaryDirectory(prefix="vm-boot-") as tmp:
        workdir = Path(tmp)
        for i in range(runs):
            took = raw_boot(image, workdir, i, direct=direct)
            if took is None:
                result.failures += 1
            else:
                result.single.append(took)
        if parallel > 0:
            result.wave_size = parallel
            began = time.monotonic()
            with ThreadPoolExecutor(max_workers=parallel) as pool:
                times = list(
                    pool.map(
                        lambda i: raw_boot(image, workdir, 1000 + i, direct=direct),
                        range(parallel),
                    )
                )
            result.failures += sum(t is None for t in times)
            result.wave_s = time.monotonic() - began
    return result


class Stack:
    """A ``cumulo up`` box in a temporary directory, driven through the signed API."""

    def __init__(self, root: Path) -> None:
        self.data = root / "data"
        self.port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("CUMULO_")}
        env.update(
            CUMULO_DATA_DIR=str(self.data),
            CUMULO_API__PORT=str(self.port),
            CUMULO_BOX__S3="false",
            CUMULO_BOX__DEBIAN="false",
            CUMULO_LOG__LEVEL="WARNING",
            CUMULO_LOG__FILE=str(root / "up.log"),
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cumulo", "up"],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("Cumulo is up"):
                break
        else:
            raise SystemExit(f"cumulo up failed; see {root / 'up.log'}")
        ini = configparser.ConfigParser()
        ini.read(self.data / "admin.ini")
        self.client = Client(load_credentials(self.data / "admin.ini"))
        zone = self.client.call("listZones", name="box")["zone"][0]
        template = self.client.call("listTemplates", templatefilter="all", name="tiny")
        offering = self.client.call("listServiceOfferings", name="box-small")
        self.args = {
            "zoneid": zone["id"],
            "templateid": template["template"][0]["id"],
            "serviceofferingid": offering["serviceoffering"][0]["id"],
        }

    def serial(self, name: str) -> Path:
        return self.data / "agent" / "state" / "vms" / name / "serial.log"

    def wait_job(self, jobid: str) -> dict[str, Any]:
        while True:
            job = self.client.call("queryAsyncJobResult", jobid=jobid)
            if job["jobstatus"] != 0:
                return job
            time.sleep(0.05)

    def boot(self) -> tuple[float | None, str | None]:
        """Seconds from the deploy request to readiness, and the VM's id."""
        began = time.monotonic()
        job = self.wait_job(self.client.call("deployVirtualMachine", **self.args)["jobid"])
        if job["jobstatus"] != 1:
            return None, None
        vm = job["jobresult"]["virtualmachine"]
        serial = self.serial(vm["instancename"])
        while time.monotonic() - began < TIMEOUT_S:
            if serial.exists() and READY_MARKER in serial.read_bytes():
                return time.monotonic() - began, vm["id"]
            time.sleep(0.02)
        return None, vm["id"]

    def expunge(self, vm_id: str | None) -> None:
        if vm_id is not None:
            job = self.client.call("destroyVirtualMachine", id=vm_id, expunge=True)
            self.wait_job(job["jobid"])

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(60)
        for pid_file in self.data.glob("agent/state/vms/*/qemu.pid"):
            with contextlib.suppress(ValueError, OSError):
                os.kill(int(pid_file.read_text().strip()), signal.SIGKILL)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stack_part(image: TinyImage, runs: int, parallel: int) -> PartResult:
    del image  # the box builds its own tiny image into its data directory
    result = PartResult("stack (deploy → ready via the API)")
    with tempfile.TemporaryDirectory(prefix="vm-boot-stack-") as tmp:
        stack = Stack(Path(tmp))
        try:
            for _ in range(runs):
                took, vm_id = stack.boot()
                stack.expunge(vm_id)
                if took is None:
                    result.failures += 1
                else:
                    result.single.append(took)
            if parallel > 0:
                result.wave_size = parallel
                began = time.monotonic()
                with ThreadPoolExecutor(max_workers=parallel) as pool:
                    booted = list(pool.map(lambda _: stack.boot(), range(parallel)))
                result.wave_s = time.monotonic() - began
                result.failures += sum(t is None for t, _ in booted)
                for _, vm_id in booted:
                    stack.expunge(vm_id)
        finally:
            stack.close()
    return result


Part = Callable[[TinyImage, int, int], PartResult]
PARTS: dict[str, Part] = {"raw": raw_part, "stack": stack_part}


def report(results: list[PartResult]) -> None:
    print(f"{'part':34} {'median s':>9} {'min':>6} {'max':>6} {'runs':>5} {'wave':>12}")
    for r in results:
        median = statistics.median(r.single) if r.single else float("nan")
        low = min(r.single, default=float("nan"))
        high = max(r.single, default=float("nan"))
        wave = f"{r.wave_size} in {r.wave_s:.2f}s" if r.wave_s is not None else "-"
        print(f"{r.name:34} {median:9.2f} {low:6.2f} {high:6.2f} {len(r.single):5} {wave:>12}")
        if r.failures:
            print(f"  {r.failures} boot(s) never reached readiness in {TIMEOUT_S:.0f} s")
    by_name = {r.name.split(" ")[0]: r for r in results}
    raw, stack = by_name.get("raw"), by_name.get("stack")
    if raw and stack and raw.single and stack.single:
        ratio = statistics.median(stack.single) / statistics.median(raw.single)
        print(f"stack / raw (median, one at a time): {ratio:.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="boots one at a time per part")
    parser.add_argument("--parallel", type=int, default=10, help="VMs booted at once (0: none)")
    parser.add_argument("--image-dir", help="where the tiny image is built (default: data dir)")
    parser.add_argument("--parts", default="raw,stack", help=f"comma list of {', '.join(PARTS)}")
    parser.add_argument("--direct-kernel", action="store_true", help="also time -kernel boots")
    args = parser.parse_args()
    image_dir = Path(args.image_dir) if args.image_dir else load_settings().data_dir / "images"
    image = build_tiny(image_dir)
    results = [PARTS[name](image, args.runs, args.parallel) for name in args.parts.split(",")]
    if args.direct_kernel:
        results.append(raw_part(image, args.runs, 0, direct=True))
    report(results)
    return 0 if not any(r.failures for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
