"""The drift timeline as a PNG, drawn by matplotlib on the API server (no JavaScript bundle to build or vendor).

Top: drift effect per feature (thin lines, the strongest few) and the share of drifted features (the report's
score, thick), red where a report's verdict was "drift detected". Bottom: accuracy on delayed labels. Vertical lines
mark retraining and rollback requests, promotions and rollbacks.
"""

from __future__ import annotations

import io
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow_agentic.plugins.ui.data import DriftPoint, Marker

MAX_FEATURE_LINES = 8
MARKER_STYLE = {  # kind -> (colour, line style)
    "request_retraining": ("tab:orange", "--"),
    "request_rollback": ("tab:purple", "--"),
    "promotion": ("tab:green", "-"),
    "rollback": ("tab:red", "-"),
}


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text)


def timeline_png(points: list[DriftPoint], markers: list[Marker]) -> bytes:
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure  # not pyplot: no global state shared between request threads

    fig = Figure(figsize=(11, 5.2), dpi=96, layout="constrained")
    ax_drift, ax_acc = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1.3]})
    if not points:
        ax_drift.text(0.5, 0.5, "no drift reports yet", ha="center", va="center", transform=ax_drift.transAxes)
    times = [_when(p.at) for p in points]

    strongest: dict[str, float] = {}
    for p in points:
        for column, effect in p.effects.items():
            strongest[column] = max(strongest.get(column, 0.0), effect or 0.0)
    for column in sorted(strongest, key=strongest.get, reverse=True)[:MAX_FEATURE_LINES]:
        ax_drift.plot(times, [p.effects.get(column) for p in points], lw=1, marker=".", alpha=0.8,
                      label=f"{column} effect")
    ax_drift.plot(times, [p.score for p in points], color="black", lw=2.2, marker="o", label="share drifted (score)")
    detected = [(t, p.score) for t, p in zip(times, points) if p.detected]
    if detected:
        ax_drift.scatter(*zip(*detected), s=90, color="tab:red", zorder=5, label="drift detected")
    ax_drift.set_ylabel("drift")
    ax_drift.grid(alpha=0.3)

    labelled = [(t, p.accuracy) for t, p in zip(times, points) if p.accuracy is not None]
    if labelled:
        ax_acc.plot(*zip(*labelled), color="tab:blue", marker="o", lw=1.6, label="accuracy")
    else:
        ax_acc.text(0.5, 0.5, "no labels yet", ha="center", va="center", transform=ax_acc.transAxes)
    ax_acc.set_ylabel("accuracy")
    ax_acc.grid(alpha=0.3)

    shown: set[str] = set()
    for marker in markers:
        colour, style = MARKER_STYLE.get(marker.kind, ("tab:gray", ":"))
        for ax in (ax_drift, ax_acc):
            ax.axvline(_when(marker.at), color=colour, ls=style, lw=1.4, alpha=0.8,
                       label=marker.kind.replace("_", " ") if ax is ax_drift and marker.kind not in shown else None)
        shown.add(marker.kind)

    locator = AutoDateLocator()
    ax_acc.xaxis.set_major_locator(locator)
    ax_acc.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    ax_drift.legend(loc="upper left", fontsize=8, ncols=2, framealpha=0.85)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()
