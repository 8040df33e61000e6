"""Running any API command from the command line, in CloudMonkey's grammar.

``cumulo list virtualmachines state=Running`` and ``cumulo api listVirtualMachines
state=Running`` are the same call. Parameters are ``key=value`` (map parameters as
``tags[0].key=env``, lists comma-separated). Async commands are waited for with a progress
line on a terminal (woken by the push stream the moment the job ends, polling otherwise);
``--async`` prints the job id at once; Ctrl-C stops waiting, never the
job. Exit codes scripts can rely on:

- 0: success;
- 1: the cloud refused the command or its job failed (``errorcode`` and ``errortext`` on
  stderr);
- 2: the command line is wrong (unknown command or parameter, bad profile);
- 3: the cloud could not be reached;
- 130: interrupted while waiting (the job goes on).
"""

from __future__ import annotations

import itertools
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from cumulo.cli import apicache, output
from cumulo.cli.client import ApiError, Client
from cumulo.cli.jobwatch import JobWatch
from cumulo.cli.profiles import Profile, ProfileError, active_profile, profile_file

OK, API_FAILED, USAGE, UNREACHABLE, INTERRUPTED = 0, 1, 2, 3, 130
DEFAULT_PAGE = 500
SPINNER = "|/-\\"
NOT_SUBMITTED = ""


class UsageError(Exception):
    """The command line cannot be turned into an API call."""


@dataclass
class Options:
    output: str | None = None
    filter: list[str] | None = None
    run_async: bool = False
    all_pages: bool = False
    profile: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


def connect(profile_name: str | None) -> tuple[Profile, Client]:
    profile = active_profile(profile_name)
    client = Client(
        profile.credentials(),
        timeout=60,
        session_file=profile_file(profile.name, "session"),
    )
    return profile, client


def parse_params(words: list[str]) -> dict[str, str]:
    params: dict[str, str] = {}
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise UsageError(f"expected key=value, got {word!r}")
        params[key] = value
    return params


def resolve(catalogue: apicache.Catalogue, words: list[str]) -> tuple[apicache.Api, list[str]]:
    """The API the words name (``verb noun`` or ``api <name>``) and the words left."""
    if words and words[0] == "api":
        if len(words) < 2:
            raise UsageError("usage: cumulo api <command> [key=value ...]")
        api = catalogue.named(words[1])
        if api is None:
            raise UsageError(f"unknown API {words[1]!r} (try `cumulo sync`)")
        return api, words[2:]
    if len(words) >= 2 and "=" not in words[1]:
        api = catalogue.find(words[0], words[1])
        if api is not None:
            return api, words[2:]
    verb = words[0] if words else ""
    nouns = catalogue.nouns(verb)
    if nouns:
        hint = ", ".join(nouns[:12]) + (" …" if len(nouns) > 12 else "")
        raise UsageError(f"unknown command {' '.join(words[:2])!r}; {verb} takes: {hint}")
    raise UsageError(f"unknown command {verb!r}; see `cumulo help`")


def check_params(api: apicache.Api, params: dict[str, str]) -> None:
    unknown = [k for k in params if api.param(k) is None]
    if unknown:
        raise UsageError(
            f"{api.name} has no parameter {', '.join(unknown)}; "
            f"see `cumulo help {api.verb} {api.noun}` (or `cumulo sync`)"
        )


def call_all_pages(client: Client, api: str, params: dict[str, str]) -> dict[str, Any]:
    """Every page of a list, merged into one answer (``count`` is the server's total)."""
    size = int(params.get("pagesize", DEFAULT_PAGE))
    merged: dict[str, Any] = {}
    rows: list[dict[str, Any]] = []
    key: str | None = None
    for page in itertools.count(1):
        answer = client.call(api, **{**params, "page": str(page), "pagesize": str(size)})
        key, batch = output.rows_of(answer) if answer else (key, [])
        merged.setdefault("count", answer.get("count", 0))
        rows.extend(batch)
        if len(batch) < size or len(rows) >= int(merged["count"]):
            break
    if key is not None and rows:
        merged[key] = rows
    return merged if rows else {}


