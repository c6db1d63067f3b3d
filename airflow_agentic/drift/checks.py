"""Checks on the arguments of the drift entry points, and the error for a batch that cannot be compared.

Imports nothing else of the package, so every drift module (profile included) can use it.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any, Sequence

import numpy as np

CORRECTIONS = ("bh", "bonferroni", "none")
KS_METHODS = ("auto", "exact", "asymp")


class DriftInputError(ValueError):
    """The batch cannot be compared with the profile (missing column, empty batch, unparsable column)."""

    def __init__(self, message: str, column: str | None = None, suggestion: str | None = None):
        super().__init__(message)
        self.column = column
        self.suggestion = suggestion


def check_probability(name: str, value: Any) -> float:
    """A significance level or threshold: a real number strictly between 0 and 1."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a number strictly between 0 and 1, got {value!r}")
    value = float(value)
    if not (math.isfinite(value) and 0.0 < value < 1.0):
        raise ValueError(f"{name} must be strictly between 0 and 1, got {value!r}")
    return value


def check_positive_int(name: str, value: Any, *, minimum: int = 1, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_choice(name: str, value: Any, choices: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"unknown {name} {value!r}; choose one of {', '.join(map(str, choices))}")
    return value


def check_column_list(name: str, columns: Any) -> list[str] | None:
    """None, or a non-empty list of distinct column names (a bare string is a mistake, not a list of letters)."""
    if columns is None:
        return None
    if isinstance(columns, (str, bytes)) or not isinstance(columns, (list, tuple, set, frozenset)) and not hasattr(
            columns, "__iter__"):
        raise ValueError(f"{name} must be a list of column names, got {type(columns).__name__} {columns!r}")
    names = list(columns)
    if not names:
        raise ValueError(f"{name} is empty: name at least one column (or pass None for all)")
    bad = [c for c in names if not isinstance(c, str)]
    if bad:
        raise ValueError(f"{name} must hold column names (str), got {bad[:5]!r}")
    dup = sorted(c for c, k in Counter(names).items() if k > 1)
    if dup:
        raise ValueError(f"{name} names column(s) more than once: {dup}")
    return names


def check_unique_columns(frame: Any, what: str = "batch") -> None:
    """Duplicate labels make ``frame[name]`` a DataFrame: say so, naming them, before anything trips over it."""
    labels = [str(c) for c in getattr(frame, "columns", [])]
    if len(set(labels)) != len(labels):
        dup = sorted(c for c, k in Counter(labels).items() if k > 1)
        raise DriftInputError(f"the {what} has duplicate column names: {dup}; rename or drop them first",
                              column=dup[0])
