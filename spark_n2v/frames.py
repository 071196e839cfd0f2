"""DataFrame transforms that several stages share."""

from __future__ import annotations

from typing import Iterator

import pyarrow as pa
from pyspark import StorageLevel
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from spark_n2v import columns as C


def rank_rows(df: DataFrame, order: list, name: str, partitions: int) -> tuple[DataFrame, int]:
    """(df with `name` = the row's 0-based rank in `order`, number of rows), without one partition
    holding them all.

    Range-partition and sort, count each partition, and add the counts of the partitions before:
    the rank depends on the rows only, not on how they were partitioned. Cached and materialised.
    """
    ranged = (df.repartitionByRange(partitions, *order).sortWithinPartitions(*order)
              .withColumn("_part", F.spark_partition_id())
              .persist(StorageLevel.MEMORY_AND_DISK))
    counts = dict(ranged.groupBy("_part").count().collect())  # one row per partition
    offsets, total = {}, 0
    for part in sorted(counts):
        offsets[part] = total
        total += counts[part]
    offset = F.element_at(F.create_map(*[F.lit(x) for kv in offsets.items() for x in kv]),
                          F.col("_part")) if offsets else F.lit(0)
    rank = F.row_number().over(Window.partitionBy("_part").orderBy(*order)) - 1
    ranked = (ranged.withColumn(name, (offset + rank).cast("long")).drop("_part")
              .repartition(partitions, name).persist(StorageLevel.MEMORY_AND_DISK))
    ranked.count()  # materialise before the range partitions are released
    ranged.unpersist()
    return ranked, total


def split_counts(table: DataFrame) -> dict[str, int]:
    """Rows per value of the split column (train, test) of an evaluation table."""
    counted = {r[C.SPLIT]: r["count"] for r in table.groupBy(C.SPLIT).count().collect()}  # 2 rows
    return {C.TRAIN: counted.get(C.TRAIN, 0), C.TEST: counted.get(C.TEST, 0)}


def partition_table(batches: Iterator[pa.RecordBatch]) -> pa.Table | None:
    """A task's whole partition (mapInArrow batches) as one table, or None if it is empty."""
    held = [b for b in batches if b.num_rows]
    return pa.Table.from_batches(held) if held else None
