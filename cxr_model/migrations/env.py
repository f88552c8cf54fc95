"""Alembic environment: migrates the database of ``cxr_model.db`` (see the README, "Database migrations").

The app passes its own connection (``config.attributes["connection"]``, inside the migration
lock); the ``alembic`` command line connects to ``-x url=...``, else ``CXR_DB_URL`` (the settings'
default SQLite file when unset).
"""
from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from cxr_model import audit, review_store  # noqa: F401  (their tables join db.Base.metadata)
from cxr_model.vitals import alert_store  # noqa: F401
from cxr_model.db import Base
from cxr_model.settings import get_settings

config = context.config
target_metadata = Base.metadata


def _run(connection) -> None:
    # render_as_batch: SQLite cannot ALTER most things; batch mode copies the table instead.
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True,
                      compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url") \
        or get_settings().db_url
    engine = create_engine(url)
    with engine.begin() as conn:
        _run(conn)
    engine.dispose()
