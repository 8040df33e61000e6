"""The database side of the agent protocol (``services.infra.agents``) on a migrated SQLite
database: tokens, registration, heartbeat timeouts, VM reports and the farm relay between
two servers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from cumulo.agentrpc.messages import (
    Answer,
    GetVmStatus,
    HostInfo,
    PowerState,
    StopVm,
    VmStatus,
    command_from_wire,
    to_wire,
)
from cumulo.common.time import utcnow
from cumulo.db.engine import Database
from cumulo.db.migrate import upgrade
from cumulo.db.models_agents import AgentCommand
from cumulo.db.models_infra import Host, HostCapacity
from cumulo.services.config import ConfigStore
from cumulo.services.errors import ParamError
from cumulo.services.infra import agents, capacity
from cumulo.services.infra.agents import CloudAgentBackend
from tests.support.infra import make_site

INFO = HostInfo("kvm1", cpus=4, cpu_mhz=2000, memory_bytes=8 << 30, hypervisor="KVM")


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    url = f"sqlite:///{tmp_path / 'cloud.db'}"
    upgrade(url)
    database = Database(url)
    yield database
    database.dispose()


def add_host(db: Database, address: str = "10.1.0.5") -> tuple[str, str]:
    site = make_site(db, hypervisor="KVM")
    with db.write() as session:
        from cumulo.db.models_infra import Cluster

        cluster = session.get_one(Cluster, site.cluster_id)
        host, token = agents.add_kvm_host(
            session, cluster, f"http://{address}", hosttags="", resource_state="Enabled"
        )
        return host.uuid, token


def host_row(db: Database, uuid: str) -> Host:
    with db.read() as session:
        return session.scalars(select(Host).where(Host.uuid == uuid)).one()


def test_only_the_hash_of_the_token_is_stored_and_it_authenticates(db: Database) -> None:
    uuid, token = add_host(db)
    row = host_row(db, uuid)
    assert row.status == "Connecting" and row.agent_token_hash != token
    assert token.split(".", 1)[1] not in (row.agent_token_hash or "")
    backend = CloudAgentBackend(db, ConfigStore(), server_id=1)
    assert backend.authenticate(token) == uuid
    for bad in (token + "x", uuid + ".wrong", "", "no-dot", token.split(".", 1)[1]):
        assert backend.authenticate(bad) is None


def test_a_second_host_at_the_same_address_in_the_cluster_is_refused(db: Database) -> None:
    site = make_site(db, hypervisor="KVM")
    with db.write() as session:
        from cumulo.db.models_infra import Cluster

        cluster = session.get_one(Cluster, site.cluster_id)
        agents.add_kvm_host(
            session, cluster, "http://10.9.9.9", hosttags="", resource_state="Enabled"
        )
        with pytest.raises(ParamError, match="already exists"):
            agents.add_kvm_host(
                session, cluster, "http://10.9.9.9", hosttags="", resource_state="Enabled"
            )


def test_registration_sizes_the_host_once_and_updates_in_place(db: Database) -> None:
    uuid, _ = add_host(db)
    backend = CloudAgentBackend(db, ConfigStore(), server_id=7)
    reg = backend.register(uuid, INFO, "10.1.0.5")
    assert reg.ping_interval == 5.0 and reg.name == "10.1.0.5"
    backend.register(uuid, INFO.__class__(**{**INFO.__dict__, "cpus": 8}), "10.1.0.5")
    row = host_row(db, uuid)
    assert (row.status, row.mgmt_server_id, row.cpu_number) == ("Up", 7, 8)
    with db.read() as session:
        caps = dict(
            session.execute(
                select(HostCapacity.type, HostCapacity.total).where(HostCapacity.host_id == row.id)
            ).all()
        )
    assert caps == {capacity.CPU: 16000, capacity.MEMORY: 8 << 30}


def test_silent_hosts_go_disconnected_then_down(db: Database) -> None:
    uuid, _ = add_host(db)
    backend = CloudAgentBackend(db, ConfigStore(), server_id=1)
    backend.register(uuid, INFO, "p")
    store = ConfigStore()
    with db.write() as session:
        assert agents.check_heartbeats(session, store) == (0, 0)
        session.get_one(Host, host_row(db, uuid).id).last_ping = utcnow() - timedelta(seconds=13)
    with db.write() as session:
        assert agents.heartbeats_overdue(session, store)
        assert agents.check_heartbeats(session, store) == (1, 0)  # 5 s x 2.5 passed
    with db.write() as session:
        session.get_one(Host, host_row(db, uuid).id).last_ping = utcnow() - timedelta(seconds=61)
    with db.write() as session:
        assert agents.check_heartbeats(session, store) == (0, 1)
    row = host_row(db, uuid)
    assert (row.status, row.mgmt_server_id) == ("Down", None)
    assert not backend.reachable(uuid)
    backend.heartbeat(uuid)  # the agent is back
    assert host_row(db, uuid).status == "Up" and backend.reachable(uuid)


def test_a_disconnect_seen_by_an_old_server_does_not_undo_a_new_registration(
    db: Database,
) -> None:
    uuid, _ = add_host(db)
    old, new = CloudAgentBackend(db, ConfigStore(), 1), CloudAgentBackend(db, ConfigStore(), 2)
    old.register(uuid, INFO, "p")
    new.register(uuid, INFO, "p")  # the agent re-dialled another server first
    old.disconnected(uuid)
    assert (host_row(db, uuid).status, host_row(db, uuid).mgmt_server_id) == ("Up", 2)
    new.disconnected(uuid)
    assert (host_row(db, uuid).status, host_row(db, uuid).mgmt_server_id) == ("Disconnected", None)


def test_vm_reports_keep_the_last_state_and_a_full_report_marks_the_absent_missing(
    db: Database,
) -> None:
    uuid, _ = add_host(db)
    backend = CloudAgentBackend(db, ConfigStore(), 1)
    running = PowerState.RUNNING
    backend.report_vms(uuid, [VmStatus("a", running), VmStatus("b", running)], True)
    backend.report_vms(uuid, [VmStatus("b", PowerState.STOPPED)], False)
    host_id = host_row(db, uuid).id
    with db.read() as session:
        assert agents.vm_reports(session, host_id) == {"a": "Running", "b": "Stopped"}
    with db.write() as session:
        host = session.get_one(Host, host_id)
        changed = agents.record_vm_report(
            session, host, [VmStatus("b", PowerState.STOPPED)], full=True
        )
    assert changed == ["a"]  # b unchanged; a not listed by a full report
    with db.read() as session:
        assert agents.vm_reports(session, host_id) == {"a": "Missing", "b": "Stopped"}


def test_the_relay_carries_a_command_between_two_servers_once(db: Database) -> None:
    uuid, _ = add_host(db)
    sender, holder = (
        CloudAgentBackend(db, ConfigStore(), 1),
        CloudAgentBackend(db, ConfigStore(), 2),
    )
    holder.register(uuid, INFO, "p")
    assert sender.reachable(uuid)
    command = StopVm("relay-1", "i-2-3-VM", forced=True)
    assert sender.relay_post(uuid, command, 30) is None
    assert sender.relay_answer("relay-1") is None
    assert holder.relay_claim(["some-other-host"]) == []
    (claimed,) = holder.relay_claim([uuid])
    assert claimed.command == command and claimed.host_id == uuid and 0 < claimed.timeout_s <= 30
    assert holder.relay_claim([uuid]) == []  # claimed once
    answer = Answer("relay-1", True, result={"power": "Stopped"})
    holder.relay_complete("relay-1", answer)
    assert sender.relay_answer("relay-1") == answer
    # A resend of the same request id gets the first answer without a new row.
    assert sender.relay_post(uuid, command, 30) == answer
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(AgentCommand)) == 1


def test_an_expired_relay_is_not_delivered(db: Database) -> None:
    uuid, _ = add_host(db)
    sender, holder = (
        CloudAgentBackend(db, ConfigStore(), 1),
        CloudAgentBackend(db, ConfigStore(), 2),
    )
    holder.register(uuid, INFO, "p")
    sender.relay_post(uuid, GetVmStatus("relay-2", "x"), 30)
    sender.relay_expire("relay-2")
    assert holder.relay_claim([uuid]) == []
    sender.relay_post(uuid, GetVmStatus("relay-3", "x"), 0.0)  # its deadline has passed
    assert holder.relay_claim([uuid]) == []
    with db.read() as session:
        states = dict(session.execute(select(AgentCommand.request_id, AgentCommand.state)).all())
    assert states == {"relay-2": "Expired", "relay-3": "Expired"}


def test_relayed_payload_is_the_commands_wire_form() -> None:
    command = StopVm("r", "n", forced=True, timeout_s=3.0)
    assert command_from_wire(to_wire(command)) == command


def test_two_servers_racing_for_one_relayed_command_deliver_it_once(db: Database) -> None:
    uuid, _ = add_host(db)
    sender = CloudAgentBackend(db, ConfigStore(), 1)
    old, new = CloudAgentBackend(db, ConfigStore(), 2), CloudAgentBackend(db, ConfigStore(), 3)
    sender.relay_post(uuid, GetVmStatus("relay-race", "x"), 30)
    with db.read() as session:
        row = session.scalars(select(AgentCommand)).one()
        row_id, payload = row.id, dict(row.payload)
    # Both read it Pending; only the first conditional UPDATE wins.
    assert len(new.relay_claim([uuid])) == 1
    with db.write() as session:
        assert old._claim(session, row_id, payload, uuid) is None
    with db.read() as session:
        assert session.get_one(AgentCommand, row_id).holder_server_id == 3
