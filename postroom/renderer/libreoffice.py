"""A small pool of long-running headless LibreOffice processes that convert documents to PDF.

Each pooled process is a pair in a process group of its own: a helper script
(``libreoffice_uno.py``, run by Debian's ``python3`` because the UNO bridge ``python3-uno``
is built for it, not for the project's Python) and the ``soffice --headless`` it starts and
drives over a UNO pipe. The pool talks to the helper with one JSON line per request.

* Processes start lazily, on the first conversion that finds no idle one, up to ``size``.
* A process is recycled (stopped, replaced on demand) after ``max_conversions`` conversions,
  so LibreOffice's slow growth in memory never accumulates.
* Every conversion is bounded by ``timeout``: past it the whole process group is killed
  (SIGKILL) and the slot is free for a fresh process; the caller gets an :class:`OfficeError`.
  A helper or LibreOffice that dies mid-conversion is handled the same way.
* Each process has a private user profile, a private fontconfig configuration that knows
  only the vendored fonts (so output never depends on the machine's fonts), ``TZ=UTC`` and
  an empty ``HOME``, all in a temporary folder removed with the process.
* :meth:`OfficePool.close` stops every process; it runs at interpreter exit once a process
  was started. A pool inherited through ``fork`` starts afresh in the child and never
  touches its parent's processes.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import os
import re
import selectors
import shutil
import signal
import struct
import subprocess
import tempfile
import threading
import time
import uuid
import zlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from postroom.errors import TransientError

HELPER = Path(__file__).with_name("libreoffice_uno.py")
PDF_PLAIN = 0
PDF_A_3B = 3  # LibreOffice's SelectPdfVersion for PDF/A-3b


class OfficeError(TransientError):
    """LibreOffice failed, died or exceeded its time for a conversion; a later attempt may succeed."""

    code = "office_error"


_FONTS_CONF = """<?xml version="1.0"?>
<!DOCTYPE fontconfig SYSTEM "urn:fontconfig:fonts.dtd">
<fontconfig>
  <!-- Only the vendored fonts: no system configuration, no system font folders. -->
  <dir>{fonts}</dir>
  <cachedir>{cache}</cachedir>
</fontconfig>
"""


class _Process:
    """One helper + soffice pair in its own process group, used by one thread at a time."""

    def __init__(self, *, soffice: str, python: str, fonts: Path | None, start_timeout: float) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="postroom-office-"))
        self.conversions = 0
        self._buffer = b""
        (self.folder / "home").mkdir()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.folder / "home"),
            "TZ": "UTC",
            "LANG": "C.UTF-8",
            "SAL_USE_VCLPLUGIN": "svp",
        }
        if fonts is not None:
            conf = self.folder / "fonts.conf"
            conf.write_text(
                _FONTS_CONF.format(fonts=escape(str(fonts)), cache=escape(str(self.folder / "fontcache"))),
                encoding="utf-8",
            )
            env["FONTCONFIG_FILE"] = str(conf)
        self._log = (self.folder / "helper.log").open("wb")
        self.popen = subprocess.Popen(
            [
                python,
                "-I",
                str(HELPER),
                "--soffice",
                soffice,
                "--profile",
                (self.folder / "profile").as_uri(),
                "--pipe",
                f"postroom-{os.getpid()}-{uuid.uuid4().hex}",
                "--start-timeout",
                str(start_timeout),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=env,
            start_new_session=True,
        )
        try:
            reply = self._read(time.monotonic() + start_timeout + 5)
        except OfficeError:
            self.kill()
            raise
        if not reply.get("ready"):
            self.kill()
            raise OfficeError("LibreOffice did not start")

    @property
    def pid(self) -> int:
        """Process id of the helper, which is also the id of the process group."""
        return self.popen.pid

    def _read(self, deadline: float) -> dict[str, Any]:
        stdout = self.popen.stdout
        assert stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(stdout, selectors.EVENT_READ)
            while b"\n" not in self._buffer:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not selector.select(remaining):
                    raise OfficeError("timeout")
                chunk = os.read(stdout.fileno(), 65536)
                if not chunk:
                    raise OfficeError("LibreOffice exited unexpectedly")
                self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        reply: dict[str, Any] = json.loads(line)
        return reply

    def convert(self, document: bytes, *, suffix: str, pdf_version: int, timeout: float) -> bytes:
        """Convert ``document`` to PDF; kill this process and raise on timeout or death."""
        self.conversions += 1
        source, target = self.folder / f"document{suffix}", self.folder / "document.pdf"
        source.write_bytes(document)
        target.unlink(missing_ok=True)
        request = {"input": str(source), "output": str(target), "pdf_version": pdf_version}
        started = time.monotonic()
        try:
            assert self.popen.stdin is not None
            self.popen.stdin.write(json.dumps(request).encode() + b"\n")
            self.popen.stdin.flush()
            reply = self._read(started + timeout)
        except (OfficeError, OSError) as error:
            self.kill()
            if isinstance(error, OfficeError) and str(error) == "timeout":
                raise OfficeError(
                    f"LibreOffice exceeded {timeout:g} s for one conversion; its process was killed"
                ) from None
            raise OfficeError("LibreOffice exited during a conversion") from None
        finally:
            source.unlink(missing_ok=True)
        if not reply.get("ok"):
            raise OfficeError(f"LibreOffice could not convert the document ({reply.get('error', 'error')})")
        pdf = target.read_bytes()
        target.unlink()
        return pdf

    def alive(self) -> bool:
        """Whether the helper still runs."""
        return self.popen.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """Ask LibreOffice to terminate, kill the group if it does not within ``timeout``."""
        try:
            assert self.popen.stdin is not None
            self.popen.stdin.write(b'{"quit": true}\n')
            self.popen.stdin.close()
            self.popen.wait(timeout=timeout)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            pass
        self.kill()

    def kill(self) -> None:
        """Kill the helper and LibreOffice (the whole process group) and remove the folder."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        for stream in (self.popen.stdin, self.popen.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        self.popen.wait()
        self._log.close()
        shutil.rmtree(self.folder, ignore_errors=True)


