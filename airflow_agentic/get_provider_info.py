"""Provider metadata. Airflow calls this on every CLI start: it imports nothing."""

from __future__ import annotations


def get_provider_info() -> dict:
    return {
        "package-name": "airflow-provider-agentic",
        "name": "Agentic MLOps",
        "description": "Self-driving ML flywheel for Airflow 3: data steward, drift monitoring, HPO, deployment "
        "and rollback as agents that plan with an LLM or offline rules, under guardrails and human approval.",
        "versions": ["0.1.0"],
        "connection-types": [
            {
                "connection-type": "agentic_llm",
                "hook-class-name": "airflow_agentic.hooks.llm.AgenticLLMHook",
                "hook-name": "Agentic LLM (OpenAI-compatible)",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port", "login"],
                    "relabeling": {"host": "Base URL", "password": "API key"},
                    "placeholders": {
                        "host": "https://api.openai.com/v1 (or http://localhost:11434/v1 for Ollama)",
                        "password": "sk-... (leave empty for local servers)",
                    },
                },
                "conn-fields": {
                    "model": {
                        "label": "Model",
                        "description": "Model name as the endpoint knows it, e.g. gpt-4o-mini, llama3.1:8b",
                        "schema": {"type": ["string", "null"], "default": "gpt-4o-mini"},
                    },
                    "temperature": {
                        "label": "Temperature",
                        "description": "Sampling temperature; 0 keeps decisions repeatable",
                        "schema": {"type": ["number", "null"], "default": 0, "minimum": 0, "maximum": 2},
                    },
                    "timeout": {
                        "label": "Timeout (seconds)",
                        "description": "Per request",
                        "schema": {"type": ["number", "null"], "default": 60, "minimum": 1},
                    },
                    "max_retries": {
                        "label": "Max retries",
                        "description": "On 429, 5xx, connection errors and time-outs (Retry-After is honoured)",
                        "schema": {"type": ["integer", "null"], "default": 3, "minimum": 0, "maximum": 10},
                    },
                },
            },
            {
                "connection-type": "mlflow",
                "hook-class-name": "airflow_agentic.hooks.mlflow.MLflowHook",
                "hook-name": "MLflow",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port"],
                    "relabeling": {"host": "Tracking URI", "login": "Username", "password": "Password"},
                    "placeholders": {"host": "http://mlflow.example.com:5000 (or sqlite:////path/mlflow.db)"},
                },
                "conn-fields": {
                    "ui_url": {
                        "label": "UI URL",
                        "description": "MLflow UI base URL for task links (default: the tracking URI when it is http)",
                        "schema": {"type": ["string", "null"]},
                    },
                    "registry_uri": {
                        "label": "Registry URI",
                        "description": "Model registry URI when it differs from the tracking URI",
                        "schema": {"type": ["string", "null"]},
                    },
                },
            },
            {
                "connection-type": "labelstudio",
                "hook-class-name": "airflow_agentic.hooks.labelstudio.LabelStudioHook",
                "hook-name": "Label Studio",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port", "login"],
                    "relabeling": {"host": "Label Studio URL", "password": "API token"},
                    "placeholders": {"host": "http://localhost:8080",
                                     "password": "legacy token or personal access token"},
                },
                "conn-fields": {
                    "timeout": {
                        "label": "Timeout (seconds)",
                        "description": "Per request to the Label Studio API",
                        "schema": {"type": ["number", "null"], "default": 30, "minimum": 1},
                    }
                },
            },
        ],
        "integrations": [
            {"integration-name": "Agentic LLM", "external-doc-url": "https://platform.openai.com/docs/api-reference",
             "tags": ["ai"]},
            {"integration-name": "Agentic drift monitoring", "external-doc-url": "https://airflow.apache.org/",
             "tags": ["ml"]},
            {"integration-name": "Agentic data steward", "external-doc-url": "https://greatexpectations.io/",
             "tags": ["ml"]},
            {"integration-name": "MLflow", "external-doc-url": "https://mlflow.org/docs/latest/", "tags": ["ml"]},
            {"integration-name": "Label Studio", "external-doc-url": "https://labelstud.io/guide/api", "tags": ["ml"]},
            {"integration-name": "Agentic MLOps", "external-doc-url": "https://optuna.org/", "tags": ["ml"]},
            {"integration-name": "Agentic continuous learning", "external-doc-url": "https://airflow.apache.org/",
             "tags": ["ml"]},
        ],
        "hooks": [
            {"integration-name": "Agentic LLM", "python-modules": ["airflow_agentic.hooks.llm"]},
            {"integration-name": "MLflow", "python-modules": ["airflow_agentic.hooks.mlflow"]},
            {"integration-name": "Label Studio", "python-modules": ["airflow_agentic.hooks.labelstudio"]},
        ],
        "operators": [
            {"integration-name": "Agentic LLM", "python-modules": ["airflow_agentic.operators.agent"]},
            {"integration-name": "Agentic drift monitoring", "python-modules": ["airflow_agentic.operators.monitoring"]},
            {"integration-name": "Agentic data steward", "python-modules": ["airflow_agentic.operators.steward"]},
            {"integration-name": "Label Studio", "python-modules": ["airflow_agentic.operators.annotation"]},
            {"integration-name": "Agentic MLOps", "python-modules": [
                "airflow_agentic.operators.training", "airflow_agentic.operators.hpo",
                "airflow_agentic.operators.deployment", "airflow_agentic.operators.rollback",
                "airflow_agentic.operators.cicd"]},
            {"integration-name": "Agentic continuous learning",
             "python-modules": ["airflow_agentic.operators.continuous"]},
        ],
        "extra-links": [
            "airflow_agentic.links.mlflow.MLflowRunLink",
            "airflow_agentic.links.mlflow.MLflowModelVersionLink",
            "airflow_agentic.links.agentic_ui.DecisionTraceLink",
            "airflow_agentic.links.agentic_ui.DriftReportLink",
        ],
        "sensors": [
            {"integration-name": "Agentic drift monitoring", "python-modules": ["airflow_agentic.sensors.drift"]},
            {"integration-name": "Label Studio", "python-modules": ["airflow_agentic.sensors.annotation"]},
        ],
        "triggers": [
            {"integration-name": "Agentic drift monitoring",
             "python-modules": ["airflow_agentic.triggers.drift", "airflow_agentic.triggers.drift_event"]},
            {"integration-name": "Label Studio", "python-modules": ["airflow_agentic.triggers.annotation"]},
        ],
        "notifications": ["airflow_agentic.notifications.webhook.WebhookNotifier"],
        "config": {
            "agentic": {
                "description": "airflow-agentic settings",
                "options": {
                    "llm_conn_id": {
                        "description": "Default agentic_llm connection for agents; empty uses the rule planner.",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "agentic_llm_default",
                        "default": "",
                    },
                    "journal_path": {
                        "description": "Durable-replay journals (an ObjectStoragePath URL).",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "s3://my-bucket/agentic/journal",
                        "default": "",
                    },
                    "approval_notifier": {
                        "description": "An http connection (Slack-style webhook or PagerDuty, see WebhookNotifier) "
                                       "told when an agent waits for approval and when one is rejected or times "
                                       "out. Empty: nobody is notified (the request is under Required Actions).",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "slack_approvals",
                        "default": "",
                    },
                    "retraining_deadline": {
                        "description": "Minutes after an agentic_retraining run is queued by which it should have "
                                       "promoted or rejected; later, the approval_notifier connection is told "
                                       "(Airflow DeadlineAlert). 0 turns the alert off.",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "30",
                        "default": "60",
                    },
                    "reports_path": {
                        "description": "Folder of backtest reports (airflow-agentic backtest --out DIR --report) that "
                                       "the Agentic page in the UI lists and serves. Empty: env AGENTIC_REPORTS_PATH, "
                                       "else $AIRFLOW_HOME/agentic/reports.",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "/data/agentic/reports",
                        "default": "",
                    },
                },
            }
        },
    }
