"""Transient storage of rendered PDFs while a document is in processing.

The spool holds personal data; files live only until every hand-off is confirmed.
In a multi-host deployment the spool folder is a volume shared by API and workers.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

from postroom.core.files import write_atomically


class NotHeld(LookupError):
    """The requested PDF is not (or no longer) in the spool."""


class Spool:
    """Rendered PDFs by document id and variant, written atomically."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _folder(self, document_id: uuid.UUID) -> Path:
        return self.root / document_id.hex[:2] / document_id.hex

    def path(self, document_id: uuid.UUID, variant: str) -> Path:
        """Where the PDF of ``variant`` lives."""
        return self._folder(document_id) / f"{variant}.pdf"

    def write(self, document_id: uuid.UUID, variant: str, pdf: bytes) -> Path:
        """Store a PDF; readers never see a partial file."""
        target = self.path(document_id, variant)
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomically(target, pdf, mode=0o600)
        return target

    def link(self, document_id: uuid.UUID, variant: str, same_as: str) -> Path:
        """Store ``same_as`` as the PDF of ``variant`` too: its bytes, without writing them again."""
        source, target = self.path(document_id, same_as), self.path(document_id, variant)
        temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
        os.link(source, temporary)
        os.replace(temporary, target)  # replaces what an earlier attempt left
        # rename() between two links of one file does nothing: an earlier attempt's link stays.
        temporary.unlink(missing_ok=True)
        return target

    def read(self, document_id: uuid.UUID, variant: str) -> bytes:
        """The PDF of ``variant``; raises :class:`NotHeld` when absent."""
        try:
            return self.path(document_id, variant).read_bytes()
        except FileNotFoundError:
            raise NotHeld(f"variant {variant!r} of document {document_id} is not held") from None

    def discard(self, document_id: uuid.UUID) -> None:
        """Delete every spooled file of a document."""
        shutil.rmtree(self._folder(document_id), ignore_errors=True)
