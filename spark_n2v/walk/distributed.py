"""The distributed engine: node2vec's second-order walks step by step as DataFrame joins, for graphs
that fit no executor.

Prepare: the ids are indexed by rank, duplicates merged and self-loops dropped in Spark, and the
adjacency (one row per node with out-edges: sorted neighbour indices and cumulative normalised
weights) is hash-partitioned by node and cached, so that each step shuffles only the walkers.

Each iteration moves every live walker one node:
  phase A: walkers grouped by `cur` meet one copy of adjacency(cur); candidates are drawn and most
           are decided there (`kernels.propose_batches`);
  phase B: only when q != 1, walkers grouped by `prev` meet adjacency(prev), which answers "is
           prev -> x an edge?" for the undecided candidates (`kernels.resolve_batches`).
Grouping walkers by node keeps memory O(|E| + walkers): a hub's list is joined once per step, not
once per walker. Every `checkpoint_interval` steps the walkers are written to Parquet and read back,
which cuts the lineage and is a resume point; the walks are assembled from these chunks at the end.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import ClassVar, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.pandas.types import from_arrow_schema

from spark_n2v import columns as C
from spark_n2v.config import EdgeInput, WalkConfig
from spark_n2v.frames import rank_rows
from spark_n2v.io.edges import EdgeTable
from spark_n2v.progress import StepProgress, describe
from spark_n2v.record import ResumePoints
from spark_n2v.walk import kernels
from spark_n2v.walk.engines import Engine, PreparedGraph, default_partitions
from spark_n2v.walk.graph import GraphStats, row_cumulative

log = logging.getLogger(__name__)

_PROPOSAL = from_arrow_schema(kernels.PROPOSAL_SCHEMA)
_RESOLVED = from_arrow_schema(kernels.RESOLVED_SCHEMA)
_STATE = [C.WALK_ID, C.PREV, C.CUR, C.STEP, C.ATTEMPT, C.DONE]
_RESUME_STATE = "_walk.json"  # the chunks written so far: where a rerun resumes


class DistributedEngine(Engine):
    name = "distributed"

    def prepare(self, spark: SparkSession, table: EdgeTable, edges: EdgeInput, cfg: WalkConfig
                ) -> DistributedGraph:
        return prepare(table, edges.directed, edges.weighted, default_partitions(spark, cfg))


@dataclass(frozen=True)
class DistributedGraph(PreparedGraph):
    """ids: (node, id) for node in 0..V-1; adjacency: (node, nbrs, cum), partitioned by node."""

    engine: ClassVar[str] = DistributedEngine.name
    ids: DataFrame
    adjacency: DataFrame
    partitions: int
    stats: GraphStats

    def write_walks(self, spark: SparkSession, cfg: WalkConfig, walks_dir: str, work_dir: str
                    ) -> None:
        law = kernels.StepLaw(cfg.return_p, cfg.inout_q, cfg.seed,
                              symmetric=not self.stats.directed)
        # The loop's shuffles are explicit repartitions by node, which adaptive execution cannot
        # coalesce; re-planning every stage of every step only adds latency (measured: ~25% of a
        # small graph's walk time), so it is off for the loop and restored after.
        adaptive = spark.conf.get("spark.sql.adaptive.enabled")
        spark.conf.set("spark.sql.adaptive.enabled", "false")
        try:
            chunks = _iterate(spark, self, cfg, law, work_dir)
        finally:
            spark.conf.set("spark.sql.adaptive.enabled", adaptive)
        describe(spark, "spark-n2v walk: assemble and write walks")
        assemble(spark, chunks, self.ids).write.mode("overwrite").parquet(walks_dir)

    def release(self) -> None:
        self.adjacency.unpersist()
        self.ids.unpersist()


# --- prepare -----------------------------------------------------------------------------------

def index_ids(edges: DataFrame, partitions: int) -> tuple[DataFrame, int]:
    """Number the distinct ids 0..V-1 in sort order (their rank, so walks do not depend on the
    partitioning). Returns (node, id) hash-partitioned by node and cached, and V."""
    ids = edges.select(F.col(C.SRC).alias(C.ID)).union(edges.select(F.col(C.DST).alias(C.ID)))
    indexed, total = rank_rows(ids.distinct(), [F.col(C.ID)], C.NODE, partitions)
    return indexed.select(C.NODE, C.ID), total


def _cumulative(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """mapInArrow body: (node, nbrs, weights) -> (node, nbrs, cum)."""
    for batch in batches:
        weights = batch.column("_weights")
        offsets = weights.offsets.to_numpy().astype(np.int64)
        offsets -= offsets[0]
        flat = pc.list_flatten(weights).to_numpy(zero_copy_only=False)
        yield pa.RecordBatch.from_arrays(
            [batch.column(C.NODE), batch.column(C.NBRS),
             pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)),
                                      pa.array(row_cumulative(flat, offsets)))],
            names=[C.NODE, C.NBRS, C.CUM])


def prepare(table: EdgeTable, directed: bool, weighted: bool, partitions: int
            ) -> DistributedGraph:
    """Checked edges (src, dst, weight; ids in the input's type) -> the prepared graph."""
    edges = table.edges
    ids, num_nodes = index_ids(edges, partitions)
    raw = edges.select(F.col(C.SRC).alias("_src_id"), F.col(C.DST).alias("_dst_id"), C.WEIGHT)
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
                     F.col("_e." + C.WEIGHT).alias("_weights")))
    if weighted:
        adjacency = lists.mapInArrow(_cumulative, f"{C.NODE} long, {C.NBRS} array<long>, "
                                                  f"{C.CUM} array<double>")
    else:
        adjacency = lists.select(C.NODE, C.NBRS, F.lit(None).cast("array<double>").alias(C.CUM))
    adjacency = adjacency.repartition(partitions, C.NODE).persist(StorageLevel.MEMORY_AND_DISK)
    with_out_edges = adjacency.count()
    merged.unpersist()
    stats = GraphStats.of(table, num_nodes, num_edges, num_nodes - with_out_edges, directed,
                          weighted)
    return DistributedGraph(ids, adjacency, partitions, stats)


