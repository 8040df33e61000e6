"""Parameter parsing: typed values out, or a 431 whose text names the parameter and the fault."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Any

import pytest

from cumulo.api.cloudstack import registry
from cumulo.api.cloudstack.params import parse
from cumulo.api.cloudstack.registry import CommandSpec, Kind, Param, UUIDStr, command
from cumulo.api.cloudstack.results import Ctx
from cumulo.services.errors import ParamError

UUID = "3f2b1c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"


def _handler(
    ctx: Ctx,
    name: Annotated[str, Param("name", required=True, length=10)],
    id: Annotated[UUIDStr | None, Param("id")] = None,
    flag: Annotated[bool | None, Param("flag")] = None,
    size: Annotated[int | None, Param("size", min=1, max=100)] = None,
    when: Annotated[datetime | None, Param("when")] = None,
    ids: Annotated[list[UUIDStr] | None, Param("ids")] = None,
    names: Annotated[list[str] | None, Param("names")] = None,
    tags: Annotated[list[dict[str, str]] | None, Param("tags")] = None,
    mode: Annotated[str | None, Param("mode", choices=("fast", "slow"))] = "fast",
    domain_id: Annotated[UUIDStr | None, Param("domain", name="domainId")] = None,
) -> None:
    """Never called: only its signature matters."""


@pytest.fixture(scope="module")
def spec() -> Iterator[CommandSpec]:
    """Declared with the real decorator, then taken out of the global registry again."""
    declared = command("zzParamsProbe", kind=Kind.LIST, description="probe")(_handler)
    try:
        yield declared
    finally:
        registry.REGISTRY.pop(declared.name, None)
        registry._BY_LOWER.pop(declared.name.lower(), None)


def _parse(spec: CommandSpec, **raw: str) -> dict[str, Any]:
    return parse(spec, {"name": "n", **raw})


def _error(spec: CommandSpec, **raw: str) -> str:
    with pytest.raises(ParamError) as err:
        parse(spec, raw)
    assert err.value.errorcode == 431 and err.value.cserrorcode == 4350
    return err.value.text


def test_defaults_and_types(spec: CommandSpec) -> None:
    out = _parse(spec)
    assert out["name"] == "n"
    assert out["mode"] == "fast"
    assert out["id"] is None and out["tags"] is None
    # List commands get keyword/page/pagesize added.
    assert {"keyword", "page", "pagesize"} <= set(out)


def test_names_are_case_insensitive(spec: CommandSpec) -> None:
    out = parse(spec, {"NAME": "x", "Flag": "TRUE", "DOMAINID": UUID.upper()})
    assert out["name"] == "x"
    assert out["flag"] is True
    assert out["domain_id"] == UUID  # UUIDs are normalised to lower case


def test_missing_required(spec: CommandSpec) -> None:
    assert (
        _error(spec) == "Unable to execute API command zzparamsprobe due to missing parameter name"
    )
    # An empty value counts as missing.
    assert "missing parameter name" in _error(spec, name="")


@pytest.mark.parametrize("bad", ["abc", UUID[:-1], UUID + "0", UUID + "\n", " " + UUID, "1"])
def test_bad_uuid(spec: CommandSpec, bad: str) -> None:
    text = _error(spec, name="n", id=bad)
    assert text.startswith(f"Invalid parameter id value={bad} due to incorrect long value format")


@pytest.mark.parametrize("bad", ["yes", "1", "t", "truee", ""])
def test_bad_boolean(spec: CommandSpec, bad: str) -> None:
    if bad == "":
        assert _parse(spec, flag="")["flag"] is None
        return
    assert "not being a boolean" in _error(spec, name="n", flag=bad)


@pytest.mark.parametrize("good", ["true", "false", "True", "FALSE"])
def test_good_boolean(spec: CommandSpec, good: str) -> None:
    assert _parse(spec, flag=good)["flag"] is (good.lower() == "true")


@pytest.mark.parametrize("bad", ["x", "1.5", "1_0", " 5", "5 ", "٣", "1e3", "0x10"])
def test_bad_integer(spec: CommandSpec, bad: str) -> None:
    assert "incorrect number format" in _error(spec, name="n", size=bad)


@pytest.mark.parametrize(("raw", "value"), [("7", 7), ("+7", 7), ("100", 100)])
def test_good_integer(spec: CommandSpec, raw: str, value: int) -> None:
    assert _parse(spec, size=raw)["size"] == value


@pytest.mark.parametrize("bad", ["0", "101", "-5"])
def test_integer_out_of_range(spec: CommandSpec, bad: str) -> None:
    assert "outside the range 1..100" in _error(spec, name="n", size=bad)


def test_page_and_pagesize_limits(spec: CommandSpec) -> None:
    assert _parse(spec, page="2", pagesize="-1")["pagesize"] == -1
    assert "outside the range" in _error(spec, name="n", page="0")
    assert "outside the range" in _error(spec, name="n", pagesize="-2")
    assert "outside the range" in _error(spec, name="n", pagesize=str(2**31))


def test_over_long_string(spec: CommandSpec) -> None:
    text = _error(spec, name="x" * 11)
    assert text == "Invalid parameter name value=xxxxxxxxxxx due to length greater than 10"
    assert _parse(spec, name="x" * 10)["name"] == "x" * 10


def test_choices(spec: CommandSpec) -> None:
    assert _parse(spec, mode="slow")["mode"] == "slow"
    assert _error(spec, name="n", mode="warp") == (
        "Invalid value warp for parameter mode: one of fast, slow"
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024-05-06", datetime(2024, 5, 6, tzinfo=UTC)),
        ("2024-05-06 07:08:09", datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)),
        ("2024-05-06T07:08:09+0200", datetime(2024, 5, 6, 5, 8, 9, tzinfo=UTC)),
    ],
)
def test_dates(spec: CommandSpec, raw: str, expected: datetime) -> None:
    assert _parse(spec, when=raw)["when"] == expected


def test_bad_date(spec: CommandSpec) -> None:
    assert "incorrect date format" in _error(spec, name="n", when="06/05/2024")


def test_lists(spec: CommandSpec) -> None:
    other = "00000000-0000-4000-8000-000000000001"
    assert _parse(spec, ids=f"{UUID}, {other}")["ids"] == [UUID, other]
    assert _parse(spec, names="a,b")["names"] == ["a", "b"]
    assert "Invalid parameter ids value=nope" in _error(spec, name="n", ids=f"{UUID},nope")


def test_map_parameters_in_index_order(spec: CommandSpec) -> None:
    raw = {
        "tags[1].key": "k1",
        "tags[1].value": "v1",
        "TAGS[0].key": "k0",
        "tags[0].value": "v0",
        "other[0].key": "ignored",
    }
    assert _parse(spec, **raw)["tags"] == [
        {"key": "k0", "value": "v0"},
        {"key": "k1", "value": "v1"},
    ]


def test_unknown_parameters_are_ignored(spec: CommandSpec) -> None:
    """As CloudStack does: clients add parameters (apiKey, signature, expires) freely."""
    out = _parse(spec, signature="x", apiKey="k", whatever="1")
    assert "whatever" not in out and "signature" not in out
