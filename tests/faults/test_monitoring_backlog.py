"""50 batches landing faster than the monitoring step runs: each run of ``MonitorBatchOperator`` scores what its
triggering ``agentic_clean_batch`` events name (Airflow hands one run every event since the previous run), so a few
runs take the whole backlog, some batches arrive out of order and some twice (a re-run steward emits its event
again). Every batch must be scored exactly once (one performance record, its labels joined once into the error
stream), none skipped. Real MLflow server, real committed steward outputs, the operator's own execute()."""

from __future__ import annotations

import json
from collections import Counter

import pytest

pytestmark = pytest.mark.integration

MODEL = "faults_monitor_backlog"
BATCHES = 50
ROWS = 60
# What each monitoring run is handed: out of order within a run, 7 and 20 delivered a second time later.
RUNS = [[1, 2, 3], [5, 4], [9, 6, 8, 7, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20],
        [7, 21, 20, *range(22, 36)], [*range(50, 35, -1)]]


class TaskInstance:
    """What the operator reads from ``context["ti"]``: identity (for the journal) and ``xcom_push``."""

    def __init__(self, run_id: str):
        self.dag_id, self.task_id, self.run_id = "agentic_monitoring", "monitor", run_id
        self.map_index, self.try_number, self.max_tries = -1, 1, 1
        self.xcoms: dict = {}

    def xcom_push(self, key, value):
        self.xcoms[key] = value


class AssetEvent:
    def __init__(self, extra):
        self.extra = extra


def test_50_batches_faster_than_monitoring_every_batch_scored_once(mlflow_server, tmp_path, fault):
    from airflow_agentic.config import mlflow_tracking
    from airflow_agentic.data import io as dio
    from airflow_agentic.flywheel.monitor import Watch
    from airflow_agentic.flywheel.store import MlflowStore
    from airflow_agentic.flywheel.streams import make_batch
    from airflow_agentic.flywheel.turn import LabelledBatch, first_champion
    from airflow_agentic.operators.monitoring import MonitorBatchOperator

    with mlflow_tracking(mlflow_server.url):
        first_champion({b: LabelledBatch.from_frame(make_batch("stable", seed=b), target="label",
                                                    id_column="row_id") for b in (0, 1)},
                       MlflowStore(MODEL, mlflow_server.url, profile_dir=f"file://{tmp_path}/profiles"),
                       run_key="faults-monitor-first")
    root = tmp_path / "data"
    events = {}
    for b in range(1, BATCHES + 1):  # all 50 land before the first monitoring run: committed steward outputs
        frame = make_batch("stable", rows=ROWS, seed=1000 + b, start_id=b * 10_000)
        folder = root / "clean" / f"batch_{b:04d}"
        dio.write_outputs(folder, {"clean.parquet": dio.frame_to_bytes(frame)}, rows={"clean.parquet": ROWS},
                          extra={"counts": {"input": ROWS, "clean": ROWS, "quarantined": 0}})
        events[b] = {"outputs": {"clean": str(folder / "clean.parquet")},
                     "counts": {"input": ROWS, "clean": ROWS, "quarantined": 0, "by_reason": {}}}

    for n, delivered in enumerate(RUNS):
        context = {"triggering_asset_events": {"agentic_clean_batch": [AssetEvent(events[b]) for b in delivered]},
                   "ti": TaskInstance(f"asset_triggered__faults_{n}")}
        context["task_instance"] = context["ti"]
        operator = MonitorBatchOperator(task_id="monitor", model_name=MODEL, data_root=str(root), mlflow_conn_id=None,
                                        journal_path=f"file://{tmp_path}/journal")
        decision = operator.execute(context)
        assert decision["batch"] == max(delivered), "the agent decided on an older batch than the newest delivered"
        assert json.loads((root / "reports" / f"batch_{max(delivered):04d}.json").read_text())["batch_number"] == \
            max(delivered)

    saved = json.loads((root / "monitoring" / f"watch-{MODEL}.json").read_text())
    watch = Watch.from_dict(saved.get("watch", saved))
    scored = Counter(r.batch for r in watch.records)
    joined = {int(b): s["n"] for b, s in watch.monitor.batches.items()}
    predicted = {int(b): s["predicted"] for b, s in watch.monitor.batches.items()}
    expected = set(range(1, BATCHES + 1))
    skipped = expected - set(scored)
    twice = {b: c for b, c in scored.items() if c > 1}
    joined_wrong = {b: n for b, n in joined.items() if n != ROWS}
    assert not skipped, f"batches never scored: {sorted(skipped)}"
    assert not twice, f"batches scored more than once: {twice}"
    assert set(joined) == expected and not joined_wrong, f"labels joined into the error stream: {joined_wrong}"
    assert set(predicted.values()) == {ROWS}, predicted
    assert watch.monitor.n_errors_total == BATCHES * ROWS
    assert not watch.pending
    assert len(list((root / "predictions").glob("*.parquet"))) == BATCHES
    fault.add(f"{BATCHES} batches landed before monitoring ran; {len(RUNS)} runs, out of order, batches 7 and 20 "
              f"delivered twice",
              f"every batch scored once: {len(scored)} records, labels of {len(joined)} batches joined once "
              f"({watch.monitor.n_errors_total} rows in the error stream), none pending",
              rows_in=BATCHES * ROWS)
