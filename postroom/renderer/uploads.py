"""Uploaded templates as a :class:`~postroom.renderer.templates.TemplateSource`.

Bundles live in the database, so every host sees the same versions; each host unpacks
a version once into its cache folder (atomically) and checks the content hash.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path

from postroom.core.db import Database
from postroom.core.template_uploads import UploadedVersion, find_template_uploads
from postroom.renderer.bundle import MANIFEST, TemplateBundle, unseal
from postroom.renderer.engine import Template, TemplateError
from postroom.renderer.templates import load_template


def materialise(sealed: bytes, cache: Path, template_id: str, engine: str, sha256: str) -> Template:
    """The template root of a sealed bundle below ``cache``, unpacked once, its content hash checked."""
    root = cache / f"{template_id}-{engine}-{hashlib.sha256(sealed).hexdigest()[:16]}"
    if not root.is_dir():
        cache.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=cache, prefix=".unpack-"))
        try:
            unseal(sealed, staging)
            staging.rename(root)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
            if not root.is_dir():  # another process won the race otherwise
                raise
    template = load_template(root, root / template_id / engine / MANIFEST)
    if template.sha256 != sha256:
        raise TemplateError(f"uploaded template {template_id} ({engine}) does not match its recorded hash")
    return template


def prepare_upload(
    bundle: TemplateBundle, shipped_root: Path, cache: Path
) -> tuple[UploadedVersion, Template]:
    """Seal an uploaded bundle with the current shared pieces and fonts; unpack it for a trial render."""
    manifest = bundle.manifest
    sealed = bundle.seal(shipped_root)
    with tempfile.TemporaryDirectory(dir=_mkdir(cache), prefix=".hash-") as folder:
        unseal(sealed, Path(folder))
        sha256 = load_template(Path(folder), Path(folder) / manifest.id / manifest.engine / MANIFEST).sha256
    upload = UploadedVersion(
        template_id=manifest.id,
        engine=manifest.engine,
        version=manifest.version,
        document_type=manifest.document_type,
        sha256=sha256,
        bundle=sealed,
        description=manifest.description,
    )
    return upload, materialise(sealed, cache, manifest.id, manifest.engine, sha256)


class UploadedTemplates:
    """Finds uploaded template versions in the database."""

    def __init__(self, db: Database, cache: Path) -> None:
        self.db = db
        self.cache = cache

    def find(self, template_id: str, version: int | None, engine: str | None) -> list[Template]:
        """Templates of ``template_id`` (one per engine), at ``version`` or the newest."""
        with self.db.session() as session:
            rows = [
                (row.engine, row.bundle, row.sha256)
                for row in find_template_uploads(session, template_id, version, engine)
            ]
        return [materialise(sealed, self.cache, template_id, eng, sha256) for eng, sealed, sha256 in rows]


def _mkdir(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder
