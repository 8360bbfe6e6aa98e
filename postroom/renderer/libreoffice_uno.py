"""UNO side of one pooled LibreOffice process; run by Debian's python3 (python3-uno), not the venv.

Started by :mod:`postroom.renderer.libreoffice` in a process group of its own, this script
starts ``soffice --headless --accept=pipe,...`` as its child, connects to it over UNO and then
answers one JSON request per line on stdin with one JSON reply per line on stdout:

* ``{"input": "/path/in.docx", "output": "/path/out.pdf", "pdf_version": 0}`` converts a
  document (``pdf_version`` is LibreOffice's ``SelectPdfVersion``: 0 plain, 3 PDF/A-3b) and
  answers ``{"ok": true}`` or ``{"ok": false, "error": "<exception type>"}``;
* ``{"quit": true}`` or the end of stdin terminates LibreOffice and the script.

Documents are loaded hidden, read-only, without updating links and without running macros.
Replies never carry exception messages, which may quote document content.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import uno  # type: ignore[import-not-found]
from com.sun.star.beans import PropertyValue  # type: ignore[import-not-found]

NO_UPDATE = 0  # com.sun.star.document.UpdateDocMode.NO_UPDATE
NEVER_EXECUTE = 0  # com.sun.star.document.MacroExecMode.NEVER_EXECUTE


def _props(**values: Any) -> tuple[Any, ...]:
    properties = []
    for name, value in values.items():
        prop = PropertyValue()
        prop.Name = name
        prop.Value = value
        properties.append(prop)
    return tuple(properties)


def _reply(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def _connect(office: subprocess.Popen[bytes], pipe: str, timeout: float) -> Any:
    local = uno.getComponentContext()
    resolver = local.ServiceManager.createInstanceWithContext("com.sun.star.bridge.UnoUrlResolver", local)
    deadline = time.monotonic() + timeout
    while True:
        try:
            context = resolver.resolve(f"uno:pipe,name={pipe};urp;StarOffice.ComponentContext")
            return context.ServiceManager.createInstanceWithContext("com.sun.star.frame.Desktop", context)
        except Exception:
            if office.poll() is not None or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _convert(desktop: Any, request: dict[str, Any]) -> None:
    document = desktop.loadComponentFromURL(
        Path(request["input"]).as_uri(),
        "_blank",
        0,
        _props(
            Hidden=True,
            ReadOnly=True,
            UpdateDocMode=NO_UPDATE,
            MacroExecutionMode=NEVER_EXECUTE,
            FilterName="MS Word 2007 XML",
        ),
    )
    if document is None:
        raise RuntimeError("document did not load")
    try:
        filter_data = uno.Any(
            "[]com.sun.star.beans.PropertyValue",
            _props(SelectPdfVersion=int(request["pdf_version"]), ExportBookmarks=False),
        )
        document.storeToURL(
            Path(request["output"]).as_uri(), _props(FilterName="writer_pdf_Export", FilterData=filter_data)
        )
    finally:
        document.close(True)


def main() -> int:
    """Start LibreOffice, connect, and serve conversion requests until stdin ends."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--soffice", required=True)
    parser.add_argument("--profile", required=True, help="file: URL of the private user profile")
    parser.add_argument("--pipe", required=True)
    parser.add_argument("--start-timeout", type=float, default=60.0)
    args = parser.parse_args()
    office = subprocess.Popen(
        [
            args.soffice,
            "--headless",
            "--invisible",
            "--nologo",
            "--norestore",
            "--nodefault",
            "--nolockcheck",
            f"-env:UserInstallation={args.profile}",
            f"--accept=pipe,name={args.pipe};urp;StarOffice.ComponentContext",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    desktop = None
    try:
        desktop = _connect(office, args.pipe, args.start_timeout)
        _reply({"ready": True})
        for line in sys.stdin:
            request = json.loads(line)
            if request.get("quit"):
                break
            try:
                _convert(desktop, request)
            except Exception as error:
                _reply({"ok": False, "error": type(error).__name__})
            else:
                _reply({"ok": True})
    finally:
        if desktop is not None:
            with contextlib.suppress(Exception):  # the process is killed below if it did not stop
                desktop.terminate()
        try:
            office.wait(timeout=10)
        except subprocess.TimeoutExpired:
            office.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
