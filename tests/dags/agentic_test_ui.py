"""Test DAGs for the UI plugin (tests/ui): the same small monitoring flow twice, so that a user may be allowed one
DAG and not the other. Each run scores a synthetic batch described by its conf with the real drift detector, then the
real MonitoringAgentOperator decides. Conf ``approval_for: "write"`` makes the agent ask a person before it acts,
so that run waits under Required Actions."""

from __future__ import annotations

from airflow.sdk import DAG, task

from airflow_agentic.operators.monitoring import MonitoringAgentOperator

ROWS = 400  # labelled rows per batch


def _score(conf: dict) -> dict:
    """Drift of a batch whose features x1 and x3 moved by ``shift``, and the champion's accuracy so far."""
    import numpy as np
    import pandas as pd

    from airflow_agentic.drift.detectors import detect_drift
    from airflow_agentic.drift.profile import ReferenceProfile

    batch, shift = int(conf.get("batch", 1)), float(conf.get("shift", 0.0))
    rng = np.random.default_rng(batch)

    def sample(n: int, moved: float) -> pd.DataFrame:
        return pd.DataFrame({"x1": rng.normal(moved, 1, n), "x2": rng.normal(0, 1, n),
                             "x3": rng.normal(moved / 2, 1, n)})

    reference = ReferenceProfile.from_frame(sample(2000, 0.0), sample_rows=0)
    report = detect_drift(reference, sample(800, shift), threads=1)
    accuracies = [float(a) for a in conf.get("accuracies", [0.9])]  # the champion's, batches 1..batch
    records = [{"batch": i, "version": "2", "rows": ROWS, "correct": round(a * ROWS)}
               for i, a in enumerate(accuracies, start=batch - len(accuracies) + 1)]
    return {"drift": report.to_dict(), "accuracy": accuracies[-1], "batch": batch,
            "performance": {"records": records, "champion": "2", "expected": {"accuracy": 0.9, "rows": ROWS}}}


for dag_id in ("agentic_ui_flywheel_a", "agentic_ui_flywheel_b"):
    with DAG(dag_id, schedule=None, catchup=False, tags=["agentic", "ui-test"]):

        @task(multiple_outputs=True)
        def score(**context) -> dict:
            return _score(context["dag_run"].conf)

        scored = score()
        MonitoringAgentOperator(
            task_id="monitor",
            drift_report=scored["drift"],
            performance=scored["performance"],
            batch=scored["batch"],
            approval_for=["{{ dag_run.conf.get('approval_for', 'destructive') }}"],
        )
