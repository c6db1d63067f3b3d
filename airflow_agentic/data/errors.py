"""Errors of the Data Steward: bad input and a deliberate stop, both before anything is written."""

from __future__ import annotations


class StewardInputError(ValueError):
    """A batch that cannot be read at all (missing, empty, truncated, wrong format or encoding)."""

    def __init__(self, path: object, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"cannot read batch {self.path}: {reason}")


class PipelineStopped(RuntimeError):
    """The steward decided the batch cannot be repaired (e.g. a required column is gone). Nothing was written."""

    def __init__(self, reason: str, findings: dict | None = None):
        self.reason = reason
        self.findings = findings or {}
        super().__init__(f"pipeline stopped: {reason}")


class InvariantViolation(AssertionError):
    """Rows would be lost or counted twice: refuse to write."""


class QuarantineNotApproved(PipelineStopped):
    """More than ``max_quarantine_share`` of the batch would be quarantined and no approved step allowed it.
    Nothing was written."""
