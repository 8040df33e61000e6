"""Quiescing through a guest agent: a fake qemu-guest-agent on the channel's Unix socket.

The tiny guest has no agent, so the protocol is checked against a fake one here (the real
guests in test_qemu_volumes.py exercise the fallback: no answer, crash-consistent).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

from cumulo.agent.drivers.qemu_volumes import GA_SYNC_TIMEOUT_S, quiesced


def fake_agent(path: Path, log: list[str], answer: bool = True) -> socket.socket:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            buffer = b""
            while True:
                try:
                    chunk = conn.recv(4096)
                except OSError:
                    return
                if not chunk:
                    return
                buffer += chunk
                while b"\n" in buffer:
                    line, _, buffer = buffer.partition(b"\n")
                    request = json.loads(line.lstrip(b"\xff"))
                    log.append(request["execute"])
                    if not answer:
                        continue
                    if request["execute"] == "guest-sync-delimited":
                        reply = {"return": request["arguments"]["id"]}
                        conn.sendall(b"\xff" + json.dumps(reply).encode() + b"\n")
                    else:
                        conn.sendall(json.dumps({"return": 1}).encode() + b"\n")

    threading.Thread(target=serve, daemon=True).start()
    return server


def test_an_answering_agent_freezes_for_the_body_and_always_thaws(tmp_path: Path) -> None:
    log: list[str] = []
    server = fake_agent(tmp_path / "qga.sock", log)
    try:
        with quiesced(tmp_path / "qga.sock") as frozen:
            assert frozen
            assert log == ["guest-sync-delimited", "guest-fsfreeze-freeze"]
        deadline = time.monotonic() + 5
        while "guest-fsfreeze-thaw" not in log and time.monotonic() < deadline:
            time.sleep(0.01)
        assert log == ["guest-sync-delimited", "guest-fsfreeze-freeze", "guest-fsfreeze-thaw"]
    finally:
        server.close()


def test_a_silent_channel_gets_only_a_sync_and_no_freeze(tmp_path: Path) -> None:
    log: list[str] = []
    server = fake_agent(tmp_path / "qga.sock", log, answer=False)
    try:
        began = time.monotonic()
        with quiesced(tmp_path / "qga.sock") as frozen:
            assert not frozen
        assert time.monotonic() - began < GA_SYNC_TIMEOUT_S + 1.0
        time.sleep(0.1)
        assert log == ["guest-sync-delimited"]  # never a freeze a late agent could find
    finally:
        server.close()
    with quiesced(tmp_path / "missing.sock") as frozen:
        assert not frozen
