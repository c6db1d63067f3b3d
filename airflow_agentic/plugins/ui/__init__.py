"""The flywheel page: FastAPI routes (app.py), the readers of Airflow's and MLflow's data (data.py), the drift chart
(chart.py) and the Jinja2 templates."""

from __future__ import annotations
