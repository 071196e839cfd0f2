"""The sharded engine: for graphs no executor holds. Each step moves the walkers, never the graph.

The graph store's shard k (the nodes v with v % S == k) is walked by the tasks of partition k: each
step is one Spark job that reads the walkers, repartitions them by the shard of their node, and runs
phase A (`kernels.propose_batch`) against that shard, memory-mapped once per Python worker. Most
candidates are decided there; only when q != 1 do the undecided ones (is prev -> x an edge?) go to
prev's shard in a second, narrower shuffle (phase B, `kernels.resolve_batch`). Phase A draws until
every walker holds an accepted candidate, so every live walker moves once per step and a walk of L
nodes takes L - 1 jobs. The walkers each step leaves are written to Parquet with the id of the node
they left: that cuts the lineage, is the resume point, and is all the walks are assembled from at
the end (one shuffle by walk id). Memory per task: one shard (mapped) and its walkers.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import ClassVar, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark import Accumulator
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_n2v import columns as C
from spark_n2v.config import WalkConfig
from spark_n2v.progress import StepProgress, describe
from spark_n2v.record import ResumePoints
from spark_n2v.walk import kernels, store
from spark_n2v.walk.engines import Engine, PreparedGraph
from spark_n2v.walk.graph import GraphStats

log = logging.getLogger(__name__)

_RESUME_STATE = "_walk.json"  # the steps written so far: where a rerun resumes
# Visits per assembly task at most (it lays them out in numpy).
ASSEMBLE_STEPS = 4_000_000
_LOOP_CONF = {"spark.sql.adaptive.enabled": "false",
              "spark.sql.execution.arrow.maxRecordsPerBatch": "100000"}
# Walks per batch handed back to the JVM by the assembly (walks x length ids per batch).
_OUT_WALKS = 4096


class ShardedEngine(Engine):
    name = "sharded"

    def open(self, spark: SparkSession, graph: store.GraphStore, cfg: WalkConfig) -> ShardedGraph:
        return ShardedGraph(graph, graph.stats, store.partition_keys(spark, graph.shards))


@dataclass(frozen=True)
class ShardedGraph(PreparedGraph):
    engine: ClassVar[str] = ShardedEngine.name
    store: store.GraphStore
    stats: GraphStats
    keys: tuple[int, ...]  # store.partition_keys

    def release(self) -> None:
        """Nothing held: the shards are files, mapped by the tasks that read them."""

    def write_walks(self, spark: SparkSession, cfg: WalkConfig, walks_dir: str, work_dir: str
                    ) -> None:
        law = kernels.StepLaw(cfg.return_p, cfg.inout_q, cfg.seed,
                              symmetric=not self.stats.directed)
        # The loop's shuffles are explicit repartitions onto the shards' partitions: adaptive
        # execution must not coalesce them, and re-planning every step only adds latency. Larger
        # Arrow batches spread the kernels' per-batch cost (measured: phase A on 1M walkers
        # 1.97 -> 1.70 s).
        saved = {key: spark.conf.get(key) for key in _LOOP_CONF}
        for key, value in _LOOP_CONF.items():
            spark.conf.set(key, value)
        try:
            steps = self._iterate(spark, cfg, law, work_dir)
            describe(spark, "spark-n2v walk: assemble and write walks")
            self.assemble(spark, steps, cfg).write.mode("overwrite").parquet(walks_dir)
        finally:
            for key, value in saved.items():
                spark.conf.set(key, value)

    # --- the step loop ---------------------------------------------------------------------------

    def _iterate(self, spark: SparkSession, cfg: WalkConfig, law: kernels.StepLaw,
                 work_dir: str) -> list[str]:
        """Move every walker to the end of its walk, one job per step; returns the step files.

        Each step's file is a resume point (record.ResumePoints): a rerun over the same work
        folder continues after the last one written, with the same walks (they depend only on the
        seed, the walk ids and the steps)."""
        points = ResumePoints(spark, work_dir, _RESUME_STATE)
        done = points.done()
        paths = [points.path(part["name"]) for part in done]
        last = cfg.walk_length - 1
        if done:
            log.info("walk: resuming after step %d of %d (%s walkers still walking)", len(done),
                     last, f"{done[-1]['live']:,}")
        live = done[-1]["live"] if done else self.stats.nodes * cfg.num_walks
        progress = StepProgress(last, first=len(done))
        for step in range(len(done) + 1, last + 1):
            describe(spark, f"spark-n2v walk: step {step} of {last}")
            walkers = self.start(spark, cfg) if step == 1 else (
                spark.read.parquet(paths[-1]).where(F.col(C.CUR) >= 0)
                .select(C.WALK_ID, C.STEP, C.PREV, C.CUR))
            # counts the walkers still walking (a retried task counts twice: only for the log)
            counter = spark.sparkContext.accumulator(0)
            name = f"step-{step:05d}"
            moved = self.step(walkers, step - 1, law, counter, last)
            moved.write.mode("overwrite").parquet(points.path(name))
            moving, live = live, counter.value
            points.mark(name, live=live)
            paths.append(points.path(name))
            progress.step(step, moving, live)
        return paths

    def start(self, spark: SparkSession, cfg: WalkConfig) -> DataFrame:
        """num_walks walkers per node; walk_id = repetition * V + node, so ids never depend on
        the layout."""
        nodes = self.stats.nodes
        return spark.range(nodes * cfg.num_walks).select(
            F.col("id").alias(C.WALK_ID), F.lit(0).alias(C.STEP),
            F.lit(-1).cast("long").alias(C.PREV), (F.col("id") % nodes).alias(C.CUR))

    def on_shards(self, node: Column) -> Column:
        """Partition key: shard k's walkers go to partition k (store.partition_keys)."""
        return store.on_shards(self.keys, node)

    def step(self, walkers: DataFrame, step: int, law: kernels.StepLaw, counter: Accumulator,
             last: int) -> DataFrame:
        """Walkers (walk_id, prev, cur) at index `step` of their walks -> (walk_id, step, prev,
        cur) after one step, and `visited`, the id of the node each left (cur = -1 for a walk that
        ended at a node with no out-edges). `counter` counts the walkers still walking after it
        (short of index `last`)."""
        S, id_type = self.store.shards, self.store.id_type
        rows = (walkers.select(C.WALK_ID, C.PREV, C.CUR)
                .repartition(S, self.on_shards(F.col(C.CUR)))
                .mapInArrow(functools.partial(_propose, law, self.store, step, counter, last),
                            _proposal_schema(id_type)))
        if law.needs_edge_test:  # queries to prev's shard; the rest are spread by walk id
            rows = rows.repartition(S, self.on_shards(
                F.when(F.size(C.QUERY_X) > 0, F.col(C.PREV)).otherwise(F.col(C.WALK_ID))))
            # Every row passes through phase B (only those with queries are resolved there):
            # splitting them off instead ran phase A twice, as Spark does not reuse an exchange
            # over a Python function (measured: 2.9 -> 3.5 s a step).
            rows = rows.mapInArrow(functools.partial(_resolve, law, self.store),
                                   f"{C.WALK_ID} long, {C.CUR} long, {C.NEXT} long, "
                                   f"{C.VISITED} {id_type}")
        return rows.select(C.WALK_ID, F.lit(step + 1).cast("int").alias(C.STEP), F.col(C.CUR).alias(C.PREV),
                           F.col(C.NEXT).alias(C.CUR), C.VISITED)

    # --- assembly --------------------------------------------------------------------------------

    def assemble(self, spark: SparkSession, steps: list[str], cfg: WalkConfig) -> DataFrame:
        """The walks table from the step files: each holds the id of the node its walkers left,
        the last step's walkers are decoded in their shards, then one shuffle that gives each
        task a block of consecutive walk ids, which it lays out by position (no sort)."""
        final = (spark.read.parquet(steps[-1]).where(F.col(C.CUR) >= 0)
                 .select(C.WALK_ID, C.STEP, C.PREV, C.CUR) if steps else self.start(spark, cfg))
        pieces = (final.repartition(self.store.shards, self.on_shards(F.col(C.CUR)))
                  .mapInArrow(functools.partial(_decode, self.store),
                              f"{C.WALK_ID} long, {C.STEP} int, {C.VISITED} "
                              f"{self.store.id_type}"))
        if steps:
            left = spark.read.parquet(*steps).select(
                C.WALK_ID, (F.col(C.STEP) - 1).alias(C.STEP), C.VISITED)
            pieces = left.unionByName(pieces)
        walks = self.stats.nodes * cfg.num_walks
        tasks = max(self.store.shards, -(-walks * cfg.walk_length // ASSEMBLE_STEPS))
        block = -(-walks // tasks)  # walk ids per task
        keys = store.partition_keys(spark, tasks)
        in_block = F.expr(f"{C.WALK_ID} div {block}")
        return (pieces.repartition(tasks, store.on_shards(keys, in_block))
                .mapInArrow(functools.partial(_assemble, block, cfg.walk_length),
                            f"{C.WALK_ID} long, {C.WALK} array<{self.store.id_type}>"))


def _proposal_schema(id_type: str) -> str:
    return (f"{C.WALK_ID} long, {C.PREV} long, {C.CUR} long, {C.NEXT} long, "
            f"{C.QUERY_X} array<long>, {C.QUERY_U} array<double>, {C.FALLBACK} long, "
            f"{C.VISITED} {id_type}")


def _propose(law: kernels.StepLaw, graph: store.GraphStore, step: int, counter: Accumulator,
             last: int, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """mapInArrow body of phase A. `counter` counts the walkers still walking after the step
    (short of index `last`, not at a dead end): for the progress line only, a retried task counts
    twice."""
    open_shard = functools.partial(store.shard, graph)
    for batch in batches:
        if batch.num_rows:
            proposed = kernels.propose_batch(law, graph.shards, open_shard, step, batch)
            if step + 1 < last:
                moving = pc.greater_equal(proposed.column(C.NEXT), 0)
                asking = pc.greater(pc.list_value_length(proposed.column(C.QUERY_X)), 0)
                counter.add(pc.sum(pc.or_(moving, asking)).as_py() or 0)
            yield proposed


def _resolve(law: kernels.StepLaw, graph: store.GraphStore, batches: Iterator[pa.RecordBatch]
             ) -> Iterator[pa.RecordBatch]:
    """mapInArrow body of phase B: (walk_id, cur, next, visited), `next` decided for the walkers
    with queries."""
    open_shard = functools.partial(store.shard, graph)
    for batch in batches:
        if batch.num_rows:
            nxt = kernels.resolve_batch(law, graph.shards, open_shard, batch)
            yield pa.RecordBatch.from_arrays(
                [batch.column(C.WALK_ID), batch.column(C.CUR), pa.array(nxt),
                 batch.column(C.VISITED)], names=[C.WALK_ID, C.CUR, C.NEXT, C.VISITED])


def _decode(graph: store.GraphStore, batches: Iterator[pa.RecordBatch]
            ) -> Iterator[pa.RecordBatch]:
    """mapInArrow body: walkers -> (walk_id, step, id of cur), in cur's shard."""
    for batch in batches:
        if not batch.num_rows:
            continue
        visited = kernels.decode(batch.column(C.CUR).to_numpy(), graph.shards,
                                 functools.partial(store.shard, graph))
        yield pa.RecordBatch.from_arrays(
            [batch.column(C.WALK_ID), batch.column(C.STEP), visited],
            names=[C.WALK_ID, C.STEP, C.VISITED])


def _assemble(block: int, walk_length: int, batches: Iterator[pa.RecordBatch]
              ) -> Iterator[pa.RecordBatch]:
    """mapInArrow body: (walk_id, step, visited) of whole walks -> (walk_id, walk), ids in step
    order. Walk ids come in blocks of `block` (one per task, or more after a retry elsewhere):
    each visit goes to its slot (walk, step) of its block, a counting sort, as every walk's steps
    are 0..length-1."""
    table = store.partition_table(batches)
    if table is None:
        return
    walk_id = table.column(C.WALK_ID).to_numpy()
    step = table.column(C.STEP).to_numpy()
    visited = table.column(C.VISITED)
    for first in np.unique(walk_id // block) * block:
        rows = np.flatnonzero((walk_id >= first) & (walk_id < first + block))
        local = walk_id[rows] - first
        slot = np.full(block * walk_length, -1, dtype=np.int64)
        slot[local * walk_length + step[rows]] = rows
        order = slot[slot >= 0]
        del slot
        lengths = np.bincount(local, minlength=block)
        ids = visited.take(pa.array(order)).combine_chunks()
        present = np.flatnonzero(lengths)
        ends = np.cumsum(lengths[present])
        starts = ends - lengths[present]
        for a in range(0, len(present), _OUT_WALKS):
            lo, hi = int(starts[a]), int(ends[min(a + _OUT_WALKS, len(present)) - 1])
            offsets = pa.array(np.append(starts[a:a + _OUT_WALKS] - lo, hi - lo).astype(np.int32))
            yield pa.RecordBatch.from_arrays(
                [pa.array(present[a:a + _OUT_WALKS] + first),
                 pa.ListArray.from_arrays(offsets, ids.slice(lo, hi - lo))],
                names=[C.WALK_ID, C.WALK])
