"""A worker of the fault suite, run as a child process by test_worker_killed.py: the Data Steward on one landed batch
(output folder committed as a unit), then the continuous-learning turn on the clean rows (register and promote in
MLflow). ``FAULT_KILL_AT`` makes it SIGKILL itself at one point, as an OOM killer or a lost node would:

- ``write:<file>``: right after ``<file>`` of the output folder is written (the folder not yet committed);
- ``after_register``: the new version registered, no alias moved.

(A kill at the ``champion`` alias move itself is test_mlflow_killed.py's fault, with the registry killed.)

Usage: ``python worker.py <config.json>``; prints the turn's result as JSON on success."""

from __future__ import annotations

import json
import os
import signal
import sys


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no finally blocks, as a killed worker


def main(config: dict) -> dict:
    from airflow_agentic.config import mlflow_tracking
    from airflow_agentic.data import io as dio
    from airflow_agentic.data.findings import StewardConfig
    from airflow_agentic.data.pipeline import run_steward
    from airflow_agentic.flywheel.store import MlflowStore
    from airflow_agentic.flywheel.streams import make_batch
    from airflow_agentic.flywheel.turn import LabelledBatch, learn

    kill_at = os.environ.get("FAULT_KILL_AT", "")
    if kill_at.startswith("write:"):
        name, write = kill_at.split(":", 1)[1], dio.write_bytes_atomic

        def write_then_die(path, data, conn_id=None):
            written = write(path, data, conn_id)
            if str(path).endswith(f"/{name}"):
                die()
            return written

        dio.write_bytes_atomic = write_then_die

    steward = StewardConfig(id_column="row_id", drift=False, range_tolerance=3.0, max_quarantine_share=1.0)
    report = run_steward(config["landing"], config["profile"], config["output"], config=steward, validate="none")
    clean = dio.read_batch(f"{config['output']}/clean.parquet")

    batches = {b: LabelledBatch.from_frame(make_batch(kind, rows=config["rows"], seed=100 + b, start_id=b * 10_000),
                                           target="label", id_column="row_id")
               for b, kind in ((0, "stable"), (1, "stable"), (2, "drifted"))}
    batches[3] = LabelledBatch.from_frame(clean, target="label", id_column="row_id")
    store = MlflowStore(config["model"], config["tracking_uri"], profile_dir=config["profiles"])
    if kill_at == "after_register":
        register = store.register

        def register_then_die(*args, **kwargs):
            register(*args, **kwargs)
            die()

        store.register = register_then_die
    with mlflow_tracking(config["tracking_uri"]):
        result = learn({"kind": "drift", "since_batch": 2, "reason": "drift at batch 2"}, batches, store,
                       run_key=config["run_key"])
    return {"steward": report.counts, "turn": {k: v for k, v in result.to_dict().items() if k != "steps"}}


if __name__ == "__main__":
    with open(sys.argv[1]) as handle:
        print(json.dumps(main(json.load(handle)), default=str))
