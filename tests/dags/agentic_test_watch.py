"""Test DAGs for where the monitoring step keeps its watch (tests/monitoring/test_watch_state.py): two DAGs that
monitor the same model and Asset, as a second monitoring DAG or a backfill would."""

from __future__ import annotations

import os
import subprocess
import sys

from airflow.sdk import DAG

from airflow_agentic.operators.monitoring import MonitorBatchOperator


class MonitorWithAnotherWriter(MonitorBatchOperator):
    """Test only: between loading the watch and saving it, another run of the other DAG monitors a batch of its own
    and saves first (``dag_run.conf["meanwhile"]`` names that batch). The two writers really interleave, against
    the same metadata database."""

    def on_finish(self, context, run):
        meanwhile = (context["dag_run"].conf or {}).get("meanwhile")
        if meanwhile:
            code = ("import sys; from dagbag import load_dag; "
                    "dag = load_dag('agentic_test_watch_state_other', 'agentic_test_watch.py'); "
                    "run = dag.test(run_conf={'batches': [sys.argv[1]]}); assert run.state == 'success', run.state")
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}  # the tests' helpers
            done = subprocess.run([sys.executable, "-c", code, meanwhile], env=env, capture_output=True, text=True,
                                  timeout=300)
            assert done.returncode == 0, done.stderr[-3000:]
        return super().on_finish(context, run)


for dag_id in ("agentic_test_watch_state", "agentic_test_watch_state_other"):
    with DAG(dag_id, schedule=None, catchup=False, render_template_as_native_obj=True):
        MonitorWithAnotherWriter(task_id="monitor", clean_batches="{{ dag_run.conf['batches'] }}")
