"""The Alembic migrations create exactly the schema the models describe, and can be undone."""

from __future__ import annotations

import uuid

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

import postroom.core.billing.models  # noqa: F401  (the core tables)
from postroom.core.db import make_engine
from postroom.core.migrate import alembic_config, current_revision, head_revision, upgrade
from postroom.core.models import Base
from postroom.embedded.postgres import PostgresProcess


def test_migrations_match_the_models_on_postgresql(postgres: PostgresProcess) -> None:
    url = postgres.create_database(f"migrations_{uuid.uuid4().hex[:8]}")
    upgrade(url)
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            assert current_revision(connection) == head_revision()
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


def test_migrations_downgrade_to_nothing_and_back(postgres: PostgresProcess) -> None:
    url = postgres.create_database(f"migrations_{uuid.uuid4().hex[:8]}")
    upgrade(url)
    command.downgrade(alembic_config(url), "base")
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            assert current_revision(connection) is None
    finally:
        engine.dispose()
    upgrade(url)
