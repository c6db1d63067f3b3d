"""Airflow notifications of airflow-agentic (imported by Airflow: nothing heavy here)."""
