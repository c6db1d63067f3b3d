"""The fault-injection suite (issue 14): each test injects a real fault (a killed MLflow server, S3 answering 5xx, a
killed worker, a burst of reports, batches outrunning the monitoring step) against real parts and checks the promise.

Each test records what it injected and what happened through the ``fault`` fixture; the table is printed at the end
of the session (``pytest_terminal_summary``), nothing is written into the repository."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

_ROWS: list[dict] = []
_OUTCOMES: dict[str, str] = {}


class FaultRecord:
    """One line of the table per injected fault: what, where, what happened, the row accounting, and how many
    results were wrong without an error (each test asserts that number is 0 before it records it)."""

    def __init__(self, test: str):
        self.test = test

    def add(self, fault: str, outcome: str, *, rows_in: int | None = None, clean: int | None = None,
            quarantined: int | None = None, silent_wrong: int = 0) -> None:
        _ROWS.append({"test": self.test, "fault": fault, "outcome": outcome, "rows_in": rows_in, "clean": clean,
                      "quarantined": quarantined, "silent_wrong": silent_wrong})


@pytest.fixture()
def fault(request) -> FaultRecord:
    return FaultRecord(request.node.name)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if "faults" in str(item.path) and (report.when == "call" or report.failed or report.skipped):
        _OUTCOMES[item.name] = report.outcome


def _cell(value) -> str:
    return "" if value is None else str(value)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not _ROWS and not _OUTCOMES:
        return
    lines = ["| # | test | fault injected | outcome | rows in | clean | quarantined | silent wrong | result |",
             "|---|---|---|---|---|---|---|---|---|"]
    for n, row in enumerate(_ROWS, 1):
        lines.append(f"| {n} | {row['test']} | {row['fault']} | {row['outcome']} | {_cell(row['rows_in'])} | "
                     f"{_cell(row['clean'])} | {_cell(row['quarantined'])} | {row['silent_wrong']} | "
                     f"{_OUTCOMES.get(row['test'], '?')} |")
    recorded = {row["test"] for row in _ROWS}
    for name, result in _OUTCOMES.items():
        if name not in recorded:
            lines.append(f"| - | {name} | (nothing recorded) | | | | | | {result} |")
    terminalreporter.write_sep("=", "fault-injection report")
    for line in lines:
        terminalreporter.write_line(line)
