"""The replicated engine: every task walks its walkers to the end on the whole graph, memory-mapped.

Like Spark's broadcast join, this is for graphs that fit an executor: the store's whole-graph
layout (store.build_whole, written once by one task) is mapped by every Python worker, so an
executor holds one copy in the operating system's page cache however many workers it runs; nothing
passes through the driver. No shuffle per step and no lineage to cut; node ids are decoded inside
the task, so the walks come out ready to write. The kernels and the random stream are the sharded
engine's, so both give the same walks. The walks are written in batches of walk ids, each a
resume point.
"""

from __future__ import annotations

import functools
import logging
import re
from dataclasses import dataclass
from typing import ClassVar, Iterator

import numpy as np
import pyarrow as pa
from pyspark import Accumulator
from pyspark.sql import DataFrame, SparkSession

from spark_n2v import columns as C
from spark_n2v.config import WalkConfig
from spark_n2v.progress import walks_progress
from spark_n2v.record import ResumePoints
from spark_n2v.walk import kernels, store
from spark_n2v.walk.engines import Engine, PreparedGraph, default_partitions
from spark_n2v.walk.graph import GraphStats
from spark_n2v.walk.starts import Starts

log = logging.getLogger(__name__)

# Walkers per kernel call: large enough that numpy's per-call overhead vanishes (measured: steps/s
# flat from 8k to 128k), small enough that the paths and the Arrow batch handed to the JVM (walkers x
# walk_length longs, several copies) stay small: each Python worker's peak memory grows with it.
BATCH_WALKERS = 8192
# Walkers per task: enough tasks for balance and a progress report, few enough to keep tasks long.
TASK_WALKERS = 250_000
# Walkers per resume point: a killed walk restarts at most this many walks (about a minute of
# 80-step walks on 2 cores); small graphs walk in one batch.
RESUME_WALKERS = 2_000_000
_RESUME_STATE = "_local.json"  # the batches of walks written so far: where a rerun resumes


class ReplicatedEngine(Engine):
    name = "replicated"

    def fits(self, spark: SparkSession, graph: store.GraphStore, cfg: WalkConfig) -> bool:
        return graph.megabytes <= budget_mb(spark, cfg)

    def open(self, spark: SparkSession, graph: store.GraphStore, cfg: WalkConfig
             ) -> ReplicatedGraph:
        graph = store.build_whole(spark, graph)
        return ReplicatedGraph(graph, graph.stats)


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)b?\s*$", re.IGNORECASE)


def _megabytes(size: str | None) -> float | None:
    """A Spark memory setting ("4g", "512m", "2048") in megabytes (plain numbers are MiB)."""
    match = _SIZE.match(size or "")
    if not match:
        return None
    scale = {"": 1, "k": 2**-10, "m": 1, "g": 2**10, "t": 2**20}[match.group(2).lower()]
    return float(match.group(1)) * scale


def budget_mb(spark: SparkSession, cfg: WalkConfig) -> float:
    """Largest store (MB) the automatic choice replicates: --replicate-max-mb, else the memory
    Spark gives each executor's Python side (spark.executor.pyspark.memory), else the size of an
    executor's JVM heap (spark.executor.memory; the driver's in local mode; Spark's default 1g).

    The store is mapped, not copied: one copy per executor in the page cache, outside the JVM heap
    and the Python heaps. A machine sized for an executor has at least its heap's size again
    beside it, and the walkers' own memory is small (BATCH_WALKERS per worker)."""
    if cfg.replicate_max_mb is not None:
        return float(cfg.replicate_max_mb)
    conf = spark.sparkContext.getConf()
    local = spark.sparkContext.master.startswith("local")
    for key in ("spark.executor.pyspark.memory",
                "spark.driver.memory" if local else "spark.executor.memory"):
        size = _megabytes(conf.get(key, None))
        if size:
            return size
    return 1024.0


