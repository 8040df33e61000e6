"""The client half of ``cumulo``: API commands, profiles, sync, help, completion, shell, status.

``main`` hands every command line that is not an operator command (``up``, ``server``,
``agent`` …) to ``run``. Options may stand anywhere on the line, as in CloudMonkey:
``-o/--output FORMAT``, ``--filter a,b``, ``-p/--profile NAME``, ``--async``, ``--all`` (every
page of a list).
"""

from __future__ import annotations

import sys
from dataclasses import replace
from typing import Any

import httpx

from cumulo.cli import apicache, apicmd, completion, output, status
from cumulo.cli.client import ApiError
from cumulo.cli.profiles import (
    OUTPUTS,
    ProfileError,
    active_profile,
    add_profile,
    load_config,
    remove_profile,
    use_profile,
)

USAGE_TEXT = """usage: cumulo [options] <verb> <noun> [key=value ...]
       cumulo [options] api <apiName> [key=value ...]
       cumulo help [<verb> [<noun>]]
       cumulo profile add <name> url=… (apikey=… secretkey=… | username=… password=… [domain=…])
       cumulo profile list | use <name> | show [<name>] | remove <name>
       cumulo sync | shell | status | completion bash|zsh
operator commands: cumulo up | server | init | agent | s3 | db upgrade | zone apply | image build
options: -o/--output table|json|csv|text|yaml  --filter f1,f2  -p/--profile NAME
         --async (print the job id, do not wait)  --all (fetch every page of a list)
exit codes: 0 ok, 1 the cloud refused (errorcode on stderr), 2 bad command line,
            3 cloud unreachable, 130 interrupted while waiting (the job goes on)
"""


def split_options(words: list[str], base: apicmd.Options) -> tuple[list[str], apicmd.Options]:
    opts = replace(base, extra=dict(base.extra))
    rest: list[str] = []
    it = iter(words)
    for word in it:
        if word in ("-o", "--output", "-p", "--profile", "--filter"):
            value = next(it, None)
            if value is None:
                raise apicmd.UsageError(f"{word} needs a value")
            word = f"{word}={value}"
        name, _, value = word.partition("=")
        if name in ("-o", "--output"):
            if value not in OUTPUTS:
                raise apicmd.UsageError(f"output must be one of {', '.join(OUTPUTS)}")
            opts.output = value
        elif name in ("-p", "--profile"):
            opts.profile = value
        elif name == "--filter":
            opts.filter = [f.strip() for f in value.split(",") if f.strip()]
        elif word == "--async":
            opts.run_async = True
        elif word == "--all":
            opts.all_pages = True
        elif word.startswith("-") and word not in ("-h", "--help"):
            raise apicmd.UsageError(f"unknown option {word}")
        else:
            rest.append(word)
    return rest, opts


def run(argv: list[str], base: apicmd.Options | None = None) -> int:
    try:
        words, opts = split_options(argv, base or apicmd.Options())
        return _dispatch(words, opts)
    except (apicmd.UsageError, ProfileError) as err:
        print(f"cumulo: {err}", file=sys.stderr)
        return apicmd.USAGE
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return apicmd.INTERRUPTED


def _dispatch(words: list[str], opts: apicmd.Options) -> int:
    if not words or words[0] in ("-h", "--help"):
        sys.stdout.write(USAGE_TEXT)
        return apicmd.OK if words else apicmd.USAGE
    head = words[0]
    if head == "help":
        if len(words) == 1:
            sys.stdout.write(USAGE_TEXT)
            return apicmd.OK
        return apicmd.describe(words[1:], opts.profile)
    if "-h" in words or "--help" in words:
        return apicmd.describe([w for w in words if w not in ("-h", "--help")], opts.profile)
    if head == "profile":
        return _profile(words[1:], opts)
    if head == "sync":
        return _sync(opts)
    if head == "completion":
        return _completion(words[1:])
    if head == "__complete":
        return _complete(words[1:], opts)
    if head == "shell":
        from cumulo.cli.shell import Shell

        return Shell(opts, run).loop()
    if head == "status":
        return status.run(opts)
    return apicmd.execute(words, opts)


def _profile(words: list[str], opts: apicmd.Options) -> int:
    action = words[0] if words else "list"
    if action == "add" and len(words) >= 2:
        profile = add_profile(words[1], apicmd.parse_params(words[2:]), make_current=True)
        print(f"profile {profile.name} saved and in use")
        return apicmd.OK
    if action == "use" and len(words) == 2:
        use_profile(words[1])
        print(f"using profile {words[1]}")
        return apicmd.OK
    if action == "remove" and len(words) == 2:
        remove_profile(words[1])
        print(f"profile {words[1]} removed")
        return apicmd.OK
    if action == "show":
        shown = active_profile(words[1] if len(words) > 1 else opts.profile).shown()
        sys.stdout.write(output.render(shown, opts.output or "text", None, tty=False))
        return apicmd.OK
    if action == "list":
        config = load_config()
        rows = [
            {**p.shown(), "current": "*" if name == config.current else ""}
            for name, p in sorted(config.profiles.items())
        ]
        answer = {"count": len(rows), "profile": rows}
        keep = opts.filter or ["current", "name", "url", "apikey", "username", "domain", "output"]
        sys.stdout.write(output.render(answer, opts.output or "table", keep, tty=False))
        return apicmd.OK
    raise apicmd.UsageError("usage: cumulo profile add|list|use|show|remove …")


def _sync(opts: apicmd.Options) -> int:
    try:
        profile, client = apicmd.connect(opts.profile)
        catalogue = apicache.sync(client, profile.name)
    except ApiError as err:
        print(f"cumulo: {err}", file=sys.stderr)
        return apicmd.API_FAILED
    except httpx.HTTPError as err:
        print(f"cumulo: cannot reach the cloud: {err}", file=sys.stderr)
        return apicmd.UNREACHABLE
    print(f"{len(catalogue.apis)} APIs cached for profile {profile.name}")
    return apicmd.OK


def _completion(words: list[str]) -> int:
    if len(words) != 1:
        raise apicmd.UsageError("usage: cumulo completion bash|zsh")
    try:
        sys.stdout.write(completion.script(words[0]))
    except ValueError as err:
        raise apicmd.UsageError(str(err)) from None
    return apicmd.OK


def _complete(words: list[str], opts: apicmd.Options) -> int:
    """The hidden helper the shell scripts call with the line up to the cursor."""
    line = words[0] if words else ""
    _, line_opts = completion._strip_options(completion.split_line(line)[:-1])
    profile_name = line_opts or opts.profile
    try:
        profile, client = apicmd.connect(profile_name)
    except ProfileError:
        found = completion.candidates(line, None)
    else:
        catalogue = apicache.load_cached(profile.name)
        if catalogue is None:
            try:
                catalogue = apicache.load(client, profile.name)
            except (ApiError, httpx.HTTPError):
                catalogue = None

        def live(api: str, params: dict[str, str]) -> list[dict[str, Any]]:
            answer = client.call(api, **params)
            return output.rows_of(answer)[1] if answer else []

        found = completion.candidates(line, catalogue, live)
    for word, description in found:
        print(f"{word}\t{description}")
    return apicmd.OK
