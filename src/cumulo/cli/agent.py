"""``cumulo agent``: run the host agent (registered by cli.main).

The token comes from ``--token-file`` (or the ``[agent] token_file`` setting, default
``<state_dir>/agent-token``), ``CUMULO_AGENT_TOKEN``, or ``--token``; a file or the
environment keeps it out of ``ps``. Exit status: 0 when stopped by a signal, 2 when the
token is missing or refused (retrying cannot help), 1 for a driver that cannot start.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

from cumulo.common.settings import Settings

log = logging.getLogger(__name__)
TOKEN_ENV = "CUMULO_AGENT_TOKEN"


class TokenMissing(Exception):
    pass


def register(sub: Any) -> None:
    """Add ``cumulo agent`` to the top-level parser's subparsers."""
    p = sub.add_parser(
        "agent",
        help="run the host agent on a hypervisor host",
        description="Run the host agent on a hypervisor host: it dials the management server "
        "over a WebSocket with the host's token from addHost, registers the host, and drives "
        "QEMU (or the simulator). Running VMs survive an agent restart and are re-adopted.",
    )
    p.add_argument("--server", help="management server URL, e.g. http://10.0.0.1:8080")
    p.add_argument("--token-file", help="file holding the host's token from addHost")
    p.add_argument("--token", help=f"the host's token (prefer --token-file or ${TOKEN_ENV})")
    p.add_argument("--driver", choices=("qemu", "sim"), help="hypervisor driver")
    p.add_argument("--state-dir", help="VM runtime files and driver state")
    p.add_argument("--hostname", help="the name the host registers with (default: hostname)")
    p.add_argument("--poll-seconds", type=float, help="VM power-state poll interval")
    p.add_argument(
        "--issue-token",
        metavar="HOST_ID",
        help="on a management box: replace the KVM host's token, print it (or write it to "
        "--token-file) and exit; the old token stops working",
    )
    qemu = p.add_argument_group("qemu driver")
    qemu.add_argument(
        "--pool",
        action="append",
        default=[],
        help="a primary storage directory on this host (repeat for several)",
    )
    qemu.add_argument(
        "--accelerator",
        choices=("kvm", "tcg"),
        help="skip the probe boot that otherwise chooses KVM or TCG",
    )
    sim = p.add_argument_group("simulator driver (tests)")
    sim.add_argument("--sim-cpus", type=int, default=8)
    sim.add_argument("--sim-cpu-mhz", type=int, default=2400)
    sim.add_argument("--sim-memory-mib", type=int, default=16384)
    p.set_defaults(fn=cmd_agent)


def _state_dir(settings: Settings, args: argparse.Namespace) -> Path:
    chosen = args.state_dir or settings.agent.state_dir
    return Path(chosen) if chosen else settings.data_dir / "agent"


def _token(settings: Settings, args: argparse.Namespace, state_dir: Path) -> str:
    if args.token:
        return str(args.token).strip()
    if os.environ.get(TOKEN_ENV):
        return os.environ[TOKEN_ENV].strip()
    path = Path(args.token_file or settings.agent.token_file or state_dir / "agent-token")
    try:
        return path.read_text().strip()
    except OSError as err:
        raise TokenMissing(f"cumulo agent: no token: cannot read {path}: {err.strerror}") from None


def _server(settings: Settings, args: argparse.Namespace) -> str:
    if args.server or settings.agent.server:
        return str(args.server or settings.agent.server)
    return f"http://{settings.api.host}:{settings.api.port}"


def make_driver(name: str, state_dir: Path, hostname: str, args: argparse.Namespace) -> Any:
    """The driver by name; qemu is imported only when asked for (it needs QEMU around)."""
    if name == "sim":
        from cumulo.agent.drivers.sim import SimDriver

        return SimDriver(
            hostname,
            cpus=args.sim_cpus,
            cpu_mhz=args.sim_cpu_mhz,
            memory_bytes=args.sim_memory_mib << 20,
        )
    module = importlib.import_module("cumulo.agent.drivers.qemu")
    return module.QemuDriver(
        state_dir, pools=tuple(args.pool), accelerator=args.accelerator, hostname=hostname
    )


def cmd_issue_token(settings: Settings, args: argparse.Namespace) -> int:
    """A new token for a host whose token was lost: written to the cloud database directly,
    so this runs where the management server's settings (and database) are."""
    from cumulo.services.errors import CloudError
    from cumulo.services.infra.agents import reissue_token
    from cumulo.services.runtime import open_runtime

    rt = open_runtime(settings, require_schema=True)
    try:
        with rt.db.write() as session:
            token = reissue_token(session, args.issue_token)
    except CloudError as err:
        print(f"cumulo agent: {err}", file=sys.stderr)
        return 1
    finally:
        rt.db.dispose()
    if args.token_file:
        path = Path(args.token_file)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(token + "\n")
        print(f"new token for host {args.issue_token} written to {path}")
    else:
        print(token)
    return 0


def cmd_agent(settings: Settings, args: argparse.Namespace) -> int:
    from cumulo.agent.agent import Agent, AgentOptions, AuthRefused

    if args.issue_token:
        return cmd_issue_token(settings, args)
    state_dir = _state_dir(settings, args)
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        token = _token(settings, args, state_dir)
    except TokenMissing as err:
        print(err, file=sys.stderr)
        return 2
    hostname = args.hostname or socket.gethostname()
    try:
        driver = make_driver(args.driver or settings.agent.driver, state_dir, hostname, args)
    except Exception as err:  # a driver that cannot start says why, once
        print(f"cumulo agent: the driver cannot start: {err}", file=sys.stderr)
        return 1
    options = AgentOptions(
        url=_server(settings, args),
        token=token,
        poll_s=args.poll_seconds or settings.agent.poll_seconds,
    )
    try:
        asyncio.run(_run_until_signal(Agent(options, driver)))
    except AuthRefused as err:
        print(f"cumulo agent: {err}", file=sys.stderr)
        return 2
    return 0


async def _run_until_signal(agent: Any) -> None:
    """Run until SIGTERM or SIGINT; VMs keep running (they do not belong to the agent)."""
    task = asyncio.ensure_future(agent.run())
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    log.info("agent starting", extra={"pid": os.getpid()})
    try:
        await task
    except asyncio.CancelledError:
        log.info("agent stopped")
