"""Inserter codes: a DataMatrix on the front of every sheet that tells the inserting machine
which set (piece) the sheet belongs to, its position in the set and whether it ends the set.

Payload (ASCII, 22 characters): ``<batch 8 hex>-<piece 6>-<sheet 2><sheets 2>-<E|C>``,
e.g. ``3f2a9c1b-000042-0203-C``: batch 3f2a9c1b, piece 42, sheet 2 of 3, set continues.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pylibdmtx import pylibdmtx

MM = 72 / 25.4
MODULE = 0.5 * MM
"""Edge of one DataMatrix module: 0.5 mm, readable by inserter cameras at speed."""
POSITION = (6 * MM, 297 * MM - 240 * MM)
"""Lower-left corner of the code on the sheet's front, in points from the bottom left:
x 6 mm, about 240 mm from the top, in the left margin below the fold and hole marks."""

_PAYLOAD = re.compile(
    r"(?P<batch>[0-9a-f]{8})-(?P<piece>\d{6})-(?P<sheet>\d{2})(?P<sheets>\d{2})-(?P<end>[EC])"
)
# pylibdmtx draws 5 px per module inside a 2-module (10 px) quiet zone.
_PIXELS_PER_MODULE = 5
_MARGIN_PIXELS = 10


MAX_SHEETS = 99
"""Sheets a piece may have: the code gives sheet and sheet count two digits each."""
MAX_PIECES = 999_999
"""Pieces a batch may have: the code gives the piece number six digits."""


@dataclass(frozen=True, slots=True)
class InserterMark:
    """What the code on one sheet says."""

    batch: str
    piece: int
    sheet: int
    sheets: int

    @property
    def ends_set(self) -> bool:
        """The last sheet of its piece: the inserter closes the envelope after it."""
        return self.sheet == self.sheets

    def payload(self) -> str:
        """The encoded text."""
        end = "E" if self.ends_set else "C"
        return f"{self.batch[:8]}-{self.piece:06d}-{self.sheet:02d}{self.sheets:02d}-{end}"


def parse_mark(text: str) -> InserterMark:
    """Read a decoded payload back; raises :class:`ValueError` on anything else."""
    match = _PAYLOAD.fullmatch(text)
    if match is None:
        raise ValueError("not an inserter code")
    mark = InserterMark(match["batch"], int(match["piece"]), int(match["sheet"]), int(match["sheets"]))
    if (match["end"] == "E") != mark.ends_set or not 1 <= mark.sheet <= mark.sheets:
        raise ValueError("inconsistent inserter code")
    return mark


def modules(payload: str) -> list[list[bool]]:
    """The DataMatrix symbol of ``payload`` as rows of dark (``True``) and light modules."""
    encoded = pylibdmtx.encode(payload.encode("ascii"))
    size = (encoded.width - 2 * _MARGIN_PIXELS) // _PIXELS_PER_MODULE
    stride = encoded.bpp // 8

    def dark(row: int, column: int) -> bool:
        y = _MARGIN_PIXELS + row * _PIXELS_PER_MODULE + _PIXELS_PER_MODULE // 2
        x = _MARGIN_PIXELS + column * _PIXELS_PER_MODULE + _PIXELS_PER_MODULE // 2
        return bool(encoded.pixels[(y * encoded.width + x) * stride] < 128)

    return [[dark(row, column) for column in range(size)] for row in range(size)]


def stamp(mark: InserterMark) -> bytes:
    """A content stream drawing ``mark`` as filled squares (vector, so it prints sharp at any DPI)."""
    x0, y0 = POSITION
    rows = modules(mark.payload())
    top = y0 + len(rows) * MODULE
    squares = [
        f"{x0 + column * MODULE:.3f} {top - (row + 1) * MODULE:.3f} {MODULE:.3f} {MODULE:.3f} re"
        for row, line in enumerate(rows)
        for column, is_dark in enumerate(line)
        if is_dark
    ]
    return ("q 0 0 0 rg\n" + "\n".join(squares) + "\nf Q\n").encode("ascii")
