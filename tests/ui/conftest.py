"""One real Airflow (FAB auth manager, the plugin loaded) and one real MLflow for the UI tests, seeded once
(what is seeded: ui_seed.py).

The slow parts overlap: the database migration runs while MLflow starts, the components boot while the registry is
seeded.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time

import pytest
from ui_seed import DAG_A, MODEL, RUNS, TEST_DAG_FILE, WAITING, seed_fleet, seed_registry


log = logging.getLogger("ui_stack")


@pytest.fixture(scope="session")
def ui_stack(tmp_path_factory, request):
    from ui_stack import FabAirflowStack

    started = time.monotonic()

    def phase(name: str) -> None:
        log.info("ui_stack: %s after %.0f s", name, time.monotonic() - started)

    home = tmp_path_factory.mktemp("ui-airflow")
    dags = home / "dags"
    dags.mkdir()
    shutil.copy(TEST_DAG_FILE, dags / TEST_DAG_FILE.name)
    reports = home / "reports"
    # The test DAGs' monitoring names no model: they serve `[agentic] model_name`, the seeded one.
    stack = FabAirflowStack(home, dags, readable_dag_id=DAG_A, extra_env={"AGENTIC_REPORTS_PATH": str(reports),
                                                                           "AIRFLOW__AGENTIC__MODEL_NAME": MODEL})
    stack.reports = reports

    failures: list[BaseException] = []

    def boot_and_run() -> None:  # the DAG runs need no MLflow: they go while the registry is seeded
        try:
            stack.prepare().launch().wait_ready()
            phase("Airflow up")
            stack.runs = {name: (dag_id, stack.trigger(dag_id, conf)) for name, (dag_id, conf) in RUNS.items()}
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test thread below
            failures.append(exc)

    booting = threading.Thread(target=boot_and_run, daemon=True)
    booting.start()
    try:
        mlflow_server = request.getfixturevalue("mlflow_server")
        phase("MLflow up")
        seed_registry(mlflow_server.url)
        seed_fleet(mlflow_server.url)
        stack.mlflow_url = mlflow_server.url
        phase("registry seeded")
        booting.join()
        if failures:
            raise failures[0]
        # The plugin finds MLflow the way tasks do (airflow_agentic.config): here through the `mlflow_default`
        # connection, which the API server reads from its database at each request.
        stack.api("POST", "/connections", json={"connection_id": "mlflow_default", "conn_type": "mlflow",
                                                "host": mlflow_server.url}).raise_for_status()
        for name, (dag_id, run_id) in stack.runs.items():
            if name in WAITING:
                stack.wait_task_state(dag_id, run_id, "monitor", "awaiting_input", timeout=240)
            else:
                state = stack.wait_run(dag_id, run_id, timeout=240)
                assert state == "success", stack.task_log(dag_id, run_id, "monitor")[-3000:]
        phase("DAG runs done")
        yield stack
    except BaseException:
        print(stack.logs())
        raise
    finally:
        stack.stop()
