"""haproxy in the router namespace, balancing over three guest namespaces.

The clients run in the "internet" namespace against the load balancer's public address; the
router's nftables table is applied too, with the firewall rule that opens the LB port, as a
real router has it.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cumulo.agent.network import router_lb, router_nft
from cumulo.agentrpc.netconfig import FirewallRule, LoadBalancer, PortRange, RouterConfig
from tests.agent.routerns import (
    INTERNET_IP,
    INTERNET_IP2,
    PUBLIC_IPS,
    Topology,
    curl,
    netns_run,
    router_topology,
)

pytestmark = [
    pytest.mark.net,
    pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy missing"),
    pytest.mark.skipif(shutil.which("nft") is None, reason="nftables missing"),
]

LB_IP = PUBLIC_IPS[2]
URL = f"http://{LB_IP}/"


@dataclasses.dataclass
class Lab:
    topo: Topology
    run_dir: Path

    def config(self, backends: tuple[int, ...], **lb: object) -> RouterConfig:
        rule = LoadBalancer(
            name="web",
            public_ip=LB_IP,
            public_port=80,
            private_port=80,
            protocol="tcp",
            algorithm="roundrobin",
            source_cidrs=(),
            backends=tuple(self.topo.guest_ip(i) for i in backends),
        )
        return RouterConfig(
            network_id="net-lb",
            generation=1,
            vni=None,
            bridge="rg0",
            cidr=self.topo.cidr,
            netmask="255.255.255.0",
            router_ip=self.topo.router_ip,
            domain="",
            dns_servers=(),
            services=("Firewall", "Lb", "SourceNat"),
            source_nat_ip=PUBLIC_IPS[0],
            public_ips=PUBLIC_IPS,
            dhcp=(),
            vm_data=(),
            port_forwards=(),
            static_nats=(),
            firewall=(FirewallRule(LB_IP, "tcp", PortRange(80, 80), ("0.0.0.0/0",)),),
            egress_default_allow=True,
            egress=(),
            load_balancers=(dataclasses.replace(rule, **lb),),  # type: ignore[arg-type]
        )

    def apply(self, cfg: RouterConfig) -> str:
        text = router_nft.ruleset(cfg, guest_if="rg0", public_if="rp0")
        router_nft.apply(text, self.topo.router)
        return router_lb.apply(cfg, self.topo.router, self.run_dir)

    def spread(self, count: int, source: str | None = None) -> collections.Counter[str | None]:
        """Which backend answered each of ``count`` requests (None: the request failed)."""
        answers: collections.Counter[str | None] = collections.Counter()
        for _ in range(count):
            body = curl(self.topo.internet, URL, source=source, timeout=3)
            answers[body.split()[0] if body else None] += 1
        return answers


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    with router_topology(tmp_path) as topo:
        lab = Lab(topo, tmp_path / "router")
        try:
            for i in range(3):
                topo.add_guest(i)
                topo.echo_server(topo.guest(i), f"vm{i}", topo.guest_ip(i), 80)
            yield lab
        finally:
            router_lb.stop(lab.run_dir)


def test_spreads_and_follows_membership(lab: Lab) -> None:
    assert lab.apply(lab.config((0, 1, 2))) == "started"
    answers = lab.spread(12)
    assert answers == {"vm0": 4, "vm1": 4, "vm2": 4}  # roundrobin over three members
    assert lab.apply(lab.config((0, 1, 2))) == "unchanged"
    old = router_lb.running_pids(lab.run_dir)
    # removing a member is a graceful reload and takes it out of rotation
    assert lab.apply(lab.config((0, 2))) == "reloaded"
    assert router_lb.running_pids(lab.run_dir) != old
    assert lab.spread(8) == {"vm0": 4, "vm2": 4}
    # haproxy killed behind our back: the next apply starts it again
    for pid in router_lb.running_pids(lab.run_dir):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while router_lb.running_pids(lab.run_dir) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert lab.apply(lab.config((0, 2))) == "started"
    assert lab.spread(2) == {"vm0": 1, "vm2": 1}
    # no balancer left: haproxy stops
    cfg = dataclasses.replace(lab.config((0,)), load_balancers=())
    assert lab.apply(cfg) == "stopped"
    assert router_lb.running_pids(lab.run_dir) == []
    assert curl(lab.topo.internet, URL) is None


def test_dead_backend_is_skipped(lab: Lab) -> None:
    lab.apply(lab.config((0, 1, 2)))
    assert set(lab.spread(6)) == {"vm0", "vm1", "vm2"}
    lab.topo.procs[1].kill()  # vm1's server dies (procs: one echo server per guest, in order)
    lab.topo.procs[1].wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # two failed TCP checks, 2 s apart, take it out
        if set(lab.spread(4)) == {"vm0", "vm2"}:
            break
        time.sleep(0.5)
    answers = lab.spread(10)
    assert answers.get(None, 0) == 0 and answers.get("vm1", 0) == 0, answers
    assert answers["vm0"] > 0 and answers["vm2"] > 0


def test_source_algorithm_and_cidrs(lab: Lab) -> None:
    lab.apply(lab.config((0, 1, 2), algorithm="source", source_cidrs=(f"{INTERNET_IP}/32",)))
    answers = lab.spread(6)
    assert len(answers) == 1 and None not in answers  # one client, always the same member
    assert lab.spread(2, source=INTERNET_IP2) == {None: 2}  # not in the rule's CIDRs
    lab.apply(lab.config((0, 1, 2), algorithm="leastconn"))
    assert set(lab.spread(6, source=INTERNET_IP2)) <= {"vm0", "vm1", "vm2"}


def test_bad_algorithm_is_refused_and_keeps_the_running_config(lab: Lab) -> None:
    lab.apply(lab.config((0, 1)))
    with pytest.raises(ValueError):
        lab.apply(lab.config((0, 1), algorithm="random; quit"))
    assert set(lab.spread(4)) == {"vm0", "vm1"}


def _with_cookies(lab: Lab, jar: Path, count: int, cookie: str | None = None) -> set[str]:
    """Backends answering ``count`` requests of one client keeping its cookies in ``jar``."""
    seen = set()
    for _ in range(count):
        argv = ["curl", "-sf", "--max-time", "3", "-c", str(jar), "-b", cookie or str(jar), URL]
        done = netns_run(lab.topo.internet, *argv, timeout=15)
        assert done.returncode == 0, done.stderr
        seen.add(done.stdout.split()[0])
    return seen


def test_stickiness_policies_keep_a_client_on_one_backend(lab: Lab, tmp_path: Path) -> None:
    lab.apply(lab.config((0, 1, 2)))
    assert len(lab.spread(6)) == 3, "round robin without a policy"
    # LbCookie: haproxy inserts its cookie; a client sending it back stays put
    lab.apply(
        lab.config((0, 1, 2), stickiness="LbCookie", stickiness_params=(("cookieName", "CUMULO"),))
    )
    assert "cookie CUMULO insert" in (lab.run_dir / router_lb.CONFIG_NAME).read_text()
    assert len(_with_cookies(lab, tmp_path / "jar", 6)) == 1
    assert "CUMULO" in (tmp_path / "jar").read_text()
    # AppCookie: the application's cookie value picks the backend, learnt from the request
    lab.apply(
        lab.config((0, 1, 2), stickiness="AppCookie", stickiness_params=(("cookieName", "SID"),))
    )
    assert len(_with_cookies(lab, tmp_path / "jar2", 6, cookie="SID=client-a")) == 1
    # SourceBased: one client address, one backend, even with round robin
    lab.apply(lab.config((0, 1, 2), stickiness="SourceBased"))
    assert len(lab.spread(6)) == 1
    # a parameter haproxy would read as more configuration is refused; the old config stays
    with pytest.raises(ValueError):
        lab.apply(
            lab.config(
                (0, 1, 2),
                stickiness="LbCookie",
                stickiness_params=(("cookieName", "a\n\tmode tcp"),),
            )
        )
    assert len(lab.spread(6)) == 1


def test_health_check_policy_http_path_and_thresholds(lab: Lab) -> None:
    cfg = lab.config((0, 1, 2), health_path="/", health_interval_s=1, health_timeout_s=1,
                     health_rise=1, health_fall=2)  # fmt: skip
    lab.apply(cfg)
    text = (lab.run_dir / router_lb.CONFIG_NAME).read_text()
    assert "option httpchk GET /" in text and "default-server inter 1s fall 2 rise 1" in text
    assert set(lab.spread(6)) == {"vm0", "vm1", "vm2"}
    lab.topo.procs[2].kill()
    lab.topo.procs[2].wait()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and set(lab.spread(3)) != {"vm0", "vm1"}:
        time.sleep(0.5)
    answers = lab.spread(9)
    assert answers.get(None, 0) == 0 and answers.get("vm2", 0) == 0, answers
    with pytest.raises(ValueError):
        lab.apply(lab.config((0, 1), health_path="/x y\n\tmode tcp"))
