"""One turn of the flywheel (`turn`) and the backtest driver (`backtest`). No Airflow; heavy imports load on use."""

from __future__ import annotations

__all__ = ["backtest", "report", "turn"]
