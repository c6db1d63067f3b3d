"""How ContinuousLearningOperator numbers the batches it is given: by the number in each batch's name (as the
monitoring step numbers them), by order when the names carry none (an annotation sensor's training.parquet), never
two batches under one number."""

from __future__ import annotations

import pytest

from airflow_agentic.operators.continuous import batch_name, numbered_locations


def test_batches_are_numbered_by_name_then_by_order():
    assert numbered_locations(["s3://b/clean/0003/clean.parquet", "s3://b/clean/0004/clean.parquet"]) == {
        3: "s3://b/clean/0003/clean.parquet", 4: "s3://b/clean/0004/clean.parquet"}
    assert numbered_locations('["file:///x/labels/run_a/training.parquet"]') == {
        0: "file:///x/labels/run_a/training.parquet"}
    assert numbered_locations({"7": "file:///x/7.parquet"}) == {7: "file:///x/7.parquet"}
    assert batch_name("file:///d/clean/batch_0007/clean.parquet") == "batch_0007"
    with pytest.raises(ValueError, match="two batches numbered 3"):
        numbered_locations(["s3://b/a/0003.parquet", "s3://b/b/0003.parquet"])
