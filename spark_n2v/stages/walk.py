"""`spark-n2v walk`: edges -> walks table (walk_id, walk).

The engine is chosen (walk.engines.choose) and runs behind the engine interface; `run`, `linkpred`
and `tune` walk through the same functions.
"""

from __future__ import annotations

import dataclasses
import logging

from pyspark.sql import SparkSession

from spark_n2v.config import WalkConfig
from spark_n2v.io.edges import EdgeSource
from spark_n2v.progress import describe
from spark_n2v.record import RunRecord
from spark_n2v.stages.stage import Context, Stage
from spark_n2v.walk import store
from spark_n2v.walk.engines import PreparedGraph, choose, default_partitions
from spark_n2v.walk.starts import Starts
from spark_n2v.walk.store import GraphStore

log = logging.getLogger(__name__)


def prepare(spark: SparkSession, edges: EdgeSource, cfg: WalkConfig, work_dir: str,
            record: RunRecord, since: float | None = None, keep_edges: str | None = None
            ) -> PreparedGraph:
    """Edges -> the graph store in work_dir/store (kept there: a rerun over the same work, or
    another walk of it, prepares nothing), opened by the engine that fits; recorded (reading
    included in the prepare time, and what the stage did `since`, if given). keep_edges: a
    folder to write the checked edges to (update.state.EDGES), read back for the store."""
    with record.timed("prepare", since):
        path = f"{work_dir}/store"
        graph_store = GraphStore.open(spark, path)
        if graph_store is None:
            describe(spark, "spark-n2v prepare: read and check edges")
            table = edges.read(spark)
            if keep_edges:  # written before the store, which says prepare is done
                table.edges.write.mode("overwrite").parquet(keep_edges)
                table = dataclasses.replace(table, edges=spark.read.parquet(keep_edges))
            describe(spark, "spark-n2v prepare: index nodes, write the graph store")
            graph_store = store.write(spark, table, edges.cfg.directed, edges.cfg.weighted,
                                      default_partitions(spark, cfg), path)
        else:
            log.info("prepare: the graph store of the unfinished run is reused (%s)", path)
        graph = choose(spark, graph_store, cfg).open(spark, graph_store, cfg)
    record.graph, record.engine = graph.stats.as_dict(), graph.engine
    log.info("prepare: %s nodes, %s edges, a %.1f MB store in %.1f s (%s engine)",
             graph.stats.nodes, graph.stats.edges, graph_store.megabytes,
             record.seconds["prepare"], graph.engine)
    return graph


def walk_graph(spark: SparkSession, graph: PreparedGraph, cfg: WalkConfig, walks_dir: str,
               work_dir: str, record: RunRecord, starts: Starts | None = None) -> None:
    """A prepared graph -> walks table at walks_dir (every node's walks, or those of `starts`),
    resumably (work_dir: the engine's resume points). The graph stays prepared."""
    with record.timed("walk"):
        graph.write_walks(spark, cfg, walks_dir, work_dir, starts)
    record.counts["walks"] = (graph.stats.nodes if starts is None else starts.nodes) * cfg.num_walks
    log.info("walk: %s walks in %.1f s", record.counts["walks"], record.seconds["walk"])


def walk_edges(spark: SparkSession, edges: EdgeSource, cfg: WalkConfig, walks_dir: str,
               work_dir: str, record: RunRecord, keep_edges: str | None = None) -> None:
    """Edges -> walks table at walks_dir (and the checked edges at keep_edges, if given)."""
    graph = prepare(spark, edges, cfg, work_dir, record, keep_edges=keep_edges)
    try:
        walk_graph(spark, graph, cfg, walks_dir, work_dir, record)
    finally:
        graph.release()


def _run(ctx: Context) -> None:
    walk_edges(ctx.spark, ctx.edges, ctx.configs["walk"], ctx.out.staging, ctx.out.work,
               ctx.record)


STAGE = Stage("walk", "edges -> walks table (walk_id, walk)", _run, configs=("input", "walk"))
