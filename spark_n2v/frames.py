"""DataFrame transforms that several stages share."""

from __future__ import annotations

from typing import Iterable, Iterator

import pyarrow as pa
from pyspark import StorageLevel
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from spark_n2v import columns as C


# Rows up to which rank_rows numbers them in one task: a small table's ranking by ranges costs ~10
# Spark jobs (range sampling, counts, each with AQE's stage jobs), seconds on a graph of thousands
# of nodes; one task sorts 2M rows in about a second.
RANK_IN_ONE_TASK = 2_000_000


def cached_count(df: DataFrame, partitions: int) -> tuple[DataFrame, int]:
    """(df cached, its number of rows): computed once, here. Cached as `partitions` partitions: an
    aggregate's 200 shuffle partitions would each be a task every time the cache is read (AQE does
    not coalesce a cached plan's partitions)."""
    df = df.coalesce(partitions).persist(StorageLevel.MEMORY_AND_DISK)
    return df, df.count()


def rank_rows(df: DataFrame, order: list, name: str, partitions: int,
              total: int | None = None) -> tuple[DataFrame, int]:
    """(df with `name` = the row's 0-based rank in `order`, number of rows), cached, in
    `partitions` partitions by rank. `order` must be a total order of the rows (ties would be
    ranked arbitrarily). `total`: df's rows when df comes from cached_count (it is released
    here).

    Up to RANK_IN_ONE_TASK rows, one task sorts and numbers them. Above, without one partition
    holding them all: range-partition and sort, count each partition, and add the counts of the
    partitions before. Either way the rank depends on the rows only, not on how they were
    partitioned.
    """
    if total is None:
        df, total = cached_count(df, partitions)
    if total <= RANK_IN_ONE_TASK:
        # one partition: monotonically_increasing_id is the row's position in it
        held = df
        ranked = (df.repartition(1).sortWithinPartitions(*order)
                  .withColumn(name, F.monotonically_increasing_id()))
    else:
        held = (df.repartitionByRange(partitions, *order).sortWithinPartitions(*order)
                .withColumn("_part", F.spark_partition_id()).persist(StorageLevel.MEMORY_AND_DISK))
        ranked = _rank_ranges(held, order, name)  # its counts materialise `held`
        df.unpersist()
    ranked = ranked.repartition(partitions, name).persist(StorageLevel.MEMORY_AND_DISK)
    ranked.count()  # materialise before what it is computed from is released
    held.unpersist()
    return ranked, total


def _rank_ranges(ranged: DataFrame, order: list, name: str) -> DataFrame:
    """Rows range-partitioned and sorted by `order` (partition number `_part`, cached) -> ranked:
    each partition's row number after the counts of the partitions before."""
    counts = dict(ranged.groupBy("_part").count().collect())  # one row per partition
    offsets, total = {}, 0
    for part in sorted(counts):
        offsets[part] = total
        total += counts[part]
    offset = F.element_at(F.create_map(*[F.lit(x) for kv in offsets.items() for x in kv]),
                          F.col("_part")) if offsets else F.lit(0)
    rank = F.row_number().over(Window.partitionBy("_part").orderBy(*order)) - 1
    return ranged.withColumn(name, (offset + rank).cast("long")).drop("_part")


def split_counts(table: DataFrame) -> dict[str, int]:
    """Rows per value of the split column (train, test) of an evaluation table."""
    counted = {r[C.SPLIT]: r["count"] for r in table.groupBy(C.SPLIT).count().collect()}  # 2 rows
    return {C.TRAIN: counted.get(C.TRAIN, 0), C.TEST: counted.get(C.TEST, 0)}


def count_ids(tables: Iterable[pa.Table]) -> Iterator[pa.RecordBatch]:
    """(id, count) of the ids in the tables' `id` columns: each table counted as it comes, then
    the counts summed (a task holds its counts, not its tokens)."""
    counts = [t.group_by(C.ID).aggregate([(C.ID, "count")]) for t in tables if t.num_rows]
    if counts:
        total = pa.concat_tables(counts).group_by(C.ID).aggregate([(f"{C.ID}_count", "sum")])
        yield from total.rename_columns([C.ID, C.COUNT]).to_batches()


def partition_table(batches: Iterator[pa.RecordBatch]) -> pa.Table | None:
    """A task's whole partition (mapInArrow batches) as one table, or None if it is empty."""
    held = [b for b in batches if b.num_rows]
    return pa.Table.from_batches(held) if held else None
