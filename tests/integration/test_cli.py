"""The ``cumulo`` client run as a subprocess against a real server, as a user would.

Every call goes through the installed ``cumulo`` entry point with its own HOME and config
directory; the server is the shared test cloud. Completion is checked by sourcing the
generated bash script in a real bash; the interactive shell is driven in tmux.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.integration.tenants import PASSWORD, uniq
from tests.support.cloud import Cloud

CUMULO = str(Path(sys.executable).with_name("cumulo"))


@dataclass
class Cli:
    home: Path
    env: dict[str, str]

    def run(self, *args: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [CUMULO, *args],
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def ok(self, *args: str) -> str:
        done = self.run(*args)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "-o", "json"))


def _clean_env(home: Path) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("CUMULO_", "CLOUDSTACK_", "XDG_"))
    }
    env.update(HOME=str(home), CUMULO_CONFIG_DIR=str(home / "cfg"), NO_COLOR="1")
    env["PATH"] = f"{Path(CUMULO).parent}:{env.get('PATH', '/usr/bin:/bin')}"
    return env


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path, _clean_env(tmp_path))


@pytest.fixture
def admin_cli(cli: Cli, cloud: Cloud) -> Cli:
    cli.ok(
        "profile",
        "add",
        "admin",
        f"url={cloud.endpoint}",
        f"apikey={cloud.admin.api_key}",
        f"secretkey={cloud.admin.secret}",
    )
    return cli


def _domain(cloud: Cloud, name: str | None = None) -> dict[str, Any]:
    created: dict[str, Any] = cloud.call("createDomain", name=name or uniq("cli"))["domain"]
    return created


def _account(cloud: Cloud, domain_id: str, username: str) -> dict[str, Any]:
    account: dict[str, Any] = cloud.call(
        "createAccount",
        accounttype=0,
        username=username,
        email=f"{username}@example.com",
        firstname="F",
        lastname="L",
        password=PASSWORD,
        domainid=domain_id,
    )["account"]
    return account


def test_profiles_are_private_and_secrets_never_printed(cli: Cli, cloud: Cloud) -> None:
    secret = cloud.admin.secret
    out = cli.ok(
        "profile",
        "add",
        "one",
        f"url={cloud.endpoint}",
        f"apikey={cloud.admin.api_key}",
        f"secretkey={secret}",
    )
    assert "one" in out and secret not in out
    config = cli.home / "cfg" / "config"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert stat.S_IMODE(config.parent.stat().st_mode) == 0o700
    cli.ok(
        "profile", "add", "two", "url=http://127.0.0.1:9/client/api", "username=u", "password=pw1"
    )
    listed = cli.ok("profile", "list")
    assert "one" in listed and "two" in listed and secret not in listed and "pw1" not in listed
    shown = cli.ok("profile", "show", "one")
    assert secret not in shown and cloud.admin.api_key in shown
    assert "secretkey = ********" in shown
    # the last added is current; `use` switches back
    current = [line.split(" | ")[1].strip() for line in listed.splitlines() if line[:1] == "*"]
    assert current == ["two"]
    cli.ok("profile", "use", "one")
    assert cli.json("list", "zones", "--filter", "id") is not None
    # an unusable profile is refused and nothing is written
    before = config.read_text()
    bad = cli.run("profile", "add", "three", "apikey=x")
    assert bad.returncode == 2 and "url" in bad.stderr
    unknown = cli.run("profile", "use", "nope")
    assert unknown.returncode == 2 and "nope" in unknown.stderr
    assert config.read_text() == before


def test_every_output_format_and_filter(admin_cli: Cli, cloud: Cloud) -> None:
    domain = _domain(cloud)
    name = domain["name"]
    raw = admin_cli.json("list", "domains", f"name={name}")
    assert raw["count"] == 1 and raw["domain"][0]["id"] == domain["id"]
    assert raw["domain"][0]["path"] == domain["path"]

    filtered = admin_cli.json("list", "domains", f"name={name}", "--filter=id,name")
    assert filtered["domain"] == [{"id": domain["id"], "name": name}]

    rows = list(
        csv.DictReader(io.StringIO(admin_cli.ok("list", "domains", f"name={name}", "-o", "csv")))
    )
    assert len(rows) == 1 and rows[0]["id"] == domain["id"] and rows[0]["path"] == domain["path"]

    as_yaml = yaml.safe_load(admin_cli.ok("list", "domains", f"name={name}", "-o", "yaml"))
    assert as_yaml["domain"][0]["id"] == domain["id"]

    as_text = admin_cli.ok("list", "domains", f"name={name}", "-o", "text")
    assert f"name = {name}" in as_text and f"id = {domain['id']}" in as_text

    table = admin_cli.ok("list", "domains", f"name={name}")
    header, rule, line = table.splitlines()[:3]
    assert [c.strip() for c in header.split(" | ")][:2] == ["id", "name"]
    assert set(rule) <= {"-", "+"}
    assert line.startswith(domain["id"]) and name in line
    # the same call in CloudMonkey's `api` form
    assert admin_cli.json("api", "listDomains", f"name={name}")["domain"][0]["id"] == domain["id"]


def test_paging_fetches_every_page_with_all(admin_cli: Cli, cloud: Cloud) -> None:
    domain = _domain(cloud)
    names = sorted(uniq("pg") for _ in range(5))
    for n in names:
        _account(cloud, domain["id"], n)
    one_page = admin_cli.json(
        "list", "accounts", f"domainid={domain['id']}", "pagesize=2", "page=1"
    )
    assert len(one_page["account"]) == 2 and one_page["count"] == 5
    everything = admin_cli.json(
        "list", "accounts", f"domainid={domain['id']}", "pagesize=2", "--all"
    )
    assert sorted(a["name"] for a in everything["account"]) == names
    assert everything["count"] == 5


def test_async_commands_wait_or_return_the_job(admin_cli: Cli, cloud: Cloud) -> None:
    waited = _domain(cloud)
    out = admin_cli.json("delete", "domain", f"id={waited['id']}")
    assert out.get("success") in (True, "true")
    assert not cloud.call("listDomains", listall="true", name=waited["name"]).get("domain")

    later = _domain(cloud)
    job = admin_cli.json("delete", "domain", f"id={later['id']}", "--async")
    assert set(job) >= {"jobid"}
    result = cloud.wait_job(job["jobid"])
    assert result["jobstatus"] == 1
    followed = admin_cli.json("query", "asyncjobresult", f"jobid={job['jobid']}")
    assert followed["jobstatus"] == 1


def test_errors_have_exit_codes_and_errortext(admin_cli: Cli, cloud: Cloud, cli: Cli) -> None:
    bad_value = admin_cli.run("list", "domains", "id=not-a-uuid")
    assert bad_value.returncode == 1
    assert "errorcode 431" in bad_value.stderr and bad_value.stdout == ""

    unknown_command = admin_cli.run("frobnicate", "things")
    assert unknown_command.returncode == 2 and "frobnicate" in unknown_command.stderr
    unknown_param = admin_cli.run("list", "domains", "colour=blue")
    assert unknown_param.returncode == 2 and "colour" in unknown_param.stderr
    not_key_value = admin_cli.run("list", "domains", "oops")
    assert not_key_value.returncode == 2

    # a failing async job: deleting a domain that still holds an account, without cleanup
    domain = _domain(cloud)
    _account(cloud, domain["id"], uniq("keep"))
    failed = admin_cli.run("delete", "domain", f"id={domain['id']}", "cleanup=false")
    assert failed.returncode == 1 and "errorcode" in failed.stderr
    assert cloud.call("listDomains", id=domain["id"])["domain"][0]["id"] == domain["id"]

    cli.ok("profile", "add", "gone", "url=http://127.0.0.1:9/client/api", "apikey=a", "secretkey=b")
    unreachable = cli.run("list", "zones")
    assert unreachable.returncode == 3 and "reach" in unreachable.stderr


def test_session_profile_logs_in_again_when_the_session_ends(cli: Cli, cloud: Cloud) -> None:
    domain = _domain(cloud)
    username = uniq("sess")
    account = _account(cloud, domain["id"], username)
    cli.ok(
        "profile",
        "add",
        "me",
        f"url={cloud.endpoint}",
        f"username={username}",
        f"password={PASSWORD}",
        f"domain={domain['path']}",
    )
    mine = cli.json("list", "accounts")
    assert [a["id"] for a in mine["account"]] == [account["id"]]  # a user sees only its own

    session_file = cli.home / "cfg" / "profiles" / "me.session"
    assert stat.S_IMODE(session_file.stat().st_mode) == 0o600
    first = json.loads(session_file.read_text())
    # end the session behind the CLI's back, as an expiry would
    ended = httpx.post(
        cloud.endpoint,
        data={"command": "logout", "response": "json", "sessionkey": first["sessionkey"]},
        cookies=first["cookies"],
        timeout=10,
    )
    assert ended.status_code == 200
    again = cli.json("list", "accounts")
    assert [a["id"] for a in again["account"]] == [account["id"]]
    second = json.loads(session_file.read_text())
    assert second["sessionkey"] != first["sessionkey"]

    cli.ok(
        "profile",
        "add",
        "wrong",
        f"url={cloud.endpoint}",
        f"username={username}",
        "password=not-it",
        f"domain={domain['path']}",
    )
    refused = cli.run("list", "accounts")
    assert refused.returncode == 1 and "(HTTP 401)" in refused.stderr


def test_help_shows_parameters_from_the_catalogue(admin_cli: Cli) -> None:
    out = admin_cli.ok("help", "create", "domain")
    assert out.startswith("createDomain")
    lines = {line.split(" | ")[0].strip(): line for line in out.splitlines() if " | " in line}
    assert "yes" in lines["name"]  # required
    assert "parentdomainid" in lines and "uuid" in lines["parentdomainid"]
    verbs = admin_cli.ok("help", "list")
    assert "zones" in verbs and "virtualmachines" in verbs
    unknown = admin_cli.run("help", "list", "unicorns")
    assert unknown.returncode == 2


def _bash_complete(cli: Cli, line: str) -> list[str]:
    script = cli.ok("completion", "bash")
    program = (
        f"{script}\nCOMP_LINE={json.dumps(line)}; COMP_POINT=${{#COMP_LINE}}\n"
        "_cumulo_complete\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n"
    )
    done = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", program],
        env=cli.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return [w for w in done.stdout.splitlines() if w]


def test_bash_completion_offers_verbs_nouns_params_and_live_ids(
    admin_cli: Cli, cloud: Cloud
) -> None:
    name = uniq("cz")
    zone = cloud.call(
        "createZone",
        name=name,
        networktype="Advanced",
        dns1="192.0.2.53",
        internaldns1="192.0.2.53",
    )["zone"]
    admin_cli.ok("sync")
    assert "list" in _bash_complete(admin_cli, "cumulo li")
    assert "zones" in _bash_complete(admin_cli, "cumulo list zo")
    params = _bash_complete(admin_cli, "cumulo list zones na")
    assert params == ["name="]
    taken = _bash_complete(admin_cli, "cumulo list zones name=x ")
    assert "name=" not in taken and "id=" in taken
    # values of id parameters come live from the cloud: bash completes the part after '='
    ids = _bash_complete(admin_cli, "cumulo deploy virtualmachine zoneid=")
    assert zone["id"] in ids
    narrowed = _bash_complete(admin_cli, f"cumulo deploy virtualmachine zoneid={zone['id'][:8]}")
    assert zone["id"] in narrowed
    assert all(i.startswith(zone["id"][:8]) for i in narrowed)
    if shutil.which("zsh"):
        # zsh runs the generated function; compsys's _describe is replaced by a printer
        assert "zones:noun" in _zsh_complete(admin_cli, "cumulo list zo")
        described = _zsh_complete(admin_cli, "cumulo deploy virtualmachine zoneid=")
        assert f"zoneid={zone['id']}:{name}" in described
    # the candidates carry descriptions (zsh shows them): the zone's name
    described = admin_cli.ok("__complete", "cumulo list zones id=")
    assert f"id={zone['id']}\t{name}" in described.splitlines()


def _zsh_complete(cli: Cli, line: str) -> list[str]:
    script = cli.ok("completion", "zsh")
    program = (
        "compdef() { :; }\n"
        '_describe() { print -l -- "${(@P)4}"; }\n'
        f"{script}\nBUFFER={json.dumps(line)}; CURSOR=${{#BUFFER}}\n_cumulo\n"
    )
    done = subprocess.run(
        ["zsh", "-f", "-c", program], env=cli.env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return [w for w in done.stdout.splitlines() if w]


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[list[str]]:
    if shutil.which("tmux") is None:
        pytest.skip("tmux missing (scripts/apt-packages.txt installs it)")
    base = ["tmux", "-L", f"cumulo-test-{uuid.uuid4().hex[:8]}", "-f", "/dev/null"]
    try:
        yield base
    finally:
        subprocess.run([*base, "kill-server"], capture_output=True, timeout=30)


def _pane(tmux: list[str]) -> str:
    done = subprocess.run([*tmux, "capture-pane", "-p", "-t", "s"], capture_output=True, text=True)
    return done.stdout


def _wait_pane(tmux: list[str], text: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pane = _pane(tmux)
        if text in pane:
            return pane
        time.sleep(0.2)
    raise AssertionError(f"{text!r} never showed; pane:\n{_pane(tmux)}")


def test_interactive_shell_completes_and_prints_a_table(
    admin_cli: Cli, cloud: Cloud, tmux: list[str]
) -> None:
    domain = _domain(cloud)
    env = " ".join(
        f"{k}={json.dumps(v)}"
        for k, v in admin_cli.env.items()
        if k in ("HOME", "CUMULO_CONFIG_DIR", "NO_COLOR", "PATH")
    )
    subprocess.run(
        [
            *tmux,
            "new-session",
            "-d",
            "-s",
            "s",
            "-x",
            "200",
            "-y",
            "50",
            f"env -i {env} TERM=xterm {CUMULO} shell",
        ],
        check=True,
        timeout=30,
    )
    _wait_pane(tmux, "(admin) cumulo>")
    subprocess.run([*tmux, "send-keys", "-t", "s", "list domains na", "Tab"], check=True)
    _wait_pane(tmux, "list domains name=")
    subprocess.run([*tmux, "send-keys", "-t", "s", domain["name"], "Enter"], check=True)
    pane = _wait_pane(tmux, domain["id"])
    assert any(line.startswith("id ") and " | name" in line for line in pane.splitlines())
    subprocess.run([*tmux, "send-keys", "-t", "s", "exit", "Enter"], check=True)
    history = admin_cli.home / "cfg" / "history"
    deadline = time.monotonic() + 30
    while not history.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert f"list domains name={domain['name']}" in history.read_text()
    assert stat.S_IMODE(history.stat().st_mode) == 0o600


def test_status_reports_the_cloud(admin_cli: Cli, cloud: Cloud, cli: Cli) -> None:
    name = uniq("sz")
    cloud.call(
        "createZone", name=name, networktype="Basic", dns1="192.0.2.53", internaldns1="192.0.2.53"
    )
    done = admin_cli.run("status")
    assert done.returncode in (0, 1), done.stderr
    assert "management API: up" in done.stdout and name in done.stdout
    attention = done.stdout.split("hosts needing attention", 1)[1].split("\n\n", 1)[0]
    assert (done.returncode == 1) == ("(none)" not in attention)
    cli.ok("profile", "add", "gone", "url=http://127.0.0.1:9/client/api", "apikey=a", "secretkey=b")
    assert cli.run("status").returncode == 3


def test_async_wait_is_woken_by_the_push_stream(cloud: Cloud) -> None:
    from cumulo.cli.apicmd import wait_job
    from cumulo.cli.client import Client, Credentials
    from cumulo.cli.jobwatch import JobWatch

    client = Client(Credentials(cloud.endpoint, cloud.admin.api_key, cloud.admin.secret))
    watch = JobWatch(client).start()
    try:
        assert watch.connected.is_set()
        domain = _domain(cloud)
        jobid = client.call("deleteDomain", id=domain["id"])["jobid"]
        result = wait_job(client, "deleteDomain", jobid, False, watch)
        assert result.get("success") in (True, "true")
        deadline = time.monotonic() + 10
        while jobid not in watch.seen and time.monotonic() < deadline:
            time.sleep(0.05)
        assert jobid in watch.seen  # the stream told us about our job
    finally:
        watch.stop()
    # a client whose stream is refused still waits by polling
    bad = Client(Credentials(cloud.endpoint, cloud.admin.api_key, "wrong-secret"))
    refused = JobWatch(bad).start()
    assert not refused.seen and refused.connected.is_set()  # gave up at once, no hang


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["up", "--help"], "supervise the management server"),
        (["server", "--help"], "management server process"),
        (["agent", "--help"], "dials the management server"),
        (["s3", "--help"], "admin"),
        (["s3", "admin", "--help"], "create-user"),
        (["db", "upgrade", "--help"], "pending database migration"),
        (["zone", "apply", "--help"], "yaml description"),
        (["image", "build", "--help"], "bootable guest image"),
        (["--help"], "cumulo"),
        (["help"], "exit codes"),
    ],
)
def test_every_operator_command_explains_itself(cli: Cli, argv: list[str], says: str) -> None:
    done = cli.run(*argv)
    assert done.returncode == 0, done.stderr
    assert says.lower() in done.stdout.lower()


def _default_sigint() -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_stops_waiting_but_not_the_job(tmp_path: Path) -> None:
    import signal

    from tests.support.cloud import make_cloud

    # every job sleeps 10 s before it runs: long enough to interrupt the wait on a busy machine
    slow = make_cloud(tmp_path / "slow", CUMULO_JOBS__INJECT_DELAY_SECONDS="10")
    slow.start()
    try:
        cli = Cli(tmp_path, _clean_env(tmp_path))
        cli.ok(
            "profile",
            "add",
            "slow",
            f"url={slow.endpoint}",
            f"apikey={slow.admin.api_key}",
            f"secretkey={slow.admin.secret}",
        )
        domain = _domain(slow)
        proc = subprocess.Popen(
            [CUMULO, "delete", "domain", f"id={domain['id']}"],
            env=cli.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            # A test run started in the background (`cmd &` in a script) inherits SIGINT
            # ignored, and Python then installs no KeyboardInterrupt handler: give the CLI
            # the default disposition a user's terminal gives it.
            preexec_fn=_default_sigint,
        )
        # interrupt once the job is submitted (it sleeps 10 s before it runs)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            jobs = slow.call("listAsyncJobs", listall="true").get("asyncjobs", [])
            if any(j["jobstatus"] == 0 and "Domain" in j["cmd"] for j in jobs):
                break
            time.sleep(0.1)
        time.sleep(0.5)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, (out, err)
        assert "goes on" in err and "cumulo query asyncjobresult jobid=" in err
        jobid = err.split("jobid=")[1].split()[0]
        assert slow.wait_job(jobid, timeout=30)["jobstatus"] == 1  # the job finished anyway
        assert not slow.call("listDomains", listall="true", name=domain["name"]).get("domain")
    finally:
        slow.stop()
