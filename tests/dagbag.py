"""Load a DAG from the test dags folder the way the DAG processor parses it (tests/conftest.py fills the folder)."""

from __future__ import annotations

import os


def load_dag(dag_id: str, file: str | None = None):
    """``file``: parse only that file of the folder (faster, and independent of the other test DAGs)."""
    from airflow.dag_processing.dagbag import DagBag

    folder = os.environ["AIRFLOW__CORE__DAGS_FOLDER"]
    bag = DagBag(dag_folder=os.path.join(folder, file) if file else folder)
    assert not bag.import_errors, bag.import_errors
    dag = bag.get_dag(dag_id)
    assert dag is not None, f"no DAG {dag_id} in the test dags folder: {sorted(bag.dag_ids)}"
    return dag