# --- the step loop ---------------------------------------------------------------------------

def start_walkers(ids: DataFrame, num_nodes: int, cfg: WalkConfig) -> DataFrame:
    """num_walks walkers per node; walk_id = repetition * V + node, so ids never depend on layout."""
    reps = ids.sparkSession.range(cfg.num_walks).withColumnRenamed("id", "_rep")
    return ids.crossJoin(reps).select(
        (F.col("_rep") * num_nodes + F.col(C.NODE)).alias(C.WALK_ID),
        F.lit(-1).cast("long").alias(C.PREV), F.col(C.NODE).alias(C.CUR),
        F.lit(0).alias(C.STEP), F.lit(0).alias(C.ATTEMPT),
        F.lit(cfg.walk_length == 1).alias(C.DONE), F.array(F.col(C.NODE)).alias(C.SEG))


def _solo() -> F.Column:
    """A group key of its own for walkers that need no adjacency (never equal to a node index)."""
    return -2 - F.col(C.WALK_ID)


def _meet_adjacency(walkers: DataFrame, key: F.Column, graph: DistributedGraph, kernel, schema: T.StructType
                    ) -> DataFrame:
    """Group walkers by `key`, join each group with that node's adjacency once, run the kernel.

    Both sides are hash-partitioned by node into the same number of partitions, so the join
    shuffles only the walkers.
    """
    grouped = (walkers.withColumn(C.GROUP, key)
               .repartition(graph.partitions, C.GROUP)
               .groupBy(C.GROUP)
               .agg(F.collect_list(F.struct(*walkers.columns)).alias(C.WALKERS)))
    joined = grouped.join(graph.adjacency, grouped[C.GROUP] == graph.adjacency[C.NODE], "left")
    return joined.select(C.GROUP, C.NBRS, C.CUM, C.WALKERS).mapInArrow(kernel, schema)


def _advance(moved: DataFrame, walk_length: int) -> DataFrame:
    """Apply each walker's chosen next node (or keep it in place for another round)."""
    has_next = F.col(C.NEXT) >= 0
    step = F.col(C.STEP) + has_next.cast("int")
    return moved.select(
        C.WALK_ID,
        F.when(has_next, F.col(C.CUR)).otherwise(F.col(C.PREV)).alias(C.PREV),
        F.when(has_next, F.col(C.NEXT)).otherwise(F.col(C.CUR)).alias(C.CUR),
        step.alias(C.STEP),
        F.when(has_next, F.lit(0)).otherwise(F.col(C.ATTEMPT)).alias(C.ATTEMPT),
        (F.col(C.DONE) | (step >= walk_length - 1)).alias(C.DONE),
        F.when(has_next, F.concat(C.SEG, F.array(C.NEXT))).otherwise(F.col(C.SEG)).alias(C.SEG))