def wait_job(
    client: Client, api: str, jobid: str, tty: bool, watch: JobWatch | None = None
) -> dict[str, Any]:
    """Poll the job to its end; the push stream (``watch``) wakes the poll when it ends."""
    started = time.monotonic()
    delay = 0.1
    if watch is not None:
        watch.watch(jobid)
    for tick in itertools.count():
        job = client.call("queryAsyncJobResult", jobid=jobid)
        status = int(job.get("jobstatus", 0))
        if status != 0:
            if tty:
                sys.stderr.write("\r\x1b[K")
            result: dict[str, Any] = job.get("jobresult") or {}
            if status == 1:
                return result
            raise ApiError(
                api,
                200,
                int(result.get("errorcode", 530)),
                str(result.get("errortext", "the job failed")),
            )
        if tty:
            spent = time.monotonic() - started
            spin = SPINNER[tick % len(SPINNER)]
            sys.stderr.write(f"\r{spin} {api} job {jobid}: pending ({spent:.0f} s)")
            sys.stderr.flush()
        if watch is not None and watch.connected.is_set():
            watch.wait(min(delay * 10, 5.0))
        else:
            time.sleep(delay)
        delay = min(delay * 1.5, 1.0)
    raise AssertionError("unreachable")


def execute(words: list[str], opts: Options) -> int:
    """Run one API command line; print the answer; return the exit code."""
    tty = sys.stdout.isatty()
    try:
        profile, client = connect(opts.profile)
        catalogue = apicache.load(client, profile.name)
        api, rest = resolve(catalogue, words)
        params = {**parse_params(rest), **opts.extra}
        check_params(api, params)
        fmt = opts.output or profile.output
        jobid = NOT_SUBMITTED
        watch: JobWatch | None = None
        try:
            if api.isasync and not opts.run_async:
                watch = JobWatch(client).start()
            if opts.all_pages and api.verb == "list":
                answer = call_all_pages(client, api.name, params)
            else:
                answer = client.call(api.name, **params)
            if api.isasync and "jobid" in answer and not opts.run_async:
                jobid = str(answer["jobid"])
                answer = wait_job(client, api.name, jobid, sys.stderr.isatty(), watch)
        except KeyboardInterrupt:
            if jobid == NOT_SUBMITTED:
                sys.stderr.write("\ninterrupted before the command was sent\n")
            else:
                sys.stderr.write(
                    f"\nstopped waiting; job {jobid} goes on. Follow it with:\n"
                    f"  cumulo query asyncjobresult jobid={jobid}\n"
                )
            return INTERRUPTED
        finally:
            if watch is not None:
                watch.stop()
        sys.stdout.write(output.render(answer, fmt, opts.filter, tty=tty))
        return OK
    except (UsageError, ProfileError) as err:
        print(f"cumulo: {err}", file=sys.stderr)
        return USAGE
    except ApiError as err:
        print(
            f"cumulo: {err.command} failed: errorcode {err.errorcode} (HTTP {err.status}): "
            f"{err.text}",
            file=sys.stderr,
        )
        return API_FAILED
    except httpx.HTTPError as err:
        print(f"cumulo: cannot reach the cloud: {err}", file=sys.stderr)
        return UNREACHABLE


def describe(words: list[str], profile_name: str | None) -> int:
    """``cumulo help <verb> <noun>``: the API's description and parameters."""
    try:
        profile, client = connect(profile_name)
        catalogue = apicache.load(client, profile.name)
        if len(words) == 1 and not catalogue.find(words[0], ""):
            nouns = catalogue.nouns(words[0])
            if not nouns:
                raise UsageError(f"unknown verb {words[0]!r}")
            print(f"{words[0]}: " + " ".join(nouns))
            return OK
        api, _ = resolve(catalogue, words)
    except (UsageError, ProfileError) as err:
        print(f"cumulo: {err}", file=sys.stderr)
        return USAGE
    except (ApiError, httpx.HTTPError) as err:
        print(f"cumulo: {err}", file=sys.stderr)
        return UNREACHABLE
    print(f"{api.name}{' (async)' if api.isasync else ''}: {api.description}\n")
    rows = [
        {
            "parameter": p.name,
            "type": p.type,
            "required": "yes" if p.required else "",
            "description": p.description,
        }
        for p in sorted(api.params, key=lambda p: (not p.required, p.name))
    ]
    sys.stdout.write(
        output.table(rows, list(rows[0]), 200, False, shorten=False)
        if rows
        else "(no parameters)\n"
    )
    return OK
