"""The merged print file, written page by page so memory stays flat however many pieces it holds.

pikepdf and pypdf both keep a whole output document in memory until it is saved;
for a batch of 10,000 letters that is the object graph of every piece at once. This
writer instead copies one piece at a time (its pages and everything they reference,
renumbered) straight to the output file and keeps only the byte offset of each
object and the list of page references. Pieces are read with pikepdf.
"""

from __future__ import annotations

from array import array
from collections import deque
from collections.abc import Iterable
from decimal import Decimal
from typing import BinaryIO

import pikepdf

A4 = (Decimal("595.276"), Decimal("841.89"))
_INHERITABLE = ("/Resources", "/MediaBox", "/CropBox", "/Rotate")
# Interactive and structural keys a print file does not need; following them would
# pull in the source document's outline, form fields or structure tree.
_XREF_CHUNK = 4096
_DROPPED_PAGE_KEYS = {"/Parent", "/Annots", "/StructParents", "/B", "/Tabs", "/Metadata", "/PieceInfo"}


class PrintFileWriter:
    """Appends pages to a PDF on a binary stream; :meth:`close` writes the page tree and xref."""

    def __init__(self, out: BinaryIO, *, title: str) -> None:
        self.out = out
        self.title = title
        # Typed arrays: 8 bytes an entry instead of a Python int's 36, for the ~40 objects of a piece.
        self.offsets = array("q", [0])  # object 0 is the head of the free list
        self.page_ids = array("q")
        self._written = 0  # counted here: a buffered file's tell() costs a system call per object
        self._write(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
        self.pages_id = self._reserve()
        self.catalog_id = self._reserve()
        self._open_contents = self._stream_object(b"q\n")  # isolates each page's graphics state

    @property
    def page_count(self) -> int:
        """Pages written so far."""
        return len(self.page_ids)

    def _write(self, data: bytes) -> None:
        self.out.write(data)
        self._written += len(data)

    def _position(self) -> int:
        return self._written

    def _reserve(self) -> int:
        self.offsets.append(-1)
        return len(self.offsets) - 1

    def _begin(self, object_id: int) -> None:
        self.offsets[object_id] = self._position()
        self._write(f"{object_id} 0 obj\n".encode())

    def _stream_object(self, data: bytes, dictionary: bytes = b"") -> int:
        object_id = self._reserve()
        self._begin(object_id)
        self._write(b"<<" + dictionary + f"/Length {len(data)}>>\nstream\n".encode())
        self._write(data + b"\nendstream\nendobj\n")
        return object_id

    def add_pages(self, pdf: pikepdf.Pdf, stamps: Iterable[bytes | None]) -> None:
        """Copy every page of ``pdf``; ``stamps`` gives, per page, a content stream drawn on top."""
        copier = _Copier(self)
        for page, overlay in zip(pdf.pages, stamps, strict=True):
            self._add_page(copier, page.obj, overlay)
        copier.flush()

    def add_blank_page(self, overlay: bytes | None = None) -> None:
        """An empty A4 page (duplex padding), with ``overlay`` drawn on it if given."""
        contents = [self._stream_object(overlay)] if overlay else []
        self._page(f"/MediaBox [0 0 {A4[0]} {A4[1]}] /Resources <<>>".encode(), contents)

    def _add_page(self, copier: _Copier, page: pikepdf.Object, overlay: bytes | None) -> None:
        entries = []
        for key in _INHERITABLE:
            value = inherited(page, key)
            if value is not None:
                entries.append(key.encode() + b" " + copier.value(value))
        for key in page.keys():  # noqa: SIM118 - a pikepdf Dictionary iterates over Objects
            if key in _DROPPED_PAGE_KEYS or key in _INHERITABLE or key in ("/Type", "/Contents"):
                continue
            entries.append(key.encode() + b" " + copier.value(page.get(key)))
        contents = [self._open_contents]
        original = page.get("/Contents")
        if isinstance(original, pikepdf.Array):
            contents += [copier.reference(item) for item in original]
        elif original is not None:
            contents.append(copier.reference(original))
        contents.append(self._stream_object(b"\nQ\n" + (overlay or b"")))
        copier.flush()
        self._page(b" ".join(entries), contents)

    def _page(self, entries: bytes, contents: list[int]) -> None:
        page_id = self._reserve()
        self._begin(page_id)
        kids = " ".join(f"{ref} 0 R" for ref in contents)
        self._write(
            f"<</Type /Page /Parent {self.pages_id} 0 R /Contents [{kids}] ".encode()
            + entries
            + b">>\nendobj\n"
        )
        self.page_ids.append(page_id)

    def close(self) -> None:
        """Write page tree, catalogue, info, cross-reference table and trailer."""
        self._begin(self.pages_id)
        self._write(f"<</Type /Pages /Count {len(self.page_ids)} /Kids [".encode())
        for start in range(0, len(self.page_ids), _XREF_CHUNK):
            chunk = self.page_ids[start : start + _XREF_CHUNK]
            self._write(b"".join(b"%d 0 R " % ref for ref in chunk))
        self._write(b"]>>\nendobj\n")
        self._begin(self.catalog_id)
        self._write(f"<</Type /Catalog /Pages {self.pages_id} 0 R>>\nendobj\n".encode())
        info_id = self._reserve()
        self._begin(info_id)
        self._write(
            b"<</Producer (postroom) /Title " + pikepdf.String(self.title).unparse() + b">>\nendobj\n"
        )
        xref = self._position()
        self._write(f"xref\n0 {len(self.offsets)}\n0000000000 65535 f \n".encode())
        for start in range(1, len(self.offsets), _XREF_CHUNK):  # in chunks: 20 bytes an object
            chunk = self.offsets[start : start + _XREF_CHUNK]
            self._write(b"".join(b"%010d 00000 n \n" % offset for offset in chunk))
        self._write(
            f"trailer\n<</Size {len(self.offsets)} /Root {self.catalog_id} 0 R /Info {info_id} 0 R>>\n"
            f"startxref\n{xref}\n%%EOF\n".encode()
        )


def inherited(page: pikepdf.Object, key: str) -> pikepdf.Object | None:
    """``key`` of the page or, as the page tree passes it down, of its nearest ancestor with one."""
    node: pikepdf.Object | None = page
    for _ in range(64):  # a page tree deeper than this is malformed
        if not isinstance(node, pikepdf.Dictionary):
            return None
        if key in node:
            value: pikepdf.Object = node[key]
            return value
        node = node.get("/Parent")
    return None


class _Copier:
    """Copies the objects one source document's pages reference, each once, renumbered."""

    def __init__(self, writer: PrintFileWriter) -> None:
        self.writer = writer
        self.numbers: dict[tuple[int, int], int] = {}
        self.queue: deque[pikepdf.Object] = deque()

    def reference(self, obj: pikepdf.Object) -> int:
        """The output number of the indirect ``obj``, queued for copying on first sight."""
        key = obj.objgen
        if key not in self.numbers:
            self.numbers[key] = self.writer._reserve()
            self.queue.append(obj)
        return self.numbers[key]

    def flush(self) -> None:
        """Write every queued object (and what they reference in turn)."""
        while self.queue:
            obj = self.queue.popleft()
            number = self.numbers[obj.objgen]
            self.writer._begin(number)
            if isinstance(obj, pikepdf.Stream):
                raw = obj.read_raw_bytes()
                entries = b"".join(
                    key.encode() + b" " + self.value(obj.stream_dict.get(key))
                    for key in obj.stream_dict.keys()  # noqa: SIM118
                    if key != "/Length"
                )
                self.writer._write(b"<<" + entries + f"/Length {len(raw)}>>\nstream\n".encode())
                self.writer._write(raw + b"\nendstream\nendobj\n")
            else:
                self.writer._write(self.direct(obj) + b"\nendobj\n")

    def value(self, value: object) -> bytes:
        """``value`` as PDF syntax, indirect objects as references."""
        if isinstance(value, pikepdf.Object) and value.is_indirect:
            return f"{self.reference(value)} 0 R".encode()
        return self.direct(value)

    def direct(self, value: object) -> bytes:
        """``value`` written out in place."""
        if value is None:
            return b"null"
        if isinstance(value, bool):
            return b"true" if value else b"false"
        if isinstance(value, int):
            return str(value).encode()
        if isinstance(value, Decimal | float):
            return format(Decimal(str(value)).normalize(), "f").encode()
        if isinstance(value, pikepdf.Dictionary):
            return (
                b"<<" + b" ".join(k.encode() + b" " + self.value(value.get(k)) for k in value.keys())  # noqa: SIM118 + b">>"
            )
        if isinstance(value, pikepdf.Array):
            return b"[" + b" ".join(self.value(item) for item in value) + b"]"
        if isinstance(value, pikepdf.Object):
            return value.unparse()
        raise TypeError(f"cannot write a {type(value).__name__} into a PDF")
