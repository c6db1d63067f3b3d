-- Databases for the MLflow tracking server and shared Optuna studies, next to Airflow's own.
CREATE DATABASE mlflow OWNER airflow;
CREATE DATABASE optuna OWNER airflow;
