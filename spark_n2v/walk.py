"""The walk loop: node2vec's second-order walks, step by step as DataFrame joins.

Each iteration moves every live walker one node:
  phase A: walkers grouped by `cur` meet one copy of adjacency(cur); candidates are drawn and most
           are decided there (`kernels.propose_batches`);
  phase B: only when q != 1, walkers grouped by `prev` meet adjacency(prev), which answers "is
           prev -> x an edge?" for the undecided candidates (`kernels.resolve_batches`).
Grouping walkers by node keeps memory O(|E| + walkers): a hub's list is joined once per step, not
once per walker. Every `checkpoint_interval` steps the walkers are written to Parquet and read back,
which cuts the lineage; the walks are assembled from these chunks at the end.
"""

from __future__ import annotations

import functools
import logging

from pyspark import Accumulator, StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_n2v import columns as C
from spark_n2v import kernels, local
from spark_n2v.config import EdgeInput, WalkConfig
from spark_n2v.errors import UserError
from spark_n2v.graph import PreparedGraph, prepare
from spark_n2v.io import EdgeTable, HadoopFiles
from spark_n2v.progress import StepProgress

log = logging.getLogger(__name__)

_WALKER_DDL = (f"{C.WALK_ID} long, {C.PREV} long, {C.CUR} long, {C.STEP} int, {C.ATTEMPT} int, "
               f"{C.DONE} boolean, {C.SEG} array<long>")
_PROPOSAL_DDL = (_WALKER_DDL + f", {C.NEXT} long, {C.QUERY_X} array<long>, "
                 f"{C.QUERY_U} array<double>, {C.FALLBACK} long")
_RESOLVED_DDL = _WALKER_DDL + f", {C.NEXT} long"
_STATE = [C.WALK_ID, C.PREV, C.CUR, C.STEP, C.ATTEMPT, C.DONE]
_WALK_STATE = "_walk.json"  # the chunks written so far: where a rerun resumes


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


