"""EPC069-12 payment QR codes ("GiroCode"), as SVG for the templates (segno).

The symbol is segno's ``make_epc_qr``, module for module: the same data, error level M and
the data mask ISO/IEC 18004 (7.8.3) selects, the one with the lowest penalty score. Only the
search for that mask is done here: segno scores the eight candidates module by module in
Python, about 4.5 ms of the 5.5 ms a code cost, once per invoice and reminder. Here segno
makes the symbol with mask 0, the eight candidates are derived from it as integers of one
byte a module and scored with a handful of integer and bytes operations each
(:func:`best_mask`, 0.7 ms), and the winning mask and its format information replace mask 0.
``tests/test_payment_qr.py`` holds the result against segno's own on random payloads.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import cache

import segno
import segno.consts
import segno.encoder
import segno.helpers

EPC_MAX_AMOUNT = Decimal("999999999.99")

_MASKS: tuple[Callable[[int, int], bool], ...] = (
    lambda i, j: (i + j) % 2 == 0,
    lambda i, j: i % 2 == 0,
    lambda i, j: j % 3 == 0,
    lambda i, j: (i + j) % 3 == 0,
    lambda i, j: (i // 2 + j // 3) % 2 == 0,
    lambda i, j: (i * j) % 2 + (i * j) % 3 == 0,
    lambda i, j: ((i * j) % 2 + (i * j) % 3) % 2 == 0,
    lambda i, j: ((i + j) % 2 + (i * j) % 3) % 2 == 0,
)
"""The data mask conditions of ISO/IEC 18004 Table 10, i = row, j = column."""
_FINDER_LIKE = bytes((1, 0, 1, 1, 1, 0, 1))
_SEPARATOR_BYTE = b"\xff"
_NONZERO = bytes([0] + [1] * 255)


def epc_qr_svg(
    *, name: str, iban: str, amount: Decimal, reference: str, bic: str | None = None, currency: str = "EUR"
) -> str | None:
    """An SEPA credit-transfer QR code for ``amount`` to ``iban``, or ``None`` where EPC allows none.

    The standard covers euro amounts from 0.01 to 999,999,999.99; the unstructured
    remittance text carries ``reference`` (the invoice or reminder number).
    """
    if currency != "EUR" or not Decimal("0.01") <= amount <= EPC_MAX_AMOUNT:
        return None
    code = epc_qr(name=name[:70], iban=iban, amount=amount, text=reference[:140], bic=bic)
    svg = io.BytesIO()
    code.save(svg, kind="svg", xmldecl=False, svgns=True, nl=False, border=0)
    return svg.getvalue().decode("ascii")


def epc_qr(*, name: str, iban: str, amount: Decimal, text: str, bic: str | None = None) -> segno.QRCode:
    """``segno.helpers.make_epc_qr(name=..., iban=..., amount=..., text=..., bic=...)``, faster."""
    # segno's own payload (character set, amount format, checks) and, as make_epc_qr, error
    # level M exactly (no boost) and at most version 13.
    data = segno.helpers._make_epc_qr_data(name, iban, amount, text=text, bic=bic)  # type: ignore[attr-defined]
    probe = segno.make_qr(data, error="m", boost_error=False, mask=0)
    version = probe.version
    if not isinstance(version, int) or version > 13:  # pragma: no cover - 331 bytes fit version 13
        raise ValueError(f"invalid EPC QR code: {probe.designator} is above version 13")
    mask = best_mask(probe.matrix)
    if mask != 0:
        # Mask 0 off and the winner on (data modules only), then the format information for it.
        flips = _layout(len(probe.matrix)).masks
        for row, mask_0, winner in zip(probe.matrix, flips[0], flips[mask], strict=True):
            row[:] = (int.from_bytes(row) ^ mask_0 ^ winner).to_bytes(len(row))
        segno.encoder.add_format_info(probe.matrix, version, segno.consts.ERROR_LEVEL_M, mask)  # type: ignore[no-untyped-call]
        probe.mask = mask
    return probe


def best_mask(symbol: Sequence[bytearray]) -> int:
    """The data mask ISO/IEC 18004 7.8.3 picks for the QR code ``symbol`` (made with mask 0).

    Each candidate is the symbol as segno scores it: the data modules under that mask, the
    function patterns as they are, the format and version areas still light (and the remainder
    bits of versions 2 to 6 with segno's placeholder value 2 under the mask). Scoring matches
    ``segno.encoder.mask_scores`` exactly; ties go to the lower mask number, as there.
    """
    size = len(symbol)
    layout = _layout(size)
    # The symbol as one integer, one byte a module, row after row (then column after column),
    # each line closed by a separator byte: a mask is one XOR.
    line = size + 1
    rows = _SEPARATOR_BYTE.join(symbol) + _SEPARATOR_BYTE
    unmasked = (int.from_bytes(rows) & layout.data) ^ layout.row_flips[0] | layout.fixed
    by_row = unmasked.to_bytes(size * line)
    by_column = int.from_bytes(b"".join(by_row[j::line] + _SEPARATOR_BYTE for j in range(size)))
    best, best_score = 0, -1
    for number in range(len(_MASKS)):
        candidate = unmasked ^ layout.row_flips[number]
        score = penalty(candidate, by_column ^ layout.column_flips[number], size)
        if best_score < 0 or score < best_score:
            best, best_score = number, score
    return best


def penalty(rows: int, columns: int, size: int) -> int:
    """The penalty score N1 + N2 + N3 + N4 of a square symbol: its rows and its columns, each as
    one integer of one byte a module (0 light, 1 dark; 2 and 3 for segno's remainder-bit
    placeholders, which it scores as values too) and a separator byte after each line."""
    line = size + 1
    length = size * line
    lines = rows.to_bytes(length) + columns.to_bytes(length)
    # N1: a run of L >= 5 alike scores L - 2: one for each module from the fifth on, where the
    # module equals the four before it (a zero byte below), and two more for the run.
    everything = int.from_bytes(_SEPARATOR_BYTE + lines)  # a separator before the first line too
    changes = everything ^ (everything >> 8)
    fifth_on = (changes | (changes >> 8) | (changes >> 16) | (changes >> 24)).to_bytes(len(lines) + 1)
    score = fifth_on.count(0) + 2 * fifth_on.translate(_NONZERO).count(b"\x01\x00")
    # N2: 2 x 2 blocks of one value. A zero byte where a module equals its left neighbour, the
    # one above and that one's left neighbour; the first row, first column and separators masked.
    above = rows >> (8 * line)
    differs = (rows ^ above) | (rows ^ (rows >> 8)) | (above ^ (above >> 8)) | _edges(size)
    score += 3 * differs.to_bytes(length).count(0)
    score += _finder_like(lines, size)  # N3
    dark = sum(value * lines.count(value) for value in (1, 2, 3)) // 2  # rows and columns: twice
    return score + 10 * int(abs(float(dark) / (size**2) * 100 - 50) / 5)  # N4


def _finder_like(lines: bytes, size: int) -> int:
    """N3 over the lines (each closed by a separator byte), found line by line as
    ``segno.encoder.mask_scores`` finds it (the light margins looked for within the line)."""
    count = 0
    found = lines.find(_FINDER_LIKE)
    while found != -1:
        start = found - found % (size + 1)  # the line's first module
        index = found - start
        offset = index + 7
        if (
            index in (0, size - 7)
            or not any(lines[start + max(index - 4, 0) : start + index])
            or not any(lines[start + offset : start + min(offset + 4, size)])
        ):
            count += 40
        else:
            offset = index + 4
        found = lines.find(_FINDER_LIKE, start + offset)
    return count


@cache
def _edges(size: int) -> int:
    """Non-zero bytes where no 2 x 2 block ends: the first row, the first column, the separators."""
    return int.from_bytes(
        bytes(0xFF if i == 0 or j in (0, size) else 0 for i in range(size) for j in range(size + 1))
    )


@dataclass(frozen=True, slots=True)
class _Layout:
    """A symbol size as integers of one byte a module, a separator byte after each line: the
    function patterns as segno lays them out before masking (format and version areas, the dark
    module among them, reserved as light), the data modules (every other one, remainder bits
    included), and per mask the modules it flips, row after row and column after column."""

    fixed: int
    data: int
    row_flips: tuple[int, ...]
    column_flips: tuple[int, ...]
    masks: tuple[tuple[int, ...], ...]
    """Per mask, the modules it flips in each row (without separator)."""


@cache
def _layout(size: int) -> _Layout:
    matrix = segno.encoder.make_matrix(size, size)  # type: ignore[no-untyped-call]
    segno.encoder.add_finder_patterns(matrix, size, size)  # type: ignore[no-untyped-call]
    segno.encoder.add_alignment_patterns(matrix, size, size)  # type: ignore[no-untyped-call]

    def lines(value: Callable[[int, int], int], *, separator: int = 0, by_column: bool = False) -> int:
        if by_column:
            ordered = (value(i, j) if i < size else separator for j in range(size) for i in range(size + 1))
        else:
            ordered = (value(i, j) if j < size else separator for i in range(size) for j in range(size + 1))
        return int.from_bytes(bytes(ordered))

    def flips(condition: Callable[[int, int], bool]) -> Callable[[int, int], int]:
        return lambda i, j: int(matrix[i][j] > 0x1 and condition(i, j))

    return _Layout(
        fixed=lines(lambda i, j: matrix[i][j] if matrix[i][j] <= 0x1 else 0, separator=_SEPARATOR_BYTE[0]),
        data=lines(lambda i, j: 0xFF if matrix[i][j] > 0x1 else 0),
        row_flips=tuple(lines(flips(condition)) for condition in _MASKS),
        column_flips=tuple(lines(flips(condition), by_column=True) for condition in _MASKS),
        masks=tuple(
            tuple(int.from_bytes(bytes(flips(condition)(i, j) for j in range(size))) for i in range(size))
            for condition in _MASKS
        ),
    )
