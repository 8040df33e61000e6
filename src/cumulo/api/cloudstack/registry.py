"""The command registry: every API command is declared once, here, by a decorator.

The declaration (name, kind, typed parameters, response object, roles, event) drives request
parsing and validation, dispatch, ``listApis``, and the generated API coverage document, the
way CloudStack's ``@APICommand``/``@Parameter`` do, but read from the function's signature.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Annotated, Any, Union, get_args, get_origin

from cumulo.services.access import ALL_ROLES, RoleType


class Kind(Enum):
    SYNC = "sync"
    LIST = "list"
    ASYNC = "async"
    ASYNC_CREATE = "async-create"

    @property
    def is_async(self) -> bool:
        return self in (Kind.ASYNC, Kind.ASYNC_CREATE)


class UUIDStr(str):
    """Marks a parameter whose value must be a UUID (CloudStack type ``uuid``)."""


@dataclass(frozen=True)
class Param:
    description: str = ""
    required: bool = False
    # The resource a UUID names, shown as listApis' "related" and used in error texts.
    entity: str | None = None
    length: int = 255
    since: str | None = None
    choices: tuple[str, ...] | None = None
    # The wire name when it cannot be the Python name (``type`` is fine; ``id`` is fine).
    name: str | None = None
    min: int | None = None
    max: int | None = None


@dataclass(frozen=True)
class ParamSpec:
    name: str
    pyname: str
    type: str  # CloudStack's listApis type: string, integer, long, boolean, uuid, date, list, map
    item_type: str | None
    meta: Param
    default: Any

    @property
    def required(self) -> bool:
        return self.meta.required


LIST_PARAMS = (
    ParamSpec("keyword", "keyword", "string", None, Param("List by keyword"), None),
    ParamSpec("page", "page", "integer", None, Param("", min=1), None),
    ParamSpec("pagesize", "pagesize", "integer", None, Param("", min=-1), None),
)
SCOPE_PARAMS = (
    ParamSpec(
        "listall",
        "listall",
        "boolean",
        None,
        Param(
            "If set to false, list only resources belonging to the command's caller; if set to "
            "true - list resources that the caller is authorized to see. Default value is false"
        ),
        False,
    ),
    ParamSpec(
        "domainid",
        "domainid",
        "uuid",
        None,
        Param("list only resources belonging to the domain specified", entity="Domain"),
        None,
    ),
    ParamSpec(
        "account",
        "account",
        "string",
        None,
        Param("list resources by account. Must be used with the domainId parameter."),
        None,
    ),
    ParamSpec(
        "isrecursive",
        "isrecursive",
        "boolean",
        None,
        Param(
            "defaults to false, but if "
            "true, lists all resources from the parent specified by the domainId till leaves."
        ),
        False,
    ),
)


@dataclass(frozen=True)
class ResponseField:
    name: str
    description: str = ""
    type: str = "string"


@dataclass
class CommandSpec:
    name: str
    kind: Kind
    handler: Callable[..., Any]
    description: str
    response: str | None
    roles: frozenset[RoleType]
    since: str
    event: str | None
    entity: str | None
    scoped: bool
    params: dict[str, ParamSpec]
    fields: tuple[ResponseField, ...]
    handler_args: frozenset[str] = frozenset()
    runner: Callable[..., Any] | None = None
    # Slow work outside any transaction (a download), run as prepare(runtime, **params) before
    # the job body; it records its own outcome in short transactions of its own.
    # Clean-up when a job of this command is abandoned (its servers kept dying mid-run):
    # on_abandon(runtime, **params) puts what the body would have finished into a final state.
    on_abandon: Callable[..., None] | None = None
    prepare: Callable[..., None] | None = None
    # Commands such as login run before anyone is authenticated.
    public: bool = False
    related: tuple[str, ...] = field(default_factory=tuple)
    # A few commands answer under another key (restoreVirtualMachine: "restorevmresponse").
    response_key: str | None = None

    @property
    def response_name(self) -> str:
        return self.response_key or f"{self.name.lower()}response"

    @property
    def writes(self) -> bool:
        # getUploadParamsFor* is a "get" that writes (the NotUploaded row), as in CloudStack.
        if self.name.startswith("getUploadParamsFor"):
            return True
        return self.kind is not Kind.LIST and not self.name.startswith(("get", "query", "list"))

    def runs(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Register the job body of an async command: it runs in a job worker."""
        self.runner = fn
        return fn


REGISTRY: dict[str, CommandSpec] = {}
_BY_LOWER: dict[str, CommandSpec] = {}


def lookup(name: str) -> CommandSpec | None:
    """Command names are matched case-insensitively, as CloudStack's servlet does."""
    return _BY_LOWER.get(name.lower())


def _wire_type(tp: Any) -> tuple[str, str | None]:
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        inner = [a for a in get_args(tp) if a is not type(None)]
        return _wire_type(inner[0])
    if origin is list:
        (item,) = get_args(tp)
        if get_origin(item) is dict:
            return "map", None
        return "list", _wire_type(item)[0]
    if origin is dict or tp is dict:
        return "map", None
    mapping: dict[Any, str] = {
        UUIDStr: "uuid",
        str: "string",
        bool: "boolean",
        int: "long",
        datetime: "date",
    }
    if tp not in mapping:
        raise TypeError(f"unsupported parameter type {tp!r}")
    return mapping[tp], None


def _params(fn: Callable[..., Any]) -> dict[str, ParamSpec]:
    hints = typing.get_type_hints(fn, include_extras=True)
    specs: dict[str, ParamSpec] = {}
    for pyname, p in list(inspect.signature(fn).parameters.items())[1:]:
        hint = hints[pyname]
        if get_origin(hint) is not Annotated:
            raise TypeError(f"{fn.__name__}.{pyname} needs Annotated[..., Param(...)]")
        tp, meta = get_args(hint)[0], get_args(hint)[1]
        wire, item = _wire_type(tp)
        default = None if p.default is inspect.Parameter.empty else p.default
        name = (meta.name or pyname).lower()
        specs[name] = ParamSpec(name, pyname, wire, item, meta, default)
    return specs


def command(
    name: str,
    *,
    kind: Kind = Kind.SYNC,
    description: str,
    response: str | None = None,
    roles: Iterable[RoleType] = ALL_ROLES,
    since: str = "4.0.0",
    event: str | None = None,
    entity: str | None = None,
    scoped: bool = False,
    fields: Iterable[ResponseField | str] = (),
    public: bool = False,
    related: Iterable[str] = (),
) -> Callable[[Callable[..., Any]], CommandSpec]:
    """Declare an API command. ``scoped`` lists take listall/domainid/account/isrecursive."""

    def register(fn: Callable[..., Any]) -> CommandSpec:
        params = _params(fn)
        handler_args = frozenset(p.pyname for p in params.values())
        if kind is Kind.LIST:
            for extra in LIST_PARAMS + (SCOPE_PARAMS if scoped else ()):
                params.setdefault(extra.name, extra)
        spec = CommandSpec(
            name=name,
            kind=kind,
            handler=fn,
            description=description,
            response=response,
            roles=frozenset(roles),
            since=since,
            event=event,
            entity=entity,
            scoped=scoped,
            params=params,
            handler_args=handler_args,
            fields=tuple(f if isinstance(f, ResponseField) else ResponseField(f) for f in fields),
            public=public,
            related=tuple(related),
        )
        if name.lower() in _BY_LOWER:
            raise ValueError(f"command {name} declared twice")
        REGISTRY[name] = spec
        _BY_LOWER[name.lower()] = spec
        return spec

    return register
