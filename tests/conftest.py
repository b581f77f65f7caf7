"""Shared fixtures.

Databases: every store test runs on SQLite and on PostgreSQL. The PostgreSQL server is started by
``scripts/test`` (which exports ``DOCKYARD_TEST_PG_URL``); a missing server is an error, not a skip.
"""

from __future__ import annotations

import os
import uuid

import pytest
import sqlalchemy as sa


def _pg_admin_url() -> str:
    url = os.environ.get("DOCKYARD_TEST_PG_URL")
    if not url:
        raise RuntimeError(
            "DOCKYARD_TEST_PG_URL is not set: run the suite with scripts/test, which starts PostgreSQL"
        )
    return url


@pytest.fixture(scope="session")
def pg_url():
    """A throw-away PostgreSQL database for this test session, dropped at the end."""
    admin_url = _pg_admin_url()
    name = f"dockyard_t_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    yield url
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """A SQLAlchemy URL of an empty database, once per backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    base = request.getfixturevalue("pg_url")
    # one schema-less database per session; each test gets a fresh database for isolation
    name = f"dockyard_t_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = sa.engine.make_url(base).set(database=name).render_as_string(hide_password=False)
    request.addfinalizer(lambda: _drop(base, name))
    return url


def _drop(base: str, name: str) -> None:
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()
