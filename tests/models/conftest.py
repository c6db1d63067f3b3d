"""Small mixed-type classification data for the model tests (numeric, string categories, integer codes, NaN)."""

from __future__ import annotations

import pytest


from model_data import make_frame  # noqa: E402


@pytest.fixture()
def frame():
    return make_frame()


# -- a real PostgreSQL server for the RDB storage test ---------------------------------------------------------------
import os  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402


@pytest.fixture(scope="session")
def postgres_url():
    """A fresh cluster (scripts/stack.py's, as `./run stack` starts it) on a free loopback port with an ``optuna``
    database; yields its URL.

    Skipped only when no PostgreSQL binaries exist and CI is unset; in CI a missing server is a failure.
    """
    from servers import free_port, stack_script

    stack = stack_script()
    if stack.postgres_bindir() is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL binaries (initdb/pg_ctl) not found and CI is set")
        pytest.skip("PostgreSQL binaries (initdb/pg_ctl) not found")
    root = Path(tempfile.mkdtemp(prefix="agentic-pg-"))
    postgres = stack.Postgres(root, free_port()).init()
    proc = subprocess.Popen(postgres.command(), stdout=(root / "pg.log").open("ab"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        postgres.wait_ready(30, proc)
        postgres.create_databases(["optuna"])
        yield postgres.url("optuna")
    finally:
        postgres.stop(proc)
        shutil.rmtree(root, ignore_errors=True)
