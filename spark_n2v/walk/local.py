"""The local engine: every task walks its walkers to the end on a broadcast copy of the whole graph.

Like Spark's broadcast join, this is for graphs small enough to ship to every executor (the size is
checked against `--local-max-mb` before anything is collected): no shuffle per step, no lineage to
cut, and node ids are decoded inside the task, so the walks come out ready to write. The kernels and
the random stream are the distributed engine's, so both engines give the same walks. The walks are
written in batches of walk ids, each a resume point.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from typing import ClassVar, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark import Accumulator, Broadcast
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from spark_n2v import columns as C
from spark_n2v.config import EdgeInput, WalkConfig
from spark_n2v.io.edges import EdgeTable
from spark_n2v.progress import walks_progress
from spark_n2v.record import ResumePoints
from spark_n2v.walk import kernels
from spark_n2v.walk.engines import Engine, PreparedGraph, default_partitions
from spark_n2v.walk.graph import GraphStats, row_cumulative

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
_STRING_ID_BYTES = 24  # estimate per string id in the size check (Arrow offsets + typical text)
_RESUME_STATE = "_local.json"  # the batches of walks written so far: where a rerun resumes


class LocalEngine(Engine):
    name = "local"

    def unsupported(self, table: EdgeTable) -> str | None:
        """The local prepare holds integer and string ids (any other Parquet id type goes
        distributed)."""
        id_type = table.edges.schema[C.SRC].dataType
        if isinstance(id_type, (T.StringType, T.IntegralType)):
            return None
        return (f"node ids of type {id_type.simpleString()} are not supported there (integers "
                "and strings are)")

    def fits(self, table: EdgeTable, edges: EdgeInput, cfg: WalkConfig) -> bool:
        return size_mb(table, edges.directed, edges.weighted) <= cfg.local_max_mb

    def prepare(self, spark: SparkSession, table: EdgeTable, edges: EdgeInput, cfg: WalkConfig
                ) -> LocalGraph:
        return prepare(table, edges.directed, edges.weighted)


@dataclass(frozen=True)
class LocalGraph(PreparedGraph):
    """The whole graph as CSR: node v's neighbours are nbrs[indptr[v]:indptr[v + 1]] (sorted);
    ids[v] is v's id in the input's type (numpy for integers, Arrow for strings), id_type its
    Spark SQL name."""

    engine: ClassVar[str] = LocalEngine.name
    indptr: np.ndarray
    nbrs: np.ndarray
    cum: np.ndarray | None
    ids: np.ndarray | pa.Array
    id_type: str
    stats: GraphStats
    # the executors' copy, broadcast once however many jobs walk it (resume batches, tune's grid)
    _shipped: dict = field(default_factory=dict, compare=False, repr=False)

    def shipped(self, spark: SparkSession) -> Broadcast:
        if "copy" not in self._shipped:  # empty while pickled for the broadcast itself
            self._shipped["copy"] = spark.sparkContext.broadcast(self)
        return self._shipped["copy"]

    def release(self) -> None:
        """Free the executors' copy; the driver's goes with the object."""
        copy = self._shipped.pop("copy", None)
        if copy is not None:
            copy.destroy()

    def write_walks(self, spark: SparkSession, cfg: WalkConfig, walks_dir: str, work_dir: str
                    ) -> None:
        """The walks, batch by batch into work_dir (each batch a resume point), then their files
        moved into walks_dir (no copy)."""
        points = ResumePoints(spark, work_dir, _RESUME_STATE)
        batches = resume_batches(self.stats.nodes * cfg.num_walks)
        done = len(points.done())
        if done:
            log.info("walk: resuming after %d of %d batches of walks", done, len(batches))
        remaining = sum(b - a for a, b in batches[done:])
        finished = spark.sparkContext.accumulator(0)
        with walks_progress(spark, f"spark-n2v walk: local engine, {remaining:,} walks of "
                            f"{cfg.walk_length}", remaining, cfg.walk_length, finished):
            for k in range(done, len(batches)):
                # Small row groups: each task buffers one in the JVM until it is flushed, and the
                # heap grows with them (measured: peak memory of a 2M-edge run 2.4 -> 2.1 GB, no
                # slower).
                points.save(_batch(k), walks_frame(spark, self, cfg, finished, batches[k]),
                            {"parquet.block.size": 16 * 2**20})
        files = points.files
        for k in range(len(batches)):  # a rerun after a kill here moves the files not moved yet
            folder = points.path(_batch(k))
            for name in files.names(folder):
                if name.startswith("part-"):
                    files.rename(f"{folder}/{name}", f"{walks_dir}/part-b{k:05d}-{name[5:]}")

    def adjacency(self) -> kernels.Adjacency:
        starts = self.indptr[:-1]
        return kernels.Adjacency(self.nbrs, starts, np.diff(self.indptr), self.cum,
                                 None if self.cum is None else starts)

    def decode(self, nodes: np.ndarray) -> pa.Array:
        if isinstance(self.ids, np.ndarray):
            return pa.array(self.ids[nodes])
        return self.ids.take(pa.array(nodes))


def size_mb(table: EdgeTable, directed: bool, weighted: bool) -> float:
    """Upper bound, from the input's row count, of what the local engine holds at once: the edges
    brought to the driver, or one copy of the CSR (every Python worker holds one)."""
    string_ids = isinstance(table.edges.schema[C.SRC].dataType, T.StringType)
    id_bytes = _STRING_ID_BYTES if string_ids else 8
    edges = table.rows * (2 * id_bytes + (8 if weighted else 0))
    arcs = table.rows * (1 if directed else 2)
    nodes = 2 * table.rows
    csr = arcs * (8 + (8 if weighted else 0)) + nodes * (8 + id_bytes)
    return max(edges, csr) / 2**20


def _index(src: pa.Array, dst: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray | pa.Array]:
    """Node indices = rank of the id in sort order (as graph.index_ids numbers them; Arrow and
    Spark both order strings by their UTF-8 bytes). Returns (src index, dst index, ids by index)."""
    if pa.types.is_integer(src.type):
        ids, inverse = np.unique(np.concatenate([src.to_numpy(), dst.to_numpy()]),
                                 return_inverse=True)
    else:
        both = pa.concat_arrays([src, dst])
        ids = pc.unique(both)
        ids = ids.take(pc.sort_indices(ids))
        inverse = pc.index_in(both, value_set=ids).to_numpy()
    inverse = inverse.astype(np.int64)
    return inverse[:len(src)], inverse[len(src):], ids


def _merge(key: np.ndarray, weight: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Distinct keys and, if weighted, each key's weights summed in ascending order from 0.0 (the
    distributed prepare's sum, bit for bit)."""
    if weight is None:
        return np.unique(key), None
    order = np.lexsort((weight, key))
    key, weight = key[order], weight[order]
    first = np.flatnonzero(np.concatenate([[True], key[1:] != key[:-1]]))
    counts = np.diff(np.append(first, len(key)))
    total = 0.0 + weight[first]
    for extra in range(1, int(counts.max(initial=1))):
        more = np.flatnonzero(counts > extra)
        total[more] += weight[first[more] + extra]
    return key[first], total


