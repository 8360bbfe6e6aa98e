"""Bulk runs uploaded as CSV: one document per row, turned into a request body by a column mapping.

The mapping names, for each request field (a path such as ``recipient.name`` or
``data.lines[0].unit_price``), either the column it comes from or a constant::

    {"type": {"value": "dunning_letter"},
     "channels": {"value": ["print", "archive"]},
     "recipient.name": "Name",
     "data.level": {"column": "Stufe", "as": "integer"},
     "data.seller": {"value": {...}}}

An empty cell leaves its field out. Cells are text; ``"as": "integer"`` or ``"as": "json"``
converts them. A row is read across physical lines while a quoted field is open, and is
reported by the line it starts on.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import AsyncIterator, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

_PATH = re.compile(r"^[a-z_][a-z0-9_]*(\[[0-9]+\])?(\.[a-z_][a-z0-9_]*(\[[0-9]+\])?)*$")
_STEP = re.compile(r"([a-z_][a-z0-9_]*)(?:\[([0-9]+)\])?")


class Column(BaseModel):
    """A field taken from a column, converted ``as`` given."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    column: str
    as_: Literal["string", "integer", "json"] = Field(default="string", alias="as")


class Constant(BaseModel):
    """A field with the same value in every row."""

    model_config = ConfigDict(extra="forbid")

    value: Any


Source = str | Column | Constant
_MAPPING: TypeAdapter[dict[str, Source]] = TypeAdapter(dict[str, Source])


class MappingError(ValueError):
    """The column mapping itself is unusable (the message names the path or column)."""


class CellError(ValueError):
    """A cell could not be converted (the message names the column, never the cell)."""


def parse_mapping(text: str) -> dict[str, Column | Constant]:
    """The mapping from its JSON text; every path well-formed and at most one source per field."""
    try:
        raw = _MAPPING.validate_json(text)
    except ValidationError as error:
        raise MappingError(f"not a column mapping: {error.errors(include_input=False)[0]['msg']}") from None
    mapping: dict[str, Column | Constant] = {}
    for path, source in raw.items():
        if not _PATH.fullmatch(path):
            raise MappingError(f"{path!r} is not a field path such as data.lines[0].unit_price")
        mapping[path] = Column(column=source) if isinstance(source, str) else source
    return mapping


def body_of(row: Mapping[str, str], mapping: Mapping[str, Column | Constant]) -> dict[str, Any]:
    """The request body of one row."""
    body: dict[str, Any] = {}
    for path, source in mapping.items():
        if isinstance(source, Constant):
            _put(body, path, source.value)
            continue
        cell = row.get(source.column, "")
        if cell == "":
            continue
        _put(body, path, _convert(cell, source))
    return body


def _convert(cell: str, source: Column) -> Any:
    if source.as_ == "integer":
        try:
            return int(cell)
        except ValueError:
            raise CellError(f"column {source.column!r} is not an integer") from None
    if source.as_ == "json":
        try:
            return json.loads(cell)
        except ValueError:
            raise CellError(f"column {source.column!r} is not JSON") from None
    return cell


def _put(body: dict[str, Any], path: str, value: Any) -> None:
    steps = [(name, int(index) if index else None) for name, index in _STEP.findall(path)]
    node: Any = body
    for position, (name, index) in enumerate(steps):
        last = position == len(steps) - 1
        if index is None:
            if last:
                node[name] = value
            else:
                node = node.setdefault(name, {})
            continue
        items = node.setdefault(name, [])
        while len(items) <= index:
            items.append({})
        if last:
            items[index] = value
        else:
            node = items[index]


async def csv_rows(
    lines: AsyncIterator[tuple[int, bytes]],
) -> AsyncIterator[tuple[int, dict[str, str] | None]]:
    """``(line, row)`` for each data row after the header; ``None`` for a row with a cell count
    other than the header's, or text that is not UTF-8."""
    header: list[str] | None = None
    pending: list[str] = []
    start = 0
    async for number, raw in lines:
        try:
            text = raw.decode("utf-8-sig" if number == 1 else "utf-8").rstrip("\r")
        except UnicodeDecodeError:
            yield number, None
            continue
        if not pending:
            start = number
        pending.append(text)
        record = "\n".join(pending)
        if record.count('"') % 2:  # a quoted field goes on in the next line
            continue
        pending = []
        if not record.strip():
            continue
        [cells] = list(csv.reader([record]))
        if header is None:
            header = cells
            continue
        yield start, dict(zip(header, cells, strict=True)) if len(cells) == len(header) else None
    if pending:
        yield start, None
