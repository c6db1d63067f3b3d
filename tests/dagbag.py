"""Load a DAG from the test dags folder the way the DAG processor parses it (tests/conftest.py fills the folder)."""

from __future__ import annotations

import os


def load_dag(dag_id: str):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    assert not bag.import_errors, bag.import_errors
    dag = bag.get_dag(dag_id)
    assert dag is not None, f"no DAG {dag_id} in the test dags folder: {sorted(bag.dag_ids)}"
    return dag