class OfficePool:
    """Up to ``size`` warm LibreOffice processes, each recycled after ``max_conversions``.

    Nothing starts before the first :meth:`convert`. Conversions are bounded by
    ``timeout`` seconds; a process that exceeds it is killed and replaced.
    """

    def __init__(
        self,
        *,
        fonts: Path | None = None,
        size: int = 2,
        max_conversions: int = 200,
        timeout: float = 60.0,
        start_timeout: float = 60.0,
        soffice: str | None = None,
        python: str = "/usr/bin/python3",
    ) -> None:
        if size < 1 or max_conversions < 1 or timeout <= 0:
            raise ValueError("size and max_conversions must be at least 1, timeout positive")
        self.fonts = fonts.resolve() if fonts is not None else None
        self.size = size
        self.max_conversions = max_conversions
        self.timeout = timeout
        self.start_timeout = start_timeout
        self.soffice = soffice or shutil.which("soffice") or "/usr/bin/soffice"
        self.python = python
        self.started = 0  # processes started over the pool's life (tests and metrics)
        self._lock = threading.Condition()
        self._idle: list[_Process] = []
        self._busy: set[_Process] = set()
        self._slots = 0  # processes running or starting
        self._pid = os.getpid()
        self._atexit = False
        self._closed = False

    @property
    def processes(self) -> list[int]:
        """Helper process ids of the running processes, idle and busy."""
        with self._lock:
            return [process.pid for process in (*self._idle, *self._busy)]

    def _after_fork(self) -> None:
        if self._pid != os.getpid():  # a forked child: the processes are the parent's
            self._lock = threading.Condition()
            self._idle, self._busy, self._slots, self._pid = [], set(), 0, os.getpid()
            self._atexit = False

    def _acquire(self) -> _Process:
        with self._lock:
            self._after_fork()
            if self._closed:
                raise OfficeError("the LibreOffice pool is closed")
            while not self._idle and self._slots >= self.size:
                self._lock.wait()
            if self._idle:
                process = self._idle.pop()
                self._busy.add(process)
                return process
            self._slots += 1
            if not self._atexit:
                atexit.register(self.close)
                self._atexit = True
        try:
            process = _Process(
                soffice=self.soffice, python=self.python, fonts=self.fonts, start_timeout=self.start_timeout
            )
        except BaseException:
            with self._lock:
                self._slots -= 1
                self._lock.notify()
            raise
        with self._lock:
            self.started += 1
            self._busy.add(process)
        return process

    def _release(self, process: _Process) -> None:
        retire = not process.alive() or process.conversions >= self.max_conversions
        with self._lock:
            self._busy.discard(process)
            if retire or self._closed:
                self._slots -= 1
            else:
                self._idle.append(process)
            self._lock.notify()
        if retire or self._closed:
            process.stop()

    def convert(
        self,
        document: bytes,
        *,
        suffix: str = ".docx",
        pdf_version: int = PDF_PLAIN,
        timeout: float | None = None,
    ) -> bytes:
        """``document`` (a file of type ``suffix``) as PDF; ``pdf_version`` 3 is PDF/A-3b."""
        process = self._acquire()
        try:
            return process.convert(
                document, suffix=suffix, pdf_version=pdf_version, timeout=timeout or self.timeout
            )
        finally:
            self._release(process)

    def close(self) -> None:
        """Stop every idle process now and every busy one when its conversion ends."""
        with self._lock:
            if self._pid != os.getpid():
                return
            self._closed = True
            idle, self._idle = self._idle, []
            self._slots -= len(idle)
            self._lock.notify_all()
        for process in idle:
            process.stop()

    def reopen(self) -> None:
        """Allow conversions again after :meth:`close` (processes start lazily as before)."""
        with self._lock:
            self._closed = False


