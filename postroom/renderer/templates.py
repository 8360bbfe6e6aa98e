"""The template folder: discovery, versions and content hashes.

Layout: ``templates/<template id>/<engine>/template.toml`` plus the files it uses,
shared pieces in ``templates/_shared/<engine>/`` and fonts in ``templates/fonts/``.
A template's hash covers its own folder, the engine's shared folder and the fonts,
because a change to any of them changes the documents it produces.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from functools import cached_property
from pathlib import Path

from postroom.renderer.engine import Template, TemplateError

_REF = re.compile(r"^(?P<id>[a-z0-9_]+)(@(?P<version>[0-9]+))?$")


def tree_sha256(folders: list[Path]) -> str:
    """SHA-256 over the relative paths and contents of every file below ``folders``."""
    digest = hashlib.sha256()
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            digest.update(path.relative_to(folder.parent).as_posix().encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


class TemplateStore:
    """Finds templates under ``root`` by id (``invoice``) or pinned id (``invoice@1``)."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    @property
    def fonts(self) -> Path:
        """Folder of the fonts every template may use."""
        return self.root / "fonts"

    @cached_property
    def _templates(self) -> dict[tuple[str, str], Template]:
        found: dict[tuple[str, str], Template] = {}
        for manifest in sorted(self.root.glob("*/*/template.toml")):
            template = self._load(manifest)
            found[(template.id, template.engine)] = template
        return found

    def _load(self, manifest: Path) -> Template:
        folder = manifest.parent
        try:
            meta = tomllib.loads(manifest.read_text(encoding="utf-8"))
            template_id, version, engine = str(meta["id"]), int(meta["version"]), str(meta["engine"])
            entry = folder / str(meta["entry"])
        except (KeyError, ValueError, tomllib.TOMLDecodeError) as error:
            raise TemplateError(
                f"{manifest.relative_to(self.root)} is not a valid manifest: {error}"
            ) from error
        if engine != folder.name or template_id != folder.parent.name:
            raise TemplateError(f"{manifest.relative_to(self.root)} must live in {template_id}/{engine}/")
        if not entry.is_file():
            raise TemplateError(f"{manifest.relative_to(self.root)}: entry file {entry.name} is missing")
        content_hash = tree_sha256([folder, self.root / "_shared" / engine, self.fonts])
        return Template(
            id=template_id,
            version=version,
            engine=engine,
            root=self.root,
            folder=folder,
            entry=entry,
            sha256=content_hash,
        )

    def resolve(self, ref: str, engine: str | None = None) -> Template:
        """The template named by ``ref``; ``engine`` picks one when several engines exist."""
        match = _REF.fullmatch(ref)
        if match is None:
            raise TemplateError(f"{ref!r} is not a template reference like 'invoice' or 'invoice@1'")
        candidates = [
            t for (tid, eng), t in self._templates.items() if tid == match["id"] and engine in (None, eng)
        ]
        if not candidates:
            raise TemplateError(
                f"no template {match['id']!r}" + (f" for engine {engine!r}" if engine else "")
            )
        template = sorted(candidates, key=lambda t: t.engine != "typst")[0]
        pinned = match["version"]
        if pinned is not None and int(pinned) != template.version:
            raise TemplateError(
                f"template {template.id} is at version {template.version}; version {pinned} is not available"
            )
        return template
