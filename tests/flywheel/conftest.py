from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCORER_DIR = HERE.parents[2] / "shared" / "scenarios"
for path in (HERE, SCORER_DIR):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
