"""Loading this folder's DAG file on its own (tests/native/dags/agentic_native.py, copied into the dags folder)."""

from __future__ import annotations

import os
from pathlib import Path


def load_native_dag(dag_id: str):
    """A DAG of this folder's file, parsed on its own: the other files of the dags folder are other areas' work."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"]) / "agentic_native.py"))
    assert not bag.import_errors, bag.import_errors
    return bag.get_dag(dag_id)

