"""Uploaded template versions: stored once, never changed."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, undefer

from postroom.core.models import TemplateUpload


class TemplateVersionConflict(Exception):
    """The template version exists with other content; a change needs a new version number."""


@dataclass(frozen=True, slots=True)
class UploadedVersion:
    """What an upload stores: identity, content hash and the sealed bundle."""

    template_id: str
    engine: str
    version: int
    document_type: str
    sha256: str
    bundle: bytes
    description: str | None


def store_template_upload(
    session: Session, upload: UploadedVersion, uploaded_by: str
) -> tuple[TemplateUpload, bool]:
    """Store a version; ``(row, created)``. The same content again is accepted, other content refused."""
    key = (upload.template_id, upload.engine, upload.version)
    existing = session.get(TemplateUpload, key)
    if existing is None:
        row = TemplateUpload(
            template_id=upload.template_id,
            engine=upload.engine,
            version=upload.version,
            document_type=upload.document_type,
            sha256=upload.sha256,
            bundle=upload.bundle,
            size_bytes=len(upload.bundle),
            description=upload.description,
            uploaded_by=uploaded_by,
        )
        try:
            with session.begin_nested():
                session.add(row)
            return row, True
        except IntegrityError:
            existing = session.get(TemplateUpload, key, populate_existing=True)
            assert existing is not None
    if existing.sha256 != upload.sha256:
        raise TemplateVersionConflict(
            f"template {upload.template_id} ({upload.engine}) version {upload.version} exists with other "
            "content; upload the change as a new version"
        )
    return existing, False


def find_template_uploads(
    session: Session, template_id: str, version: int | None, engine: str | None
) -> list[TemplateUpload]:
    """Uploaded versions of ``template_id``, bundles loaded: ``version``, or the newest per engine."""
    query = select(TemplateUpload).options(undefer(TemplateUpload.bundle))
    query = query.where(TemplateUpload.template_id == template_id)
    if engine is not None:
        query = query.where(TemplateUpload.engine == engine)
    if version is not None:
        query = query.where(TemplateUpload.version == version)
    else:
        newest = (
            select(TemplateUpload.engine, func.max(TemplateUpload.version).label("version"))
            .where(TemplateUpload.template_id == template_id)
            .group_by(TemplateUpload.engine)
            .subquery()
        )
        query = query.join(
            newest, (TemplateUpload.engine == newest.c.engine) & (TemplateUpload.version == newest.c.version)
        )
    return list(session.scalars(query))


def list_template_uploads(session: Session) -> list[TemplateUpload]:
    """Every uploaded version (without bundles), by id, engine and version."""
    query = select(TemplateUpload).order_by(
        TemplateUpload.template_id, TemplateUpload.engine, TemplateUpload.version
    )
    return list(session.scalars(query))
