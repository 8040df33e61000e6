"""Printing API answers as CloudMonkey does: table, json, csv, text or yaml.

A list answer (``{"count": n, "zone": [...]}``) and a single object (``{"zone": {...}}``,
an async job's result) both become rows; ``--filter`` keeps the named fields. A table fits
the terminal: the id, name and state columns come first, then others while there is room,
and long values are shortened; machine formats (json, yaml, csv) are never shortened.
Colour only on a terminal, and never with ``NO_COLOR``.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from typing import Any

import yaml

FIRST = ("id", "name", "displayname", "username", "state", "zonename", "account", "type")
MAX_CELL = 40


def rows_of(answer: dict[str, Any]) -> tuple[str | None, list[dict[str, Any]]]:
    """The objects in an answer and the key they came under (``None`` for a flat answer)."""
    for key, value in answer.items():
        if key == "count":
            continue
        if isinstance(value, list) and all(isinstance(v, dict) for v in value):
            return key, list(value)
    objects = [(k, v) for k, v in answer.items() if isinstance(v, dict)]
    if len(objects) == 1 and len(answer) == 1:
        return objects[0][0], [objects[0][1]]
    return None, [answer] if answer else []


def _filtered(row: dict[str, Any], keep: list[str]) -> dict[str, Any]:
    return {k: row[k] for k in keep if k in row}


def _filter_answer(answer: dict[str, Any], keep: list[str]) -> dict[str, Any]:
    key, rows = rows_of(answer)
    kept = [_filtered(r, keep) for r in rows]
    if key is None:
        return kept[0] if kept else {}
    if isinstance(answer.get(key), list):
        return {**({"count": answer["count"]} if "count" in answer else {}), key: kept}
    return {key: kept[0]}


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return "" if value is None else str(value)


def _columns(rows: list[dict[str, Any]], keep: list[str] | None, scalar_only: bool) -> list[str]:
    if keep:
        return keep
    seen: dict[str, None] = {}
    for row in rows:
        for k, v in row.items():
            if not scalar_only or not isinstance(v, dict | list):
                seen.setdefault(k)
    first = [k for k in FIRST if k in seen]
    return first + [k for k in seen if k not in first]


def _short(text: str) -> str:
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def table(
    rows: list[dict[str, Any]],
    keep: list[str] | None,
    width: int,
    colour: bool,
    *,
    shorten: bool = True,
) -> str:
    """Columns in order while they fit ``width`` (always at least one)."""
    if not rows:
        return ""
    cols = _columns(rows, keep, scalar_only=True)
    cut = _short if shorten else str
    cells = [[cut(_cell(r.get(c))) for c in cols] for r in rows]
    widths = [max(len(c), *(len(line[i]) for line in cells)) for i, c in enumerate(cols)]
    used, shown = 0, 0
    for w in widths:
        if shown and used + w + 3 > width and not keep:
            break
        used, shown = used + w + 3, shown + 1
    head = " | ".join(c.ljust(widths[i]) for i, c in enumerate(cols[:shown])).rstrip()
    rule = "-+-".join("-" * widths[i] for i in range(shown))
    if colour:
        head = f"\x1b[1m{head}\x1b[0m"
    body = [
        " | ".join(v.ljust(widths[i]) for i, v in enumerate(line[:shown])).rstrip()
        for line in cells
    ]
    return "\n".join([head, rule, *body]) + "\n"


def csv_text(rows: list[dict[str, Any]], keep: list[str] | None) -> str:
    if not rows:
        return ""
    cols = _columns(rows, keep, scalar_only=False)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(cols)
    for r in rows:
        writer.writerow([_cell(r.get(c)) for c in cols])
    return out.getvalue()


def text(rows: list[dict[str, Any]], keep: list[str] | None) -> str:
    blocks = []
    for r in rows:
        cols = _columns([r], keep, scalar_only=False)
        blocks.append("\n".join(f"{c} = {_cell(r.get(c))}" for c in cols if c in r))
    return ("\n" + "=" * 40 + "\n").join(blocks) + ("\n" if blocks else "")


def render(answer: dict[str, Any], fmt: str, keep: list[str] | None, *, tty: bool) -> str:
    """The text to print for an answer in format ``fmt``."""
    if fmt in ("json", "yaml"):
        data = _filter_answer(answer, keep) if keep else answer
        if fmt == "json":
            return json.dumps(data, indent=2, sort_keys=False) + "\n"
        return str(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    _, rows = rows_of(answer)
    if fmt == "csv":
        return csv_text(rows, keep)
    if fmt == "text":
        return text(rows, keep)
    width = shutil.get_terminal_size((160, 24)).columns if tty else 160
    colour = tty and not os.environ.get("NO_COLOR")
    return table(rows, keep, width, colour)
