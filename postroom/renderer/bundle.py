"""Uploaded templates: a zip with a ``template.toml`` manifest, checked and sealed.

A bundle is sealed together with the engine's shared pieces and the fonts as they are
at upload time, so an uploaded version renders the same for as long as it exists, even
after the shipped shared layout changes.
"""

from __future__ import annotations

import io
import stat
import tomllib
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from postroom.renderer.engine import TemplateError

MAX_FILES = 200
MAX_BYTES = 20 * 1024 * 1024
MANIFEST = "template.toml"


class Manifest(BaseModel):
    """``template.toml``: identity and entry point of one template version."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9_]{1,64}$")
    version: int = Field(ge=1, le=1_000_000)
    engine: str = Field(pattern=r"^[a-z0-9_]{1,16}$")
    entry: str = Field(min_length=1, max_length=200)
    type: str | None = Field(
        default=None, pattern=r"^[a-z0-9_]{1,40}$", description="document type; the id if absent"
    )
    description: str | None = Field(default=None, max_length=500)

    @property
    def document_type(self) -> str:
        """The document type this template renders."""
        return self.type or self.id

    @classmethod
    def parse(cls, text: str, where: str) -> Manifest:
        """Read a manifest; ``where`` names it in errors."""
        try:
            return cls.model_validate(tomllib.loads(text))
        except (tomllib.TOMLDecodeError, ValidationError) as error:
            raise TemplateError(f"{where} is not a valid manifest: {error}") from None


@dataclass(frozen=True, slots=True)
class TemplateBundle:
    """The files of one uploaded template version, paths relative to its folder."""

    manifest: Manifest
    files: Mapping[str, bytes]

    @classmethod
    def from_zip(cls, data: bytes) -> TemplateBundle:
        """Read and check an uploaded zip: size limits, safe paths, a valid manifest and its entry file.

        The manifest may sit at the top of the zip or inside one top-level folder.
        """
        try:
            archive = zipfile.ZipFile(io.BytesIO(data))
        except zipfile.BadZipFile:
            raise TemplateError("the upload is not a zip file") from None
        members = [info for info in archive.infolist() if not info.is_dir()]
        if len(members) > MAX_FILES:
            raise TemplateError(f"the zip holds {len(members)} files; at most {MAX_FILES} are allowed")
        if sum(info.file_size for info in members) > MAX_BYTES:
            raise TemplateError(f"the zip unpacks to more than {MAX_BYTES // (1024 * 1024)} MiB")
        files: dict[str, bytes] = {}
        for info in members:
            path = PurePosixPath(info.filename)
            if path.is_absolute() or ".." in path.parts or "\\" in info.filename:
                raise TemplateError(f"zip entry {info.filename!r} leaves the template folder")
            if stat.S_ISLNK(info.external_attr >> 16):
                raise TemplateError(f"zip entry {info.filename!r} is a symbolic link")
            files[path.as_posix()] = archive.read(info)
        prefix = _common_folder(files)
        files = {name.removeprefix(prefix): content for name, content in files.items()}
        if MANIFEST not in files:
            raise TemplateError(f"the zip has no {MANIFEST} at its top")
        manifest = Manifest.parse(files[MANIFEST].decode("utf-8", errors="replace"), MANIFEST)
        if manifest.entry not in files:
            raise TemplateError(f"entry file {manifest.entry!r} named in {MANIFEST} is not in the zip")
        return cls(manifest=manifest, files=files)

    def seal(self, shipped_root: Path) -> bytes:
        """A self-contained zip laid out as a template root: template, ``_shared/<engine>``, ``fonts``."""
        manifest = self.manifest
        output = io.BytesIO()
        with zipfile.ZipFile(output, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, content in sorted(self.files.items()):
                archive.writestr(_stable(f"{manifest.id}/{manifest.engine}/{name}"), content)
            for folder in (shipped_root / "_shared" / manifest.engine, shipped_root / "fonts"):
                for path in sorted(p for p in folder.rglob("*") if p.is_file()):
                    archive.writestr(_stable(path.relative_to(shipped_root).as_posix()), path.read_bytes())
        return output.getvalue()


def unseal(sealed: bytes, into: Path) -> None:
    """Extract a sealed bundle (made by :meth:`TemplateBundle.seal`) into the folder ``into``."""
    with zipfile.ZipFile(io.BytesIO(sealed)) as archive:
        for info in archive.infolist():
            target = into / PurePosixPath(info.filename)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.read(info))


def _common_folder(files: Mapping[str, bytes]) -> str:
    tops = {name.split("/", 1)[0] for name in files}
    if len(tops) == 1 and all("/" in name for name in files):
        return next(iter(tops)) + "/"
    return ""


def _stable(name: str) -> zipfile.ZipInfo:
    # A fixed timestamp keeps the sealed zip identical for identical content.
    return zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
