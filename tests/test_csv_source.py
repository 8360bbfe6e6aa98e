"""CSV rows to request bodies: the column mapping, quoted fields across lines, bad rows."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from postroom.api.csv_source import CellError, MappingError, body_of, csv_rows, parse_mapping


def rows(text: str) -> list[tuple[int, dict[str, str] | None]]:
    async def lines() -> AsyncIterator[tuple[int, bytes]]:
        for number, line in enumerate(text.encode().split(b"\n"), 1):
            yield number, line

    async def collect() -> list[tuple[int, dict[str, str] | None]]:
        return [row async for row in csv_rows(lines())]

    return asyncio.run(collect())


def test_rows_keep_their_first_line_and_quoted_fields_span_lines() -> None:
    text = '\ufeffName;Ort\n"Müller, Hans";Köln\n"Zeile 1\nZeile 2";Bonn\n\nnur eine Spalte\n'.replace(
        ";", ","
    )
    assert rows(text) == [
        (2, {"Name": "Müller, Hans", "Ort": "Köln"}),
        (3, {"Name": "Zeile 1\nZeile 2", "Ort": "Bonn"}),
        (6, None),  # a row without the header's columns
    ]
    assert rows('A,B\n"offen,1\n') == [(2, None)]  # a quote never closed


def test_the_mapping_builds_nested_bodies_and_converts_cells() -> None:
    mapping = parse_mapping(
        '{"type": {"value": "dunning_letter"}, "recipient.name": "Name",'
        ' "data.level": {"column": "Stufe", "as": "integer"}, "data.items[1].amount": "Betrag2",'
        ' "data.items[0].amount": "Betrag1", "recipient.email": "Mail"}'
    )
    body = body_of(
        {"Name": "Firma", "Stufe": "2", "Betrag1": "10.00", "Betrag2": "5.00", "Mail": ""}, mapping
    )
    assert body == {
        "type": "dunning_letter",
        "recipient": {"name": "Firma"},  # an empty cell leaves its field out
        "data": {"level": 2, "items": [{"amount": "10.00"}, {"amount": "5.00"}]},
    }
    with pytest.raises(CellError, match="'Stufe' is not an integer") as error:
        body_of({"Stufe": "zwei"}, mapping)
    assert "zwei" not in str(error.value)
    with pytest.raises(MappingError, match="not a field path"):
        parse_mapping('{"data..x": "A"}')
    with pytest.raises(MappingError):
        parse_mapping('{"data.x": {"column": "A", "as": "date"}}')