def prepare(table: EdgeTable, directed: bool, weighted: bool) -> LocalGraph:
    """The prepare stage in numpy on the driver, for graphs under --local-max-mb: the same graph
    (indices, merged weights, sorted lists, cumulative weights) as distributed.prepare builds in
    Spark."""
    columns = [C.SRC, C.DST] + ([C.WEIGHT] if weighted else [])
    edges = table.edges.select(*columns).toArrow()  # auto: within --local-max-mb (fits)
    src, dst, ids = _index(edges.column(C.SRC).combine_chunks(),
                           edges.column(C.DST).combine_chunks())
    num_nodes = len(ids)
    weight = edges.column(C.WEIGHT).to_numpy() if weighted else None
    if not directed:  # one key per undirected edge, so (u, v) and (v, u) merge as duplicates
        src, dst = np.minimum(src, dst), np.maximum(src, dst)
    kept = src != dst
    key, weight = _merge(src[kept] * num_nodes + dst[kept],
                         None if weight is None else weight[kept])
    num_edges = len(key)
    src, dst = key // num_nodes, key % num_nodes
    if not directed:
        src, dst = np.concatenate([src, dst]), np.concatenate([dst, src])
        weight = None if weight is None else np.concatenate([weight, weight])
    order = np.argsort(src * num_nodes + dst)
    degrees = np.bincount(src, minlength=num_nodes)
    indptr = np.concatenate([[0], np.cumsum(degrees)])
    nbrs = dst[order].astype(np.int32 if num_nodes < 2**31 else np.int64)
    cum = None if weight is None else row_cumulative(weight[order], indptr)
    stats = GraphStats.of(table, num_nodes, num_edges, int((degrees == 0).sum()), directed,
                          weighted)
    id_type = table.edges.schema[C.SRC].dataType.simpleString()
    del edges
    pa.default_memory_pool().release_unused()  # Arrow's allocator keeps freed blocks otherwise
    return LocalGraph(indptr, nbrs, cum, ids, id_type, stats)


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


