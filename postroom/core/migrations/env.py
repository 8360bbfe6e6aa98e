"""Alembic environment: online migrations against the configured URL."""

from __future__ import annotations

from typing import Any, Literal

from alembic import context

import postroom.core.billing.models  # noqa: F401  (registers the core tables on Base.metadata)
from postroom.core.db import make_engine
from postroom.core.models import Base, UtcDateTime


def render_item(type_: str, obj: Any, _context: Any) -> str | Literal[False]:
    """Autogenerate plain SQLAlchemy types, so migrations do not import postroom's models."""
    if type_ == "type" and isinstance(obj, UtcDateTime):
        return "sa.DateTime(timezone=True)"
    return False


config = context.config
url = config.get_main_option("sqlalchemy.url")
if not url:
    raise RuntimeError("no database URL given to the migrations")

engine = make_engine(url)
try:
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
            render_item=render_item,
        )
        with context.begin_transaction():
            context.run_migrations()
finally:
    engine.dispose()
