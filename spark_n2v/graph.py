"""Prepare the graph once: index the ids, drop self-loops, merge duplicates, build the adjacency.

Walking never re-reads raw edges: it uses the adjacency (one row per node with out-edges: sorted
neighbour indices and cumulative normalised weights), hash-partitioned by node and cached so that
each walk step shuffles only the walkers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark import StorageLevel
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from spark_n2v import columns as C
from spark_n2v.io import EdgeTable


@dataclass(frozen=True)
class GraphStats:
    input_rows: int
    self_loops_dropped: int
    duplicates_merged: int
    nodes: int
    edges: int                 # undirected: distinct edges; directed: distinct arcs
    nodes_without_out_edges: int
    directed: bool
    weighted: bool

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class PreparedGraph:
    """ids: (node, id) for node in 0..V-1; adjacency: (node, nbrs, cum), partitioned by node."""

    ids: DataFrame
    adjacency: DataFrame
    partitions: int
    stats: GraphStats

    def release(self) -> None:
        self.adjacency.unpersist()
        self.ids.unpersist()


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


def index_ids(edges: DataFrame, partitions: int) -> tuple[DataFrame, int]:
    """Number the distinct ids 0..V-1 in sort order (their rank, so walks do not depend on the
    partitioning). Returns (node, id) hash-partitioned by node and cached, and V."""
    ids = edges.select(F.col("src").alias(C.ID)).union(edges.select(F.col("dst").alias(C.ID)))
    indexed, total = rank_rows(ids.distinct(), [F.col(C.ID)], C.NODE, partitions)
    return indexed.select(C.NODE, C.ID), total


def row_cumulative(weights: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Per-row cumulative normalised weights of a flat list of rows (row r is
    weights[offsets[r]:offsets[r + 1]]); the last entry of each row is exactly 1.0.

    Each row is summed on its own, left to right (as np.cumsum does), so a row's result does not
    depend on which rows share the array: both prepare paths get the same bits. One pass per
    position, over the rows still that long, so hubs cost passes but no per-row Python.
    """
    cum = np.array(weights, dtype=np.float64)
    starts, lengths = offsets[:-1], np.diff(offsets)
    rows = np.flatnonzero(lengths > 1)
    position = 1
    while len(rows):
        at = starts[rows] + position
        cum[at] += cum[at - 1]
        position += 1
        rows = rows[lengths[rows] > position]
    filled = lengths > 0
    ends = offsets[1:][filled] - 1
    cum /= np.repeat(cum[ends], lengths[filled])
    cum[ends] = 1.0
    return cum


def _cumulative(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """mapInArrow body: (node, nbrs, weights) -> (node, nbrs, cum)."""
    for batch in batches:
        weights = batch.column("weights")
        offsets = weights.offsets.to_numpy().astype(np.int64)
        offsets -= offsets[0]
        flat = pc.list_flatten(weights).to_numpy(zero_copy_only=False)
        yield pa.RecordBatch.from_arrays(
            [batch.column(C.NODE), batch.column(C.NBRS),
             pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)),
                                      pa.array(row_cumulative(flat, offsets)))],
            names=[C.NODE, C.NBRS, C.CUM])


def prepare(table: EdgeTable, directed: bool, weighted: bool, partitions: int) -> PreparedGraph:
    """Checked edges (src, dst, weight; ids in the input's type) -> the prepared graph."""
    edges = table.edges
    ids, num_nodes = index_ids(edges, partitions)
    raw = edges.select(F.col("src").alias("_src_id"), F.col("dst").alias("_dst_id"), C.WEIGHT)
    src_ids = ids.select(F.col(C.ID).alias("_src_id"), F.col(C.NODE).alias(C.SRC))
    dst_ids = ids.select(F.col(C.ID).alias("_dst_id"), F.col(C.NODE).alias(C.DST))
    indexed = raw.join(src_ids, "_src_id").join(dst_ids, "_dst_id").select(C.SRC, C.DST, C.WEIGHT)
    if not directed:  # one key per undirected edge, so (u, v) and (v, u) merge as duplicates
        indexed = indexed.select(F.least(C.SRC, C.DST).alias(C.SRC),
                                 F.greatest(C.SRC, C.DST).alias(C.DST), C.WEIGHT)
    kept = indexed.where(F.col(C.SRC) != F.col(C.DST))
    # Summing sorted weights makes the merged weight independent of row order (bit for bit).
    merged_weight = F.aggregate(F.array_sort(F.collect_list(C.WEIGHT)), F.lit(0.0),
                                lambda acc, w: acc + w) if weighted else F.lit(1.0)
    merged = (kept.groupBy(C.SRC, C.DST).agg(merged_weight.alias(C.WEIGHT))
              .persist(StorageLevel.MEMORY_AND_DISK))
    num_edges = merged.count()
    arcs = merged if directed else merged.union(
        merged.select(F.col(C.DST).alias(C.SRC), F.col(C.SRC).alias(C.DST), C.WEIGHT))
    lists = (arcs.groupBy(C.SRC)
             .agg(F.array_sort(F.collect_list(F.struct(C.DST, C.WEIGHT))).alias("_e"))
             .select(F.col(C.SRC).alias(C.NODE), F.col("_e." + C.DST).alias(C.NBRS),
                     F.col("_e." + C.WEIGHT).alias("weights")))
    if weighted:
        adjacency = lists.mapInArrow(_cumulative, f"{C.NODE} long, {C.NBRS} array<long>, "
                                                  f"{C.CUM} array<double>")
    else:
        adjacency = lists.select(C.NODE, C.NBRS, F.lit(None).cast("array<double>").alias(C.CUM))
    adjacency = adjacency.repartition(partitions, C.NODE).persist(StorageLevel.MEMORY_AND_DISK)
    with_out_edges = adjacency.count()
    merged.unpersist()
    stats = GraphStats(
        input_rows=table.rows, self_loops_dropped=table.self_loops,
        duplicates_merged=table.rows - table.self_loops - num_edges, nodes=num_nodes,
        edges=num_edges, nodes_without_out_edges=num_nodes - with_out_edges,
        directed=directed, weighted=weighted)
    return PreparedGraph(ids, adjacency, partitions, stats)
