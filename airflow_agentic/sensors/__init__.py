"""Airflow sensors of airflow-agentic (imported by Airflow: nothing heavy here)."""
