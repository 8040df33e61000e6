"""The CLI's grammar over the real command registry, and its output formats, in-process."""

from __future__ import annotations

import csv
import io
import json

import yaml

import cumulo.api.cloudstack.commands  # noqa: F401  (registers every command)
from cumulo.api.cloudstack.commands.discovery import api_entry
from cumulo.api.cloudstack.registry import REGISTRY
from cumulo.cli import apicache, completion, output


def _catalogue() -> apicache.Catalogue:
    return apicache.Catalogue([apicache._api(api_entry(s)) for s in REGISTRY.values()])


def test_every_registered_command_is_reachable_as_verb_and_noun() -> None:
    catalogue = _catalogue()
    assert len(catalogue.apis) == len(REGISTRY) > 200
    for name in REGISTRY:
        verb, noun = apicache.split_name(name)
        found = catalogue.find(verb, noun)
        assert found is not None and found.name == name, name


def test_split_name_follows_cloudmonkey() -> None:
    assert apicache.split_name("listVirtualMachines") == ("list", "virtualmachines")
    assert apicache.split_name("login") == ("login", "")
    assert apicache.split_name("quotaTariffList") == ("quota", "tarifflist")


def test_completion_candidates_from_the_catalogue() -> None:
    catalogue = _catalogue()
    words = [w for w, _ in completion.candidates("cumulo dep", catalogue)]
    assert words == ["deploy"]
    nouns = [w for w, _ in completion.candidates("cumulo deploy ", catalogue)]
    assert "virtualmachine" in nouns
    params = dict(completion.candidates("cumulo deploy virtualmachine zone", catalogue))
    assert list(params) == ["zoneid="] and params["zoneid="].startswith("(required)")
    # options and their values are skipped when finding the command
    again = completion.candidates("cumulo -o json deploy virtualmachine zone", catalogue)
    assert [w for w, _ in again] == ["zoneid="]
    booleans = completion.candidates("cumulo deploy virtualmachine startvm=t", catalogue)
    assert [w for w, _ in booleans] == ["startvm=true"]


def test_live_values_use_the_related_list_api() -> None:
    catalogue = _catalogue()
    calls: list[tuple[str, dict[str, str]]] = []

    def live(api: str, params: dict[str, str]) -> list[dict[str, str]]:
        calls.append((api, params))
        return [{"id": "aaa-1", "name": "one"}, {"id": "bbb-2", "name": "two"}]

    found = completion.candidates("cumulo deploy virtualmachine templateid=a", catalogue, live)
    assert found == [("templateid=aaa-1", "one")]
    assert calls[0][0] == "listTemplates" and calls[0][1]["templatefilter"] == "executable"


ROWS = {
    "count": 2,
    "zone": [
        {"id": "z1", "name": "alpha", "state": "Enabled", "tags": [{"key": "k"}], "x": None},
        {"id": "z2", "name": "beta", "state": "Disabled", "dns1": "192.0.2.1" * 9},
    ],
}


def test_formats_carry_the_same_rows() -> None:
    assert json.loads(output.render(ROWS, "json", None, tty=False)) == ROWS
    assert yaml.safe_load(output.render(ROWS, "yaml", None, tty=False)) == ROWS
    rows = list(csv.DictReader(io.StringIO(output.render(ROWS, "csv", None, tty=False))))
    assert [r["name"] for r in rows] == ["alpha", "beta"]
    assert json.loads(rows[0]["tags"]) == [{"key": "k"}] and rows[1]["dns1"] == "192.0.2.1" * 9
    filtered = json.loads(output.render(ROWS, "json", ["name", "id"], tty=False))
    assert filtered == {
        "count": 2,
        "zone": [{"name": "alpha", "id": "z1"}, {"name": "beta", "id": "z2"}],
    }


def test_table_fits_the_width_and_shortens_long_values() -> None:
    narrow = output.table(ROWS["zone"], None, 26, False)
    header = narrow.splitlines()[0]
    assert [c.strip() for c in header.split(" | ")] == ["id", "name", "state"]
    wide = output.table(ROWS["zone"], None, 300, False)
    line = wide.splitlines()[3]
    assert "…" in line and len(max(line.split(" | "), key=len)) == output.MAX_CELL
    coloured = output.table(ROWS["zone"], None, 300, True)
    assert coloured.startswith("\x1b[1m")
    single = output.rows_of({"virtualmachine": {"id": "v", "state": "Running"}})
    assert single == ("virtualmachine", [{"id": "v", "state": "Running"}])
