"""The data package's test helpers (tests/data/helpers.py), loaded under a unique module name."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location("steward_test_helpers", Path(__file__).resolve().parents[1] / "data" / "helpers.py")
helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(helpers)
