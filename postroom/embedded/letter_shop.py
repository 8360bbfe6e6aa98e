"""A letter shop on a hot folder, for the demo and the tests: it takes every batch the hub puts in
``out/``, checks the print file against its manifest and answers in ``ack/`` as a real letter shop
does (see README, "Print channel").

A batch whose PDF is missing or does not match the manifest's SHA-256 or page count is rejected
as a whole.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import pikepdf

from postroom.channels.printing.letter_shop import ACK_SUFFIX
from postroom.core.files import write_atomically

MANIFEST_SUFFIX = ".manifest.json"


@dataclass(frozen=True, slots=True)
class ReceivedBatch:
    """A batch the letter shop took: its manifest and what it found in the print file."""

    stem: str
    manifest: dict[str, Any]
    pdf_sha256: str
    pdf_pages: int
    accepted: bool


class LetterShopSimulator:
    """Watches ``root/out`` and acknowledges each complete batch in ``root/ack``."""

    def __init__(self, root: Path, *, interval: float = 0.2) -> None:
        self.out, self.ack = root / "out", root / "ack"
        self.interval = interval
        self.received: list[ReceivedBatch] = []
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="letter-shop", daemon=True)

    def batch_with(self, document_id: str) -> ReceivedBatch | None:
        """The batch that held ``document_id``, once taken."""
        with self._lock:
            for batch in self.received:
                if any(row["document_id"] == document_id for row in batch.manifest["rows"]):
                    return batch
        return None

    def take_waiting(self) -> list[ReceivedBatch]:
        """Acknowledge every complete batch not yet answered; the batches taken."""
        taken = []
        for manifest_path in sorted(self.out.glob(f"*{MANIFEST_SUFFIX}")):
            stem = manifest_path.name.removesuffix(MANIFEST_SUFFIX)
            if stem in self._seen:
                continue
            taken.append(self._take(stem, json.loads(manifest_path.read_bytes())))
        return taken

    def _take(self, stem: str, manifest: dict[str, Any]) -> ReceivedBatch:
        pdf = self.out / f"{stem}.pdf"
        sha256, pages = "", 0
        if pdf.is_file():
            sha256 = hashlib.sha256(pdf.read_bytes()).hexdigest()
            with pikepdf.Pdf.open(pdf) as document:
                pages = len(document.pages)
        accepted = sha256 == manifest["sha256"] and pages == manifest["pages"]
        answer = {"batch": manifest["batch"], "status": "accepted" if accepted else "rejected"}
        self.ack.mkdir(parents=True, exist_ok=True)
        write_atomically(self.ack / f"{stem}{ACK_SUFFIX}", json.dumps(answer).encode())
        batch = ReceivedBatch(stem, manifest, sha256, pages, accepted)
        with self._lock:
            self._seen.add(stem)
            self.received.append(batch)
        return batch

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            self.take_waiting()

    def __enter__(self) -> LetterShopSimulator:
        self._thread.start()
        return self

    def __exit__(self, *exc: object | TracebackType) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
