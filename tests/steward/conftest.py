"""Fixtures of the steward / annotation area: batch files, a moto S3 server, a real Label Studio on loopback."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from servers import REPO, free_port

_spec = importlib.util.spec_from_file_location("steward_test_helpers", REPO / "tests" / "data" / "helpers.py")
helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(helpers)

LS_VENV = REPO / ".cache" / "labelstudio-venv"
LS_SEED = REPO / ".cache" / "labelstudio-seed"  # a set-up data dir: a restart takes seconds, a fresh one ~30 s
LS_USER, LS_PASSWORD = "steward-tests@example.com", "steward-tests-pw"
LS_TOKEN = "5f1e0c0ffee0ddba11ab1e5eed5a1ad5eeded0c0"  # preset legacy token (40 hex)


from dagbag import load_dag  # noqa: E402,F401 - kept for old imports


@pytest.fixture()
def steward_files(tmp_path):
    """A reference profile, a corrupted batch and a truncated one, on the local disk."""
    profile = helpers.make_profile()
    profile_path = tmp_path / "reference.npz"
    profile.save(str(profile_path))
    batch = helpers.corrupted_batch(400)
    batch_path = tmp_path / "landing" / "batch.parquet"
    batch_path.parent.mkdir()
    batch.to_parquet(batch_path, index=False)
    broken = tmp_path / "landing" / "broken.parquet"
    broken.write_bytes(batch.to_parquet(index=False)[:-40])
    return {"profile": profile_path, "batch": batch_path, "frame": batch, "broken": broken, "root": tmp_path}


@pytest.fixture(scope="module")
def s3_server():
    boto3 = pytest.importorskip("boto3")
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing", aws_secret_access_key="testing",
                          region_name="us-east-1")
    client.create_bucket(Bucket="lake")
    old = os.environ.get("AIRFLOW_CONN_AWS_STEWARD_TEST")
    os.environ["AIRFLOW_CONN_AWS_STEWARD_TEST"] = json.dumps({
        "conn_type": "aws", "login": "testing", "password": "testing",
        "extra": {"endpoint_url": endpoint, "region_name": "us-east-1"}})
    yield client
    if old is None:
        os.environ.pop("AIRFLOW_CONN_AWS_STEWARD_TEST", None)
    server.stop()


def _install_label_studio() -> Path:
    """Label Studio pins its own Django: it lives in a venv of its own under .cache, created once (about 70 s)."""
    exe = LS_VENV / "bin" / "label-studio"
    if exe.exists():
        return exe
    python = shutil.which("python3") or shutil.which("python")
    try:
        subprocess.run([python, "-m", "venv", str(LS_VENV)], check=True, capture_output=True, text=True, timeout=120)
        subprocess.run([str(LS_VENV / "bin" / "pip"), "install", "-q", "label-studio"], check=True,
                       capture_output=True, text=True, timeout=900)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        shutil.rmtree(LS_VENV, ignore_errors=True)
        tail = (getattr(exc, "stderr", "") or str(exc))[-800:]
        pytest.skip(f"label-studio could not be installed into {LS_VENV}: {tail}")
    return exe


class LabelStudioServer:
    def __init__(self, exe: Path, data_dir: Path, port: int):
        self.exe, self.data_dir, self.port = exe, data_dir, port
        self.url = f"http://127.0.0.1:{port}"
        self.token = LS_TOKEN
        self.proc: subprocess.Popen | None = None
        self.log = data_dir.parent / "label-studio.log"

    def start(self, timeout: float = 240.0) -> "LabelStudioServer":
        env = {**os.environ, "LABEL_STUDIO_BASE_DATA_DIR": str(self.data_dir), "LABEL_STUDIO_USERNAME": LS_USER,
               "LABEL_STUDIO_PASSWORD": LS_PASSWORD, "LABEL_STUDIO_USER_TOKEN": LS_TOKEN,
               "LABEL_STUDIO_LATEST_VERSION_CHECK": "false", "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
               "PATH": f"{self.exe.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        for key in ("VIRTUAL_ENV", "PYTHONPATH", "DJANGO_SETTINGS_MODULE"):
            env.pop(key, None)
        self.proc = subprocess.Popen(
            [str(self.exe), "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", str(self.port),
             "--enable-legacy-api-token"],
            env=env, stdout=self.log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"label-studio exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            try:  # the exact port: a busy one would be silently replaced by the next free one
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as r:
                    if json.loads(r.read()).get("status") == "UP":
                        return self
            except Exception:  # noqa: BLE001 - keep polling
                pass
            time.sleep(1)
        self.stop()
        raise TimeoutError(f"label-studio not healthy on {self.url} after {timeout}s:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)

    def conn_json(self) -> str:
        return json.dumps({"conn_type": "labelstudio", "host": self.url, "password": self.token})


@pytest.fixture(scope="session")
def labelstudio(tmp_path_factory):
    """A real Label Studio server on loopback for the session, with a preset legacy API token."""
    exe = _install_label_studio()
    data_dir = tmp_path_factory.mktemp("labelstudio") / "data"
    if LS_SEED.exists():
        shutil.copytree(LS_SEED, data_dir)
    server = LabelStudioServer(exe, data_dir, free_port()).start()
    old = os.environ.get("AIRFLOW_CONN_LABELSTUDIO_TEST")
    os.environ["AIRFLOW_CONN_LABELSTUDIO_TEST"] = server.conn_json()
    yield server
    if old is None:
        os.environ.pop("AIRFLOW_CONN_LABELSTUDIO_TEST", None)
    server.stop()
    if not LS_SEED.exists():
        tmp_seed = LS_SEED.with_name(f"{LS_SEED.name}.tmp-{os.getpid()}")
        shutil.copytree(data_dir, tmp_seed)
        try:
            tmp_seed.rename(LS_SEED)
        except OSError:
            shutil.rmtree(tmp_seed, ignore_errors=True)
