"""DIN 5008 fold and hole marks, drawn on the first page of every letter in a print file.

The documents carry no marks of their own: the posted letter is the archived one (see
:data:`postroom.renderer.service.RENDERED_AS`), so the print file adds what only paper needs,
the marks here and the inserter code (:mod:`postroom.channels.printing.inserter`).
"""

from __future__ import annotations

MM = 72 / 25.4
MARKS_MM: tuple[tuple[float, float], ...] = ((105, 5), (148.5, 8), (210, 5))
"""Each mark's distance from the top edge of the sheet and its length: the fold marks of
DIN 5008 Form B at 105 and 210 mm, the hole (punch) mark at 148.5 mm."""
LEFT_MM = 4
"""Where the marks start, from the left edge: in the margin, clear of the text."""
MUTED_RGB = "0.357 0.392 0.447"
"""The templates' muted grey (#5b6472): marks guide folding and punching, they are no content."""


def fold_marks(page_height: float) -> bytes:
    """A content stream drawing the marks on a page ``page_height`` points high (A4: 841.89)."""
    x0, lines = LEFT_MM * MM, []
    for top, length in MARKS_MM:
        y = page_height - top * MM
        lines.append(f"{x0:.3f} {y:.3f} m {x0 + length * MM:.3f} {y:.3f} l S")
    return ("q " + MUTED_RGB + " RG 0.5 w 0 J\n" + "\n".join(lines) + "\nQ\n").encode("ascii")