def walk_batches(law: kernels.StepLaw, shared, num_nodes: int, walk_length: int, finished,
                 batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """mapInArrow body: walk ids in, finished walks (walk_id, walk of ids) out; counts them in
    the `finished` accumulator (or not, if None)."""
    graph: LocalGraph = shared.value  # unpickled once per Python worker, then cached
    adjacency = graph.adjacency()
    for walk_id in _rebatch(batches, BATCH_WALKERS):
        paths, lengths = kernels.walk_paths(law, adjacency, walk_id, walk_id % num_nodes,
                                            walk_length)
        visited = paths[np.arange(walk_length)[None, :] < lengths[:, None]]
        offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32))
        yield pa.RecordBatch.from_arrays(
            [pa.array(walk_id), pa.ListArray.from_arrays(offsets, graph.decode(visited))],
            names=[C.WALK_ID, C.WALK])
        if finished is not None:
            finished.add(len(walk_id))


def walks_frame(spark: SparkSession, graph: LocalGraph, cfg: WalkConfig,
                finished: Accumulator | None = None,
                walkers: tuple[int, int] | None = None) -> DataFrame:
    """The walks table (walk_id, walk), walked inside the tasks of one Spark job when it is
    written; `finished`, if given, counts the walks done (for progress reports); `walkers`, if
    given, is the range of walk ids [start, stop) to walk (a resume batch), else all of them."""
    law = kernels.StepLaw(cfg.return_p, cfg.inout_q, cfg.seed, symmetric=not graph.stats.directed)
    num_nodes = len(graph.indptr) - 1
    shared = graph.shipped(spark)
    start, stop = walkers or (0, cfg.num_walks * num_nodes)
    tasks = max(default_partitions(spark, cfg), -(-(stop - start) // TASK_WALKERS))
    body = functools.partial(walk_batches, law, shared, num_nodes, cfg.walk_length, finished)
    return (spark.range(start, stop, numPartitions=tasks)
            .mapInArrow(body, f"{C.WALK_ID} long, {C.WALK} array<{graph.id_type}>"))


def resume_batches(walkers: int) -> list[tuple[int, int]]:
    """Walk-id ranges written one at a time, so that a killed run resumes after the last one."""
    return [(a, min(a + RESUME_WALKERS, walkers)) for a in range(0, walkers, RESUME_WALKERS)]


def _batch(k: int) -> str:
    return f"batch-{k:05d}"
