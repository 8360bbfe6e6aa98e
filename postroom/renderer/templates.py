"""Templates: the shipped folder plus further sources (uploads), versions and content hashes.

Layout of a template root: ``<template id>/<engine>/template.toml`` plus the files it
uses, shared pieces in ``_shared/<engine>/`` and fonts in ``fonts/``. A template's hash
covers its own folder, the engine's shared folder and the fonts, because a change to
any of them changes the documents it produces.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Protocol

from postroom.renderer.bundle import MANIFEST, Manifest
from postroom.renderer.engine import Template, TemplateError

_REF = re.compile(r"^(?P<id>[a-z0-9_]+)(@(?P<version>[0-9]+))?$")
PREFERRED_ENGINE = "typst"


def tree_sha256(root: Path, folders: Sequence[Path]) -> str:
    """SHA-256 over the paths (relative to ``root``) and contents of every file below ``folders``."""
    digest = hashlib.sha256()
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            digest.update(path.relative_to(root).as_posix().encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def load_template(root: Path, manifest_path: Path) -> Template:
    """The template whose manifest is ``manifest_path`` inside the template root ``root``."""
    folder = manifest_path.parent
    where = manifest_path.relative_to(root).as_posix()
    manifest = Manifest.parse(manifest_path.read_text(encoding="utf-8"), where)
    if manifest.engine != folder.name or manifest.id != folder.parent.name:
        raise TemplateError(f"{where} must live in {manifest.id}/{manifest.engine}/")
    entry = folder / manifest.entry
    if not entry.is_file():
        raise TemplateError(f"{where}: entry file {manifest.entry} is missing")
    return Template(
        id=manifest.id,
        version=manifest.version,
        engine=manifest.engine,
        document_type=manifest.document_type,
        root=root,
        folder=folder,
        entry=entry,
        sha256=tree_sha256(root, [folder, root / "_shared" / manifest.engine, root / "fonts"]),
    )


def parse_ref(ref: str) -> tuple[str, int | None]:
    """``"invoice@2"`` → ``("invoice", 2)``; ``"invoice"`` → ``("invoice", None)``."""
    match = _REF.fullmatch(ref)
    if match is None:
        raise TemplateError(f"{ref!r} is not a template reference like 'invoice' or 'invoice@1'")
    return match["id"], int(match["version"]) if match["version"] else None


class TemplateSource(Protocol):
    """Somewhere else templates come from (uploads)."""

    def find(self, template_id: str, version: int | None, engine: str | None) -> list[Template]:
        """Templates of ``template_id`` (one per engine), at ``version`` or the newest."""
        ...


class TemplateStore:
    """Finds templates by id (``invoice``) or pinned id (``invoice@1``): shipped first, then other sources."""

    def __init__(self, root: Path, sources: Sequence[TemplateSource] = ()) -> None:
        self.root = root.resolve()
        self.sources = list(sources)

    @property
    def fonts(self) -> Path:
        """Folder of the fonts every shipped template may use."""
        return self.root / "fonts"

    @cached_property
    def _scan(self) -> tuple[dict[tuple[str, str], Template], dict[str, TemplateError]]:
        found: dict[tuple[str, str], Template] = {}
        broken: dict[str, TemplateError] = {}
        for manifest in sorted(self.root.glob(f"*/*/{MANIFEST}")):
            if manifest.parent.parent.name.startswith("_"):
                continue
            try:
                template = load_template(self.root, manifest)
            except TemplateError as error:
                # One broken template must not take the others down; it fails when it is asked for.
                broken[manifest.parent.parent.name] = error
                continue
            found[(template.id, template.engine)] = template
        return found, broken

    @property
    def shipped(self) -> dict[tuple[str, str], Template]:
        """The shipped templates by (id, engine), without broken ones."""
        return self._scan[0]

    @property
    def broken(self) -> dict[str, TemplateError]:
        """Why shipped template folders could not be loaded, by folder name."""
        return self._scan[1]

    def attach(self, source: TemplateSource) -> None:
        """Consult ``source`` for templates the shipped folder does not have."""
        self.sources.append(source)

    def resolve(self, ref: str, engine: str | None = None) -> Template:
        """The template named by ``ref``; ``engine`` picks one when several engines exist."""
        template_id, version = parse_ref(ref)
        shipped = [
            t for (tid, eng), t in self.shipped.items() if tid == template_id and engine in (None, eng)
        ]
        if shipped and version in (None, shipped[0].version):
            return _preferred(shipped)
        for source in self.sources:
            found = source.find(template_id, version, engine)
            if found:
                return _preferred(found)
        if template_id in self.broken:
            raise self.broken[template_id]
        if shipped:
            available = shipped[0].version
            raise TemplateError(
                f"template {template_id} is at version {available}; version {version} is not available"
            )
        raise TemplateError(f"no template {template_id!r}" + (f" for engine {engine!r}" if engine else ""))


def _preferred(templates: list[Template]) -> Template:
    return sorted(templates, key=lambda t: t.engine != PREFERRED_ENGINE)[0]
