"""One turn of the flywheel (`turn`, `continuous`), the backtest driver (`backtest`) and the demo (`demo`, `streams`).
No Airflow imports (the demo drives Airflow over HTTP); heavy imports load on use."""

from __future__ import annotations

__all__ = ["backtest", "continuous", "demo", "report", "streams", "turn"]
