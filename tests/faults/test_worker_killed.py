"""A worker killed (SIGKILL) in the middle of the Data Steward and in the middle of the promotion; the retry replays:
no row lost or duplicated (rows in = clean + quarantined, the quarantined rows as they arrived), one model version for
the run key, ``champion`` and ``previous`` right. The worker is a child process (worker.py) on a real MLflow server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fault_data import accounting

pytestmark = pytest.mark.integration

MODEL = "faults_worker_killed"
RUN_KEY = "agentic_retraining.continuous_learning.manual__faults"
WORKER = Path(__file__).with_name("worker.py")
ROWS = 400


def _landed_batch():
    """A drifted batch (the turn has something to promote) with the corruptions of issue 14 in it."""
    import pandas as pd

    from airflow_agentic.flywheel.streams import make_batch

    batch = make_batch("drifted", rows=ROWS, seed=103, start_id=30_000)
    batch.loc[0:4, "x2"] = -999.0
    batch.loc[5:9, "x3"] = np.nan
    batch.loc[10, "x4"] = np.inf
    x1 = batch["x1"].map(lambda v: f"{v:.6f}").astype(object)
    x1.iloc[11:14] = "garbage"
    batch["x1"] = x1
    return pd.concat([batch, batch.iloc[20:25]], ignore_index=True)


def _run(config: Path, kill_at: str | None) -> subprocess.CompletedProcess:
    env = {**os.environ, "FAULT_KILL_AT": kill_at or ""}
    return subprocess.run([sys.executable, str(WORKER), str(config)], env=env, capture_output=True, text=True,
                          timeout=600)


def test_worker_killed_mid_steward_and_mid_promotion(mlflow_server, tmp_path, fault):
    from mlflow import MlflowClient

    from airflow_agentic.config import mlflow_tracking
    from airflow_agentic.data import io as dio
    from airflow_agentic.data.pipeline import steward_profile
    from airflow_agentic.flywheel.store import MlflowStore
    from airflow_agentic.flywheel.streams import make_batch
    from airflow_agentic.flywheel.turn import LabelledBatch, first_champion

    url = mlflow_server.url
    profiles = f"file://{tmp_path}/profiles"
    warm = {b: LabelledBatch.from_frame(make_batch("stable", rows=ROWS, seed=100 + b, start_id=b * 10_000),
                                        target="label", id_column="row_id") for b in (0, 1)}
    with mlflow_tracking(url):
        v1 = first_champion(warm, MlflowStore(MODEL, url, profile_dir=profiles),
                            run_key="faults-worker-first").champion_after
    source = _landed_batch()
    landing = tmp_path / "landing" / "0003.parquet"
    landing.parent.mkdir()
    source.to_parquet(landing, index=False)
    profile = tmp_path / "profile.npz"
    profile.write_bytes(steward_profile(make_batch("stable", seed=7), "row_id").to_bytes())
    output = tmp_path / "clean" / "0003"
    config = tmp_path / "worker.json"
    config.write_text(json.dumps({"landing": str(landing), "profile": str(profile), "output": str(output),
                                  "model": MODEL, "tracking_uri": url, "profiles": profiles, "run_key": RUN_KEY,
                                  "rows": ROWS}))
    client = MlflowClient(url)

    def registry():
        model = client.get_registered_model(MODEL)
        return ({k: str(v) for k, v in model.aliases.items()},
                {v.version for v in client.search_model_versions(f"name = '{MODEL}'")})

    # -- 1. killed mid-steward: clean.parquet written, the folder not committed
    died = _run(config, "write:clean.parquet")
    assert died.returncode == -signal.SIGKILL, died.stderr[-3000:]
    with pytest.raises(dio.IncompleteOutput) as refused:
        dio.read_batch(output / "clean.parquet")
    assert registry() == ({"champion": v1}, {v1})
    fault.add("worker SIGKILLed mid-steward (clean.parquet written, manifest pending)",
              f"readers refuse the folder ({refused.value.reason}); registry untouched (champion v{v1})")

    # -- 2. killed mid-promotion: the steward finished, the version is registered, the champion not yet moved
    died = _run(config, "after_register")
    assert died.returncode == -signal.SIGKILL, died.stderr[-3000:]
    aliases, versions = registry()
    assert aliases["champion"] == v1, f"champion moved by a killed promotion: {aliases}"
    assert len(versions) == 2, f"the killed attempt registered {versions}"
    assert dio.read_manifest(output)["counts"]["input"] == len(source)  # the steward had committed this time
    fault.add("worker SIGKILLed mid-promotion (version registered, no alias moved yet)",
              f"steward output committed; champion still v{v1}; versions {sorted(versions)}; aliases {aliases}")

    # -- 3. the retry, nothing killed
    done = _run(config, None)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    aliases, versions_after = registry()
    v2 = result["turn"]["champion_after"]
    assert result["turn"]["status"] == "promoted" and v2 != v1
    assert versions_after == {v1, v2} == versions, "the retry registered a second version for its run key"
    tagged = [v.version for v in client.search_model_versions(f"name = '{MODEL}'")
              if (v.tags or {}).get("agentic.run_key") == RUN_KEY]
    assert tagged == [v2], f"versions of the run key: {tagged}"
    assert aliases["champion"] == v2 and aliases["previous"] == v1
    clean = dio.read_batch(output / "clean.parquet")
    quarantine = dio.read_batch(output / "quarantine.parquet").drop(columns=["_quarantine_reason"])
    counts = accounting(source.rename(columns={"x1": "x"}), clean.rename(columns={"x1": "x"}),
                        quarantine.rename(columns={"x1": "x"}))
    assert counts["silent_wrong"] == 0, counts
    assert counts["rows_in"] == counts["clean"] + counts["quarantined"] == result["steward"]["input"]
    fault.add("retry of the killed worker", f"steward replayed and committed; turn promoted v{v2} "
              f"(champion v{v2}, previous v{v1}); one version for the run key", **counts)
