"""The API catalogue a profile may call, cached from ``listApis`` (``cumulo sync``).

CloudMonkey's grammar splits an API name at its first capital: ``listVirtualMachines`` is
verb ``list`` and noun ``virtualmachines``, so ``cumulo list virtualmachines`` finds it. The
cache is per profile (a user sees fewer APIs than an admin) and is fetched on first use, so
``sync`` is only needed after the server gained commands.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any

from cumulo.cli.client import Client, write_private
from cumulo.cli.profiles import profile_file

_VERB = re.compile(r"^([a-z]+)(.*)$")


@dataclass(frozen=True)
class ApiParam:
    name: str
    type: str
    required: bool
    description: str
    related: str  # the list API that names this parameter's values, if any


@dataclass(frozen=True)
class Api:
    name: str
    description: str
    isasync: bool
    params: tuple[ApiParam, ...]
    response: tuple[str, ...]

    @property
    def verb(self) -> str:
        return split_name(self.name)[0]

    @property
    def noun(self) -> str:
        return split_name(self.name)[1]

    def param(self, name: str) -> ApiParam | None:
        base = name.split("[", 1)[0].lower()
        return next((p for p in self.params if p.name.lower() == base), None)


def split_name(name: str) -> tuple[str, str]:
    """``listVirtualMachines`` → (``list``, ``virtualmachines``)."""
    match = _VERB.match(name)
    if match is None:
        return name.lower(), ""
    return match.group(1), match.group(2).lower()


class Catalogue:
    def __init__(self, apis: list[Api]) -> None:
        self.apis = {a.name.lower(): a for a in apis}
        self.by_words = {(a.verb, a.noun): a for a in apis}

    def find(self, verb: str, noun: str) -> Api | None:
        return self.by_words.get((verb.lower(), noun.lower()))

    def named(self, name: str) -> Api | None:
        return self.apis.get(name.lower())

    def verbs(self) -> list[str]:
        return sorted({verb for verb, _ in self.by_words})

    def nouns(self, verb: str) -> list[str]:
        return sorted(noun for v, noun in self.by_words if v == verb.lower() and noun)


def _param(raw: dict[str, Any]) -> ApiParam:
    return ApiParam(
        name=str(raw.get("name", "")),
        type=str(raw.get("type", "string")),
        required=bool(raw.get("required", False)),
        description=str(raw.get("description") or ""),
        related=str(raw.get("related") or ""),
    )


def _api(raw: dict[str, Any]) -> Api:
    return Api(
        name=str(raw["name"]),
        description=str(raw.get("description") or ""),
        isasync=bool(raw.get("isasync", False)),
        params=tuple(sorted((_param(p) for p in raw.get("params", [])), key=lambda p: p.name)),
        response=tuple(str(r.get("name", "")) for r in raw.get("response", [])),
    )


def sync(client: Client, profile: str) -> Catalogue:
    """Fetch ``listApis`` and keep it for the profile."""
    raw: list[dict[str, Any]] = client.call("listApis").get("api", [])
    write_private(
        profile_file(profile, "apis.json"),
        json.dumps({"endpoint": client.creds.endpoint, "synced": time.time(), "api": raw}),
    )
    return Catalogue([_api(r) for r in raw])


def load(client: Client, profile: str) -> Catalogue:
    """The cached catalogue, fetched first when there is none for this endpoint."""
    path = profile_file(profile, "apis.json")
    try:
        cached = json.loads(path.read_text())
    except (OSError, ValueError):
        return sync(client, profile)
    if cached.get("endpoint") != client.creds.endpoint:
        return sync(client, profile)
    return Catalogue([_api(r) for r in cached.get("api", [])])


def load_cached(profile: str) -> Catalogue | None:
    """The cache only, never the network (shell completion must answer at once)."""
    try:
        cached = json.loads(profile_file(profile, "apis.json").read_text())
    except (OSError, ValueError):
        return None
    return Catalogue([_api(r) for r in cached.get("api", [])])