@dataclass(frozen=True)
class ReplicatedGraph(PreparedGraph):
    engine: ClassVar[str] = ReplicatedEngine.name
    store: store.GraphStore
    stats: GraphStats

    def release(self) -> None:
        """Nothing held: the store is files, mapped by the tasks that read them."""

    def write_walks(self, spark: SparkSession, cfg: WalkConfig, walks_dir: str, work_dir: str,
                    starts: Starts | None = None) -> None:
        """The walks, batch by batch into work_dir (each batch a resume point), then their files
        moved into walks_dir (no copy)."""
        points = ResumePoints(spark, work_dir, _RESUME_STATE)
        batches = resume_batches(self.stats.nodes * cfg.num_walks)
        done = len(points.done())
        if done:
            log.info("walk: resuming after %d of %d batches of walks", done, len(batches))
        remaining = sum(b - a for a, b in batches[done:])
        if starts is not None:  # about: the batches are ranges of every node's walk ids
            remaining = remaining * starts.nodes // max(self.stats.nodes, 1)
        finished = spark.sparkContext.accumulator(0)
        with walks_progress(spark, f"spark-n2v walk: replicated engine, {remaining:,} walks of "
                            f"{cfg.walk_length}", remaining, cfg.walk_length, finished):
            for k in range(done, len(batches)):
                # Small row groups: each task buffers one in the JVM until it is flushed, and the
                # heap grows with them (measured: peak memory of a 2M-edge run 2.4 -> 2.1 GB, no
                # slower).
                points.save(_batch(k), walks_frame(spark, self, cfg, finished, batches[k], starts),
                            {"parquet.block.size": 16 * 2**20})
        files = points.files
        for k in range(len(batches)):  # a rerun after a kill here moves the files not moved yet
            folder = points.path(_batch(k))
            for name in files.names(folder):
                if name.startswith("part-"):
                    files.rename(f"{folder}/{name}", f"{walks_dir}/part-b{k:05d}-{name[5:]}")


def _rebatch(batches: Iterator[pa.RecordBatch], size: int) -> Iterator[np.ndarray]:
    """The walk ids of the incoming batches, regrouped into arrays of about `size`."""
    pending: list[np.ndarray] = []
    held = 0
    for batch in batches:
        pending.append(batch.column(0).to_numpy())
        held += batch.num_rows
        if held >= size:
            yield np.concatenate(pending)
            pending, held = [], 0
    if pending:
        yield np.concatenate(pending)


def walk_batches(law: kernels.StepLaw, graph: store.GraphStore, walk_length: int, finished,
                 starts: Starts | None, batches: Iterator[pa.RecordBatch]
                 ) -> Iterator[pa.RecordBatch]:
    """mapInArrow body: walk ids in, finished walks (walk_id, walk of ids) out, only those of the
    start nodes if `starts`; counts them in the `finished` accumulator (or not, if None)."""
    csr, adjacency = store.whole(graph)  # mapped once per Python worker
    num_nodes = graph.nodes
    mask = starts.mask(graph) if starts is not None else None
    for walk_id in _rebatch(batches, BATCH_WALKERS):
        if mask is not None:
            walk_id = walk_id[mask[walk_id % num_nodes]]
            if not len(walk_id):
                continue
        paths, lengths = kernels.walk_paths(law, adjacency, walk_id, walk_id % num_nodes,
                                            walk_length)
        visited = paths[np.arange(walk_length)[None, :] < lengths[:, None]]
        offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32))
        yield pa.RecordBatch.from_arrays(
            [pa.array(walk_id), pa.ListArray.from_arrays(offsets, csr.ids.take(pa.array(visited)))],
            names=[C.WALK_ID, C.WALK])
        if finished is not None:
            finished.add(len(walk_id))


def walks_frame(spark: SparkSession, graph: ReplicatedGraph, cfg: WalkConfig,
                finished: Accumulator | None = None,
                walkers: tuple[int, int] | None = None, starts: Starts | None = None
                ) -> DataFrame:
    """The walks table (walk_id, walk), walked inside the tasks of one Spark job when it is
    written; `finished`, if given, counts the walks done (for progress reports); `walkers`, if
    given, is the range of walk ids [start, stop) to walk (a resume batch), else all of them;
    `starts`, if given, keeps only the walks of those nodes."""
    law = kernels.StepLaw(cfg.return_p, cfg.inout_q, cfg.seed, symmetric=not graph.stats.directed)
    num_nodes = graph.stats.nodes
    start, stop = walkers or (0, cfg.num_walks * num_nodes)
    tasks = max(default_partitions(spark, cfg), -(-(stop - start) // TASK_WALKERS))
    body = functools.partial(walk_batches, law, graph.store, cfg.walk_length, finished, starts)
    return (spark.range(start, stop, numPartitions=tasks)
            .mapInArrow(body, f"{C.WALK_ID} long, {C.WALK} array<{graph.store.id_type}>"))


def resume_batches(walkers: int) -> list[tuple[int, int]]:
    """Walk-id ranges written one at a time, so that a killed run resumes after the last one."""
    return [(a, min(a + RESUME_WALKERS, walkers)) for a in range(0, walkers, RESUME_WALKERS)]


def _batch(k: int) -> str:
    return f"batch-{k:05d}"
