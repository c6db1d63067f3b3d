"""NannyML CBPE on the streams benchmarks/estimation_error.py wrote; runs in this folder's venv, not the project's.

Usage: .venv/bin/python run_cbpe.py DATA_DIR
DATA_DIR/<stream>/reference.parquet  y_pred_proba, y_pred, y_true   (the champion's held-out rows)
DATA_DIR/<stream>/analysis.parquet   batch, y_pred_proba, y_pred      (every later batch, 1000 rows a batch, in order)
Writes DATA_DIR/nannyml.json {stream: {batch: estimated accuracy}}.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path


def main() -> int:
    import nannyml as nml
    import pandas as pd

    warnings.filterwarnings("ignore")  # "number of chunks is too low" for the one-chunk reference, and deprecations
    root = Path(sys.argv[1])
    out: dict[str, dict[str, float]] = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        reference = pd.read_parquet(folder / "reference.parquet")
        analysis = pd.read_parquet(folder / "analysis.parquet")
        sizes = analysis.groupby("batch", sort=False).size()
        if sizes.nunique() != 1:
            raise ValueError(f"{folder.name}: batches must have equal sizes for chunk_size, got {sizes.unique()}")
        estimator = nml.CBPE(y_pred_proba="y_pred_proba", y_pred="y_pred", y_true="y_true",
                             problem_type="classification_binary", metrics=["accuracy"],
                             chunk_size=int(sizes.iloc[0]))
        estimator.fit(reference)
        frame = estimator.estimate(analysis.drop(columns=["batch"])).filter(period="analysis").to_df()
        values = frame[("accuracy", "value")].tolist()
        out[folder.name] = {str(b): float(v) for b, v in zip(sizes.index, values)}
    (root / "nannyml.json").write_text(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
