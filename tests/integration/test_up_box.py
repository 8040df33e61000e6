"""`cumulo up` gives a whole cloud in a box: API, S3, and a local KVM host booting real VMs
from the locally built tiny template, through the public API."""

from __future__ import annotations

import configparser
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from cs import CloudStack

from tests.support.cloud import free_port

pytestmark = [pytest.mark.vm, pytest.mark.slow]


def _kill_qemus(state: Path) -> None:
    for pid_file in state.glob("vms/*/qemu.pid"):
        with contextlib.suppress(ValueError, OSError):
            os.kill(int(pid_file.read_text().strip()), signal.SIGKILL)


def test_up_boots_a_vm_from_the_box_template(tmp_path: Path) -> None:
    data, port, s3_port = tmp_path / "data", free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUMULO_")}
    env.update(
        CUMULO_DATA_DIR=str(data),
        CUMULO_API__PORT=str(port),
        CUMULO_S3__PORT=str(s3_port),
        CUMULO_LOG__FILE=str(tmp_path / "up.log"),
        CUMULO_BOX__DEBIAN="false",  # minutes of debootstrap: tests/agent/test_debian_image.py
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "cumulo", "up"],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    state = data / "agent" / "state"
    try:
        lines = []
        assert proc.stdout is not None
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line, f"cumulo up exited: {''.join(lines)}"
            lines.append(line)
            if line.startswith("Cumulo is up"):
                break
        text = "".join(lines)
        assert "Box zone:" in text and f"S3 endpoint:     http://127.0.0.1:{s3_port}" in text
        assert httpx.get(f"http://127.0.0.1:{s3_port}/").status_code in (200, 403)
        ini = configparser.ConfigParser()
        ini.read(data / "admin.ini")
        cs = CloudStack(
            endpoint=f"http://127.0.0.1:{port}/client/api",
            key=ini["cloudstack"]["key"],
            secret=ini["cloudstack"]["secret"],
            poll_interval=0.5,
        )
        zone = cs.listZones(name="box")["zone"][0]
        template = cs.listTemplates(templatefilter="featured", name="tiny")["template"][0]
        offering = cs.listServiceOfferings(name="box-small")["serviceoffering"][0]
        # the Debian template needs more memory than tiny: its offering is there too
        medium = cs.listServiceOfferings(name="box-medium")["serviceoffering"][0]
        assert (offering["memory"], medium["memory"]) == (128, 512)
        vm = cs.deployVirtualMachine(
            zoneid=zone["id"],
            templateid=template["id"],
            serviceofferingid=offering["id"],
            fetch_result=True,
        )["virtualmachine"]
        assert vm["state"] == "Running"
        serial = state / "vms" / vm["instancename"] / "serial.log"
        deadline = time.monotonic() + 180
        while "GUEST-READY" not in (serial.read_text(errors="replace") if serial.exists() else ""):
            assert time.monotonic() < deadline, "the box VM never became ready"
            time.sleep(1)
        cs.destroyVirtualMachine(id=vm["id"], expunge=True, fetch_result=True)
        assert not (state / "vms" / vm["instancename"]).exists()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(60)
        _kill_qemus(state)
