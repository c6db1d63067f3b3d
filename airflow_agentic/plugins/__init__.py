"""The Airflow UI plugin: the flywheel page under /agentic, a navigation entry, and the URLs other parts link to."""

from __future__ import annotations
