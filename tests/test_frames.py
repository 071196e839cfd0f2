"""Shared DataFrame transforms."""

from __future__ import annotations

import pytest
from pyspark.sql import functions as F

from spark_n2v import frames


@pytest.mark.parametrize("one_task", [True, False])
def test_rank_rows_numbers_rows_in_order_whatever_the_partitioning(spark, monkeypatch, one_task):
    """Both ways of ranking (one task, or ranges) give each row its place in the order, from 0,
    the same for any partitioning of the input."""
    monkeypatch.setattr(frames, "RANK_IN_ONE_TASK", 10**9 if one_task else 0)
    rows = [(i % 7, f"n{(i * 7919) % 1000:03d}") for i in range(1000)]
    expected = {key: r for r, key in enumerate(sorted(rows, key=lambda x: (-x[0], x[1])))}
    for parts in (1, 5):
        df = spark.createDataFrame(rows, "count long, id string").repartition(parts)
        ranked, total = frames.rank_rows(df, [F.col("count").desc(), F.col("id")], "rank", 3)
        got = {(r["count"], r["id"]): r["rank"] for r in ranked.collect()}
        ranked.unpersist()
        assert total == 1000 and ranked.rdd.getNumPartitions() == 3
        assert got == expected
