"""An HTML page + PNG comparing backtest policies on one scenario: accuracy per batch for every policy found in sibling
output folders, drift scores, retrain / rollback markers and quarantined rows.

Accuracy here is computed from the scenario's labels over the rows that got a prediction (the project never reads the
ground truth of corrupted rows; the scorer does that).
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any


def _policy_runs(out_dir: Path) -> dict[str, Path]:
    runs = {}
    for folder in sorted(p for p in out_dir.parent.iterdir() if p.is_dir()):
        if (folder / "result.json").exists() and (folder / "predictions.parquet").exists():
            runs[folder.name] = folder
    return runs


def write_report(out_dir: str | Path, scenario_dir: str | Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    from airflow_agentic.flywheel.backtest import Scenario

    out_dir, scen = Path(out_dir), Scenario.open(scenario_dir)
    labels = pd.concat([scen.batch(i)[[scen.id_column, scen.target]].assign(batch=i)
                        for i in range(scen.warmup, len(scen))], ignore_index=True)
    labels = labels.rename(columns={scen.id_column: "row_id", scen.target: "label"}).drop_duplicates(["batch", "row_id"])
    rows: dict[str, Any] = {}
    fig, (ax_acc, ax_drift, ax_q) = plt.subplots(3, 1, figsize=(11, 8), sharex=True,
                                                 gridspec_kw={"height_ratios": [3, 1, 1]})
    this = None
    for name, folder in _policy_runs(out_dir).items():
        result = json.loads((folder / "result.json").read_text())
        pred = pd.read_parquet(folder / "predictions.parquet").drop_duplicates(["batch", "row_id"])
        merged = labels.merge(pred, on=["batch", "row_id"], how="inner").dropna(subset=["prediction"])
        acc = merged.assign(ok=merged["prediction"].astype(str) == merged["label"].astype(str)) \
            .groupby("batch")["ok"].mean()
        line, = ax_acc.plot(acc.index, acc.values, label=f"{result.get('policy', name)}", lw=1.4)
        versions = [b["model_version"] for b in result["batches"]]
        changes = [result["batches"][k + 1]["batch"] for k, (a, b) in enumerate(zip(versions, versions[1:]))
                   if a != b]
        for c in changes:
            ax_acc.axvline(c - 0.5, color=line.get_color(), alpha=0.35, ls="--")
        rollbacks = [b["batch"] for b in result["batches"] if "rolled_back" in b.get("actions", [])]
        for r in rollbacks:
            ax_acc.plot(r, acc.get(r, float("nan")), marker="v", color=line.get_color(), ms=9)
        rows[name] = {"policy": result.get("policy", name), "accuracy": float(acc.mean()) if len(acc) else None,
                      "retrains": len(changes), "rollbacks": len(rollbacks),
                      "wall_seconds": result.get("summary", {}).get("wall_seconds"),
                      "llm_calls": result.get("summary", {}).get("llm_calls")}
        if folder.resolve() == out_dir.resolve():
            this = result
    if this is not None:
        batches = [b["batch"] for b in this["batches"]]
        ax_drift.bar(batches, [b["drift"]["score"] for b in this["batches"]],
                     color=["tab:red" if b["drift"]["detected"] else "tab:gray" for b in this["batches"]])
        ax_q.bar(batches, [b.get("quarantined", 0) for b in this["batches"]], color="tab:orange")
    ax_acc.set_ylabel("accuracy (rows with a prediction)")
    ax_acc.legend(loc="lower left", fontsize=8)
    ax_acc.set_title(f"{scen.name}: accuracy per batch; dashed = model changed, triangle = rollback")
    ax_drift.set_ylabel("drift score")
    ax_q.set_ylabel("quarantined")
    ax_q.set_xlabel("batch")
    fig.tight_layout()
    png = out_dir / "report.png"
    fig.savefig(png, dpi=110)
    plt.close(fig)

    def fmt(value: Any) -> str:
        return "" if value is None else (f"{value:.4f}" if isinstance(value, float) else str(value))

    table = "".join("<tr>" + "".join(f"<td>{html.escape(fmt(r[k]))}</td>" for k in (
        "policy", "accuracy", "retrains", "rollbacks", "wall_seconds", "llm_calls")) + "</tr>" for r in rows.values())
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>backtest {html.escape(scen.name)}</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:4px 10px;border-bottom:1px solid #ddd}}</style></head>
<body><h1>Backtest: {html.escape(scen.name)}</h1>
<table><tr><th>policy</th><th>accuracy</th><th>model changes</th><th>rollbacks</th><th>wall s</th><th>LLM calls</th></tr>
{table}</table><p><img src="report.png" alt="accuracy per batch" style="max-width:100%"></p>
<p>Accuracy over rows with a prediction; the shared scorer also ignores rows the ground truth marks corrupted.</p>
</body></html>"""
    out = out_dir / "report.html"
    out.write_text(page)
    return out