def _meet_adjacency(walkers: DataFrame, key: F.Column, graph: PreparedGraph, kernel, ddl: str
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
    return joined.select(C.GROUP, C.NBRS, C.CUM, C.WALKERS).mapInArrow(kernel, ddl)


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


def step(walkers: DataFrame, graph: PreparedGraph, law: kernels.StepLaw, walk_length: int
         ) -> DataFrame:
    """One iteration: every live walker moves one node (or retries, rarely, next iteration)."""
    key_a = F.when(F.col(C.DONE), _solo()).otherwise(F.col(C.CUR))
    proposed = _meet_adjacency(walkers, key_a, graph,
                               functools.partial(kernels.propose_batches, law), _PROPOSAL_DDL)
    if law.needs_edge_test:
        key_b = F.when(F.size(C.QUERY_X) > 0, F.col(C.PREV)).otherwise(_solo())
        moved = _meet_adjacency(proposed, key_b, graph,
                                functools.partial(kernels.resolve_batches, law), _RESOLVED_DDL)
    else:
        moved = proposed.select(*_STATE, C.SEG, C.NEXT)
    return _advance(moved, walk_length)


def default_partitions(spark: SparkSession, cfg: WalkConfig) -> int:
    return cfg.partitions or 2 * spark.sparkContext.defaultParallelism


def choose_engine(table: EdgeTable, edges: EdgeInput, cfg: WalkConfig) -> str:
    """`local` or `distributed` as asked, or (auto) local when the graph fits --local-max-mb."""
    if cfg.engine == "local" and not local.supports(table):
        id_type = table.edges.schema["src"].dataType.simpleString()
        raise UserError(f"--engine local: node ids of type {id_type} are not supported there "
                        "(integers and strings are); use --engine auto or distributed")
    if cfg.engine != "auto":
        return cfg.engine
    fits = local.size_mb(table, edges.directed, edges.weighted) <= cfg.local_max_mb
    return "local" if fits and local.supports(table) else "distributed"


def prepare_graph(table: EdgeTable, edges: EdgeInput, cfg: WalkConfig, partitions: int
                  ) -> PreparedGraph | local.LocalGraph:
    """The prepared graph for the engine `choose_engine` picks (numpy CSR or Spark adjacency)."""
    if choose_engine(table, edges, cfg) == "local":
        return local.prepare(table, edges.directed, edges.weighted)
    return prepare(table, edges.directed, edges.weighted, partitions)


def engine_of(graph: PreparedGraph | local.LocalGraph) -> str:
    return "local" if isinstance(graph, local.LocalGraph) else "distributed"


def walk(spark: SparkSession, graph: PreparedGraph | local.LocalGraph, cfg: WalkConfig,
         work_dir: str, finished: Accumulator | None = None,
         walkers: tuple[int, int] | None = None) -> DataFrame:
    """Run the walks; returns (walk_id, walk) with node ids in the input's type. Both engines give
    the same walks for the same graph and seed.

    `work_dir` holds the chunks written at each lineage cut (distributed engine); the returned
    DataFrame reads them, so keep the folder until the walks are written. The local engine walks
    when the DataFrame is written, counting finished walks in `finished` if given, the walk ids
    in `walkers` ([start, stop), a resume batch) if given.
    """
    law = kernels.StepLaw(cfg.return_p, cfg.inout_q, cfg.seed, symmetric=not graph.stats.directed)
    if isinstance(graph, local.LocalGraph):
        return local.walk(spark, graph, cfg, law, default_partitions(spark, cfg), finished, walkers)
    # The loop's shuffles are explicit repartitions by node, which adaptive execution cannot
    # coalesce; re-planning every stage of every step only adds latency (measured: ~25% of a
    # small graph's walk time), so it is off for the loop and restored after.
    adaptive = spark.conf.get("spark.sql.adaptive.enabled")
    spark.conf.set("spark.sql.adaptive.enabled", "false")
    try:
        chunks = _iterate(spark, graph, cfg, law, work_dir)
    finally:
        spark.conf.set("spark.sql.adaptive.enabled", adaptive)
    return assemble(spark, chunks, graph.ids)


def _iterate(spark: SparkSession, graph: PreparedGraph, cfg: WalkConfig, law: kernels.StepLaw,
             work_dir: str) -> list[str]:
    """Step all walkers to the end; returns the chunk folders written at the lineage cuts.

    Each step is materialised (cached, counted) before the next: the count is the progress line's
    live walkers, and the next step reads the cache instead of recomputing the chain. Each lineage
    cut is also a resume point: `_walk.json` in work_dir lists the chunks written so far, and a
    rerun over the same work folder (same graph, same flags: io.OutputPath checks) continues from
    the last one. Walks depend only on (seed, walk_id, step), so the walks come out the same.
    """
    sc = spark.sparkContext
    files = HadoopFiles(spark, work_dir)
    state = files.read_json(f"{work_dir}/{_WALK_STATE}")
    if state:
        chunks, iteration, live_count = state["chunks"], state["iteration"], state["live_count"]
        log.info("walk: resuming after step %d of %d (%s walkers still walking)", iteration,
                 cfg.walk_length - 1, f"{live_count:,}")
        if iteration >= cfg.walk_length - 1 and live_count == 0:
            return chunks
        live = _reread(spark, chunks[-1])
    else:
        chunks, iteration = [], 0
        live = start_walkers(graph.ids, graph.stats.nodes, cfg)
        live_count = graph.stats.nodes * cfg.num_walks if cfg.walk_length > 1 else 0
    progress = StepProgress(cfg.walk_length - 1, first=iteration)
    cached: DataFrame | None = None
    while True:
        if cfg.walk_length > 1:
            sc.setJobDescription(f"spark-n2v walk: step {iteration + 1} of {cfg.walk_length - 1}")
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
        path = f"{work_dir}/chunk-{len(chunks):05d}"
        sc.setJobDescription(f"spark-n2v walk: write the walkers after step {iteration}")
        (live.withColumn(C.SEG_START, F.col(C.STEP) - F.size(C.SEG) + 1)
         .write.mode("overwrite").parquet(path))
        chunks.append(path)
        files.write_json(f"{work_dir}/{_WALK_STATE}", {
            "chunks": chunks, "iteration": iteration, "live_count": live_count})
        if cached is not None:
            cached.unpersist()
            cached = None
        live = _reread(spark, path)
        # Past walk_length - 1 iterations only walkers whose candidates were all rejected remain.
        if final and live_count == 0:
            break
    sc.setJobDescription(None)
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
