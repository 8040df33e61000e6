"""Publishing to RabbitMQ: a consumer on a topic exchange gets the events with CloudStack's
routing keys (``source.category.type.resourcetype.uuid``, reference §7.2).

The broker is Debian's rabbitmq-server, started here as a throw-away node: its own name,
data and log directories, cookie (HOME), an epmd on its own port that this fixture starts and
stops, AMQP and distribution listeners on loopback ports picked free. Nothing of a system
RabbitMQ (if any) is touched.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pika  # type: ignore[import-untyped]
import pytest

from tests.integration.tenants import Tenant, make_tenant, uniq
from tests.support.cloud import Cloud, free_port

SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"
CTL = "/usr/lib/rabbitmq/bin/rabbitmqctl"
EXCHANGE = "cumulo-test-events"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(SERVER).exists(), reason="rabbitmq-server is not installed"),
]


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    base = tmp_path_factory.mktemp("rabbit")
    amqp, dist, epmd_port = free_port(), free_port(), free_port()
    node = f"cumulo-{uuid.uuid4().hex[:8]}@localhost"
    (base / "enabled_plugins").write_text("[].\n")
    (base / "rabbitmq.conf").write_text(
        f"listeners.tcp.default = 127.0.0.1:{amqp}\nloopback_users.guest = true\n"
    )
    env = {
        **os.environ,
        "HOME": str(base),
        "RABBITMQ_NODENAME": node,
        "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
        "RABBITMQ_NODE_PORT": str(amqp),
        "RABBITMQ_DIST_PORT": str(dist),
        "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
        "RABBITMQ_LOG_BASE": str(base / "log"),
        "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq.conf"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
        "RABBITMQ_PID_FILE": str(base / "rabbit.pid"),
        "ERL_EPMD_PORT": str(epmd_port),
        "ERL_EPMD_ADDRESS": "127.0.0.1",
        "RABBITMQ_SERVER_ERL_ARGS": f"-kernel inet_dist_use_interface {{127,0,0,1}} "
        f"-kernel inet_dist_listen_min {dist} -kernel inet_dist_listen_max {dist}",
    }
    epmd_bin = shutil.which("epmd") or "/usr/lib/erlang/bin/epmd"
    epmd = subprocess.Popen(
        [epmd_bin, "-port", str(epmd_port), "-address", "127.0.0.1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    log = (base / "server.out").open("wb")
    server = subprocess.Popen([SERVER], env=env, stdout=log, stderr=log, start_new_session=True)
    url = f"amqp://guest:guest@127.0.0.1:{amqp}/%2F"
    try:
        _wait_for(url, server, base)
        yield url
    finally:
        subprocess.run([CTL, "-n", node, "stop"], env=env, capture_output=True, timeout=60)
        _stop(server)
        _stop(epmd)


def _wait_for(url: str, server: subprocess.Popen[bytes], base: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError((base / "server.out").read_text()[-3000:])
        try:
            pika.BlockingConnection(pika.URLParameters(url)).close()
            return
        except pika.exceptions.AMQPError:
            time.sleep(0.5)
    raise RuntimeError("rabbitmq-server did not come up in 120 s")


class Consumer:
    """An exclusive queue bound to the whole exchange; collects (routing key, body)."""

    def __init__(self, url: str) -> None:
        self.conn = pika.BlockingConnection(pika.URLParameters(url))
        self.channel = self.conn.channel()
        self.channel.exchange_declare(exchange=EXCHANGE, exchange_type="topic", durable=True)
        self.queue = self.channel.queue_declare(queue="", exclusive=True).method.queue
        self.channel.queue_bind(queue=self.queue, exchange=EXCHANGE, routing_key="#")
        self.got: list[tuple[str, dict[str, Any]]] = []

    def drain_until(self, pred: Any, timeout: float = 20) -> list[tuple[str, dict[str, Any]]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            method, _props, body = self.channel.basic_get(self.queue, auto_ack=True)
            if method is None:
                if pred(self.got):
                    return self.got
                self.conn.sleep(0.05)
                continue
            self.got.append((method.routing_key, json.loads(body)))
        raise AssertionError(f"never consumed what was expected: {self.got}")

    def close(self) -> None:
        self.conn.close()


@pytest.fixture(scope="module")
def publishing(cloud: Cloud, broker: str) -> Iterator[str]:
    cloud.call("updateConfiguration", name="event.bus.rabbitmq.exchange", value=EXCHANGE)
    cloud.call("updateConfiguration", name="event.bus.rabbitmq.url", value=broker)
    yield broker
    cloud.call("resetConfiguration", name="event.bus.rabbitmq.url")
    cloud.call("resetConfiguration", name="event.bus.rabbitmq.exchange")


def authorize(t: Tenant) -> tuple[str, str]:
    group = t.call("createSecurityGroup", name=uniq("sg"))["securitygroup"]
    job = t.call(
        "authorizeSecurityGroupIngress",
        securitygroupid=group["id"],
        protocol="tcp",
        startport=80,
        endport=80,
        cidrlist="192.0.2.0/24",
    )
    return str(group["id"]), str(job["jobid"])


def test_consumer_gets_events_with_cloudstack_routing_keys(cloud: Cloud, publishing: str) -> None:
    consumer = Consumer(publishing)
    try:
        t = make_tenant(cloud)
        t.call("updateUser", id=t.user_id, firstname=uniq("fn"))
        (event,) = t.call("listEvents", type="USER.UPDATE")["event"]
        group, jobid = authorize(t)
        update_key = f"management-server.ActionEvent.USER-UPDATE.User.{t.user_id}"
        job_key = f"management-server.AsyncJobEvent.CompleteAsyncJob.SecurityGroup.{group}"

        def both(got: list[tuple[str, dict[str, Any]]]) -> bool:
            keys = {k for k, _ in got}
            return update_key in keys and job_key in keys

        got = consumer.drain_until(both)
        body = next(b for k, b in got if k == update_key and b["eventid"] == event["id"])
        assert (body["event"], body["account"], body["status"]) == (
            "USER.UPDATE",
            t.name,
            "Completed",
        )
        job = next(b for k, b in got if k == job_key)
        assert (job["jobid"], job["status"]) == (jobid, "SUCCEEDED")
        scheduled = f"management-server.ActionEvent.SG-AUTH-INGRESS.SecurityGroup.{group}"
        assert scheduled in {k for k, _ in got}
        assert all(len(k.split(".")) == 5 for k, _ in got)
    finally:
        consumer.close()


def test_publish_action_events_false_is_honoured(cloud: Cloud, publishing: str) -> None:
    consumer = Consumer(publishing)
    cloud.call("updateConfiguration", name="publish.action.events", value="false")
    try:
        t = make_tenant(cloud)
        t.call("updateUser", id=t.user_id, firstname=uniq("fn"))
        group, _jobid = authorize(t)
        job_key = f"management-server.AsyncJobEvent.CompleteAsyncJob.SecurityGroup.{group}"
        got = consumer.drain_until(lambda g: job_key in {k for k, _ in g})
        time.sleep(0.5)
        got = consumer.drain_until(lambda g: True, timeout=1)
        mine = [k for k, _ in got if t.user_id in k or group in k]
        assert mine and not [k for k in mine if k.split(".")[1] == "ActionEvent"]
    finally:
        cloud.call("resetConfiguration", name="publish.action.events")
        consumer.close()