_PDF_DATE = re.compile(rb"/(CreationDate|ModDate)\(D:(\d{14})Z'\)")
_XMP_DATE = re.compile(rb"<xmp:(CreateDate|ModifyDate|MetadataDate)>(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)Z</xmp:")
_PDF_ID = re.compile(rb"/ID \[ ?<([0-9A-Fa-f]{32})>\s*<([0-9A-Fa-f]{32})> ?\]")
_XREF = re.compile(rb"startxref\s+(\d+)\s+%%EOF\s*$")
_XREF_SECTION = re.compile(rb"xref\s+0 (\d+)\s+")
_LENGTH_REF = re.compile(rb"/Length (\d+) 0 R")
_UNIQUE_ID = re.compile(rb"/UniqueID (\d{7}) def")
_DOC_CHECKSUM = re.compile(rb"/DocChecksum /([0-9A-Fa-f]{32})")


def _objects(pdf: bytes) -> tuple[bytes, dict[int, bytes], bytes]:
    """Split a PDF with one classic xref table into head, objects by number, and trailer."""
    end = _XREF.search(pdf)
    if end is None:
        raise OfficeError("LibreOffice wrote a PDF without a cross-reference table")
    xref_at = int(end[1])
    section = _XREF_SECTION.match(pdf, xref_at)
    if section is None:
        raise OfficeError("LibreOffice wrote an unexpected cross-reference table")
    count = int(section[1])
    rows = pdf[section.end() : section.end() + 20 * count].split(b"\n")
    offsets = {
        number: int(row[:10]) for number, row in enumerate(r for r in rows if r.strip()) if row[17:18] == b"n"
    }
    ordered = sorted(offsets.items(), key=lambda item: item[1])
    bounds = [offset for _, offset in ordered] + [xref_at]
    objects = {number: pdf[bounds[index] : bounds[index + 1]] for index, (number, _) in enumerate(ordered)}
    trailer = pdf[pdf.index(b"trailer", section.end()) : end.start()]
    return pdf[: bounds[0]], objects, trailer


def _join(head: bytes, objects: dict[int, bytes], trailer: bytes) -> bytes:
    out = bytearray(head)
    offsets: dict[int, int] = {}
    for number in sorted(objects):
        offsets[number] = len(out)
        out += objects[number]
    xref_at = len(out)
    size = max(objects) + 1
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    for number in range(1, size):
        out += b"%010d 00000 n \n" % offsets[number] if number in offsets else b"0000000000 65535 f \n"
    out += trailer + b"startxref\n%d\n%%%%EOF\n" % xref_at
    return bytes(out)


def _eexec(data: bytes, *, decrypt: bool) -> bytes:
    """Type 1 ``eexec`` encryption (Adobe Type 1 Font Format, 7.2) in either direction."""
    key, out = 55665, bytearray()
    for byte in data:
        result = byte ^ (key >> 8)
        out.append(result)
        cipher = byte if decrypt else result
        key = ((cipher + key) * 52845 + 22719) & 0xFFFF
    return bytes(out)


_TYPE1_LENGTHS = re.compile(rb"/Length1 (\d+)/Length2 (\d+)/Length3 (\d+)")
_FLATE_STREAM = re.compile(rb"<<([^>]*/Filter/FlateDecode[^>]*)>>\s*stream\r?\n", re.S)


class _Stream:
    """A Flate-compressed stream object whose /Length is an indirect object."""

    def __init__(self, objects: dict[int, bytes], number: int) -> None:
        data = objects[number]
        start = data.find(b"<<", 0, 40)
        header = _FLATE_STREAM.match(data, start) if start >= 0 else None
        reference = _LENGTH_REF.search(header[1]) if header else None
        length = re.search(rb"obj\s+(\d+)", objects.get(int(reference[1]), b"")) if reference else None
        if header is None or reference is None or length is None:
            raise LookupError(number)
        self.objects, self.number, self.length_number = objects, number, int(reference[1])
        self.dictionary = header[1]
        self.body = header.end()
        self.compressed = data[self.body : self.body + int(length[1])]

    def read(self) -> bytes:
        """The decompressed content."""
        return zlib.decompress(self.compressed)

    def write(self, content: bytes) -> None:
        """Replace the content, re-compressed, and update the /Length object."""
        data, packed = self.objects[self.number], zlib.compress(content, 6)
        self.objects[self.number] = data[: self.body] + packed + data[self.body + len(self.compressed) :]
        self.objects[self.length_number] = re.sub(
            rb"obj\s+\d+", b"obj\n%d" % len(packed), self.objects[self.length_number], count=1
        )