def step(walkers: DataFrame, graph: DistributedGraph, law: kernels.StepLaw, walk_length: int
         ) -> DataFrame:
    """One iteration: every live walker moves one node (or retries, rarely, next iteration)."""
    key_a = F.when(F.col(C.DONE), _solo()).otherwise(F.col(C.CUR))
    proposed = _meet_adjacency(walkers, key_a, graph,
                               functools.partial(kernels.propose_batches, law), _PROPOSAL)
    if law.needs_edge_test:
        key_b = F.when(F.size(C.QUERY_X) > 0, F.col(C.PREV)).otherwise(_solo())
        moved = _meet_adjacency(proposed, key_b, graph,
                                functools.partial(kernels.resolve_batches, law), _RESOLVED)
    else:
        moved = proposed.select(*_STATE, C.SEG, C.NEXT)
    return _advance(moved, walk_length)


def _iterate(spark: SparkSession, graph: DistributedGraph, cfg: WalkConfig, law: kernels.StepLaw,
             work_dir: str) -> list[str]:
    """Step all walkers to the end; returns the chunk folders written at the lineage cuts.

    Each step is materialised (cached, counted) before the next: the count is the progress line's
    live walkers, and the next step reads the cache instead of recomputing the chain. Each lineage
    cut is also a resume point (record.ResumePoints): a rerun over the same work folder continues
    from the last chunk written. Walks depend only on (seed, walk_id, step), so they come out the
    same.
    """
    points = ResumePoints(spark, work_dir, _RESUME_STATE)
    done = points.done()
    chunks = [points.path(part["name"]) for part in done]
    if done:
        iteration, live_count = done[-1]["iteration"], done[-1]["live_count"]
        log.info("walk: resuming after step %d of %d (%s walkers still walking)", iteration,
                 cfg.walk_length - 1, f"{live_count:,}")
        if iteration >= cfg.walk_length - 1 and live_count == 0:
            return chunks
        live = _reread(spark, chunks[-1])
    else:
        iteration = 0
        live = start_walkers(graph.ids, graph.stats.nodes, cfg)
        live_count = graph.stats.nodes * cfg.num_walks if cfg.walk_length > 1 else 0
    progress = StepProgress(cfg.walk_length - 1, first=iteration)
    cached: DataFrame | None = None
    while True:
        if cfg.walk_length > 1:
            describe(spark, f"spark-n2v walk: step {iteration + 1} of {cfg.walk_length - 1}")
            live = step(live, graph, law, cfg.walk_length).persist(StorageLevel.MEMORY_AND_DISK)
            moving, live_count = live_count, live.where(~F.col(C.DONE)).count()
            if cached is not None:
                cached.unpersist()
            cached = live
            iteration += 1
            progress.step(iteration, moving, live_count)
        final = iteration >= cfg.walk_length - 1
        if not final and iteration % cfg.checkpoint_interval:
            continue
        describe(spark, f"spark-n2v walk: write the walkers after step {iteration}")
        path = points.save(f"chunk-{len(chunks):05d}",
                           live.withColumn(C.SEG_START, F.col(C.STEP) - F.size(C.SEG) + 1),
                           iteration=iteration, live_count=live_count)
        chunks.append(path)
        if cached is not None:
            cached.unpersist()
            cached = None
        live = _reread(spark, path)
        # Past walk_length - 1 iterations only walkers whose candidates were all rejected remain.
        if final and live_count == 0:
            break
    return chunks


def _reread(spark: SparkSession, chunk: str) -> DataFrame:
    """The walkers still walking after a chunk, with empty segments (the chunk holds their nodes)."""
    return spark.read.parquet(chunk).where(~F.col(C.DONE)).select(
        *_STATE, F.array().cast("array<long>").alias(C.SEG))


def assemble(spark: SparkSession, chunks: list[str], ids: DataFrame) -> DataFrame:
    """Concatenate each walk's segments in step order and map node indices back to ids."""
    pieces = spark.read.parquet(*chunks).select(
        C.WALK_ID, C.SEG_START, F.posexplode(C.SEG).alias("_pos", C.NODE))
    located = pieces.select(C.WALK_ID, (F.col(C.SEG_START) + F.col("_pos")).alias("_at"), C.NODE)
    named = located.join(ids, C.NODE).select(C.WALK_ID, F.struct("_at", C.ID).alias("_s"))
    return (named.groupBy(C.WALK_ID)
            .agg(F.array_sort(F.collect_list("_s")).alias("_s"))
            .select(C.WALK_ID, F.col("_s." + C.ID).alias(C.WALK)))
