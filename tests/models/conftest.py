"""Small mixed-type classification data for the model tests (numeric, string categories, integer codes, NaN)."""

from __future__ import annotations

import pytest


from model_data import make_frame  # noqa: E402


@pytest.fixture()
def frame():
    return make_frame()


# -- a real PostgreSQL server for the RDB storage test ---------------------------------------------------------------
import glob  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402


def _postgres_bin() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(os.path.realpath(found)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(candidates[-1]).parent if candidates else None


@pytest.fixture(scope="session")
def postgres_url():
    """initdb into a temporary directory, start on a free loopback port, create a database, yield its URL.

    Skipped only when no PostgreSQL binaries exist and CI is unset; in CI a missing server is a failure.
    """
    from servers import free_port

    bindir = _postgres_bin()
    if bindir is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL binaries (initdb/pg_ctl) not found and CI is set")
        pytest.skip("PostgreSQL binaries (initdb/pg_ctl) not found")
    root = Path(tempfile.mkdtemp(prefix="agentic-pg-"))
    data, port = root / "data", free_port()
    prefix: list[str] = []
    if os.geteuid() == 0:  # postgres refuses to run as root
        shutil.chown(root, "postgres", "postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
    subprocess.run(prefix + [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                             "--no-sync"], check=True, capture_output=True)
    subprocess.run(prefix + [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "pg.log"), "-w", "-o",
                             f"-h 127.0.0.1 -p {port} -k {root} -F", "start"], check=True, capture_output=True)
    try:
        import psycopg2

        deadline = time.monotonic() + 30
        while True:
            try:
                conn = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
                break
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        conn.autocommit = True
        conn.cursor().execute("CREATE DATABASE optuna")
        conn.close()
        yield f"postgresql://postgres@127.0.0.1:{port}/optuna"
    finally:
        subprocess.run(prefix + [str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"],
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