def _streams(objects: dict[int, bytes]) -> list[_Stream]:
    found = []
    for number in sorted(objects):
        try:
            found.append(_Stream(objects, number))
        except (LookupError, zlib.error):
            continue
    return found


def _stable_type1_fonts(streams: list[_Stream]) -> None:
    """Number the embedded Type 1 fonts by their order in the document, not in the process.

    LibreOffice 7.4 embeds CFF (.otf) fonts as Type 1 and gives each a /UniqueID (in the
    clear part and again in the eexec-encrypted part) from a counter that runs over the
    life of the process (4100001, 4100002, ...), so the same document differs between the
    first and the tenth conversion of a process. The IDs are renumbered from 4100001 in
    their original order, which is what a fresh process writes.
    """
    fonts: list[tuple[_Stream, bytes, int, int]] = []
    for stream in streams:
        lengths = _TYPE1_LENGTHS.search(stream.dictionary)
        if lengths is not None:
            clear_end = int(lengths[1])
            fonts.append((stream, stream.read(), clear_end, clear_end + int(lengths[2])))
    found = sorted({int(m[1]) for _, font, clear, _ in fonts for m in _UNIQUE_ID.finditer(font[:clear])})
    renumber = {old: b"%d" % (4_100_001 + index) for index, old in enumerate(found)}

    def stable(part: bytes) -> bytes:
        return _UNIQUE_ID.sub(lambda m: b"/UniqueID " + renumber.get(int(m[1]), m[1]) + b" def", part)

    for stream, font, clear_end, secret_end in fonts:
        secret = _eexec(stable(_eexec(font[clear_end:secret_end], decrypt=True)), decrypt=False)
        rebuilt = stable(font[:clear_end]) + secret + font[secret_end:]
        if len(rebuilt) == len(font):  # seven-digit IDs keep every length
            stream.write(rebuilt)


def _stable_icc_profiles(streams: list[_Stream], moment: datetime) -> None:
    """Date the sRGB output-intent profile (PDF/A) ``moment``; LittleCMS stamps it with the clock.

    A profile ID (ICC.1:2010 7.2.18), when present, is recomputed for the new date.
    """
    for stream in streams:
        if b"/N 3" not in stream.dictionary:
            continue
        profile = bytearray(stream.read())
        if profile[36:40] != b"acsp":
            continue
        profile[24:36] = struct.pack(
            ">6H", moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second
        )
        if any(profile[84:100]):
            hashed = bytearray(profile)
            hashed[44:48] = hashed[64:68] = bytes(4)
            hashed[84:100] = bytes(16)
            profile[84:100] = hashlib.md5(hashed, usedforsecurity=False).digest()
        stream.write(bytes(profile))


def normalize_pdf(pdf: bytes, timestamp: datetime) -> bytes:
    """LibreOffice's PDF made a function of the document alone: fixed dates, stable fonts and /ID.

    LibreOffice stamps the export time into ``/CreationDate`` and the XMP ``CreateDate``,
    derives ``/ID`` from that time, and numbers embedded Type 1 fonts per process. Dates
    become ``timestamp``, font numbers derive from the font data, and ``/ID`` is the MD5 of
    the result (as WeasyPrint does). The pool runs LibreOffice with ``TZ=UTC``, which fixes
    the date form matched here.
    """
    moment = timestamp.astimezone(UTC)
    pdf_date = moment.strftime("%Y%m%d%H%M%S").encode()
    head, objects, trailer = _objects(pdf)
    streams = _streams(objects)
    _stable_type1_fonts(streams)
    _stable_icc_profiles(streams, moment)
    for number, data in objects.items():
        data = _PDF_DATE.sub(lambda m: b"/" + m[1] + b"(D:" + pdf_date + b"+00'00')", data)
        objects[number] = _XMP_DATE.sub(
            lambda m: b"<xmp:" + m[1] + b">" + moment.strftime("%Y-%m-%dT%H:%M:%S").encode() + b"Z</xmp:",
            data,
        )
    zero = b"0" * 32
    blank = _PDF_ID.sub(b"/ID [ <" + zero + b"> <" + zero + b"> ]", trailer)
    blank = _DOC_CHECKSUM.sub(b"/DocChecksum /" + zero, blank)
    identifier = hashlib.md5(_join(head, objects, blank), usedforsecurity=False).hexdigest().upper().encode()
    trailer = _PDF_ID.sub(b"/ID [ <" + identifier + b"> <" + identifier + b"> ]", trailer)
    trailer = _DOC_CHECKSUM.sub(b"/DocChecksum /" + identifier, trailer)
    return _join(head, objects, trailer)
